//! How the producer and the consumers share a segment: publishing, consuming, joining, leaving, who is
//! alive, what happens when a process dies, `fork`, and what the library promises when a peer
//! misbehaves. (Documentation only; the byte layout is in
//! [`segment`](crate::segment).)
//!
//! Every atomic step described here is one function of the crate's `protocol_steps` module, which the
//! library runs on the mapped segment and a [loom](https://docs.rs/loom) model runs on heap words, under
//! every interleaving up to a preemption bound (see the README's "Status" section and
//! `disruptor-mp/src/protocol_steps/model.rs` for what the model covers).
//!
//! # Publishing and consuming
//!
//! Sequence `s` lives in slot `s mod capacity`. The producer may write sequence `s` only once every
//! gating consumer's cursor is above `s - capacity`, that is, once each has consumed the event the slot
//! held before. It caches that bound (the *gate*) and recomputes it, as the minimum of the gating cursors,
//! only when it is used up, so most publishes read no consumer's line. It writes the slot in place, then
//! stores `published = s + 1` with `Release`.
//!
//! A consumer loads `published` with `Acquire` (pairing with that store, so the slot's bytes are visible)
//! and caches it, so a batch of events costs one load. It reads slots in place below it and stores its
//! cursor with `Release` when done with them (after a batch, or when a lease drops), which lets the
//! producer reuse them. Neither side makes a system call or takes a lock.
//!
//! # Joining a running ring without being lapped
//!
//! A consumer claims a free slot of the table (a compare-and-swap on the slot's ownership word, which also
//! bumps the slot's generation), then joins:
//!
//! 1. it stores a provisional cursor and marks the slot JOINING: from now on it gates the producer;
//! 2. it bumps the membership counter and issues a `SeqCst` fence;
//! 3. it chooses its first sequence (see below), stores it as its cursor, and marks the slot ACTIVE.
//!
//! Each gate refresh of the producer computes the gate over the table as of the membership counter,
//! announces it in a *horizon* word (the highest gate it has ever used), issues a `SeqCst` fence, and reads
//! the membership counter again (going again if it moved). By the two fences, either the refresh sees the
//! joiner, and gates on its cursor, which is never later than its first sequence, or everything the
//! producer stored before its fence (its `published` count, its horizon) is visible to the joiner after
//! its own. So until the producer sees the joiner it writes nothing at or above the horizon, nor a whole
//! ring beyond `published`, as the joiner read them.
//!
//! The [`StartPosition`](crate::StartPosition) decides the provisional cursor and the first sequence:
//! - `Latest` (the default): provisional and first are `published` (read before and after the fence). The
//!   gate of a refresh that missed the joiner cannot reach its first event.
//! - `Earliest`: provisional is `published - capacity`, the oldest event the ring holds; first is the later
//!   of that and `horizon - capacity`, because a producer that has not seen the joiner may still overwrite
//!   every sequence below that. On a closed ring nothing is written any more, and first is
//!   `published - capacity`: the whole last lap.
//! - `Sequence(n)`: provisional is `n`, refused at once unless `published - capacity <= n <= published`,
//!   and refused after the fence if below the `Earliest` bound, with
//!   [`AttachError::SequenceNotHeld`](crate::AttachError::SequenceNotHeld) naming that bound.
//!
//! Either way the consumer's first event is intact, and every later one arrives in order, without a gap.
//!
//! A slot counts as attached (what [`SharedProducer::attached_consumers`](crate::SharedProducer) and
//! `wait_for_consumers` count) only once ACTIVE, when its start is fixed: a producer that waited for `n`
//! consumers and then publishes is sure all `n` receive that event.
//!
//! # Waiting: spinning, then sleeping in the kernel
//!
//! A consumer with nothing to read, or a producer with no room, waits as its
//! [`WaitStrategy`](crate::WaitStrategy) says. The default, `Blocking`, spins a while and then sleeps on a
//! futex word of the segment until the other side wakes it; the other side makes that system call only
//! when a flag says someone sleeps. The handshake and why it loses no wake-up are in the
//! [`wait`](crate::wait) module. Every sleep is bounded by the liveness interval, so a sleeping endpoint
//! still notices a dead peer on time.
//!
//! # Pipelines: consumers behind consumers
//!
//! A consumer built with [`after`](crate::ConsumerBuilder::after) is a pipeline stage: it reads sequence
//! `s` only once `s` is published *and* every upstream stage's cursor is above `s`. It finds its upstream
//! stages by id in the table when it attaches and remembers each one's slot (and, for an anonymous stage,
//! the slot's generation). Whenever its cached bound is used up it loads the published count and each
//! upstream cursor (acquire: the upstream's reads of those slots happened before, and the producer cannot
//! overwrite what the upstream has not released, since the upstream gates it), then the upstream slot's
//! ownership word. A consumer that takes over a slot stores its first cursor only after it has claimed
//! the slot (with `Release`), so a cursor read from a slot that has changed hands is always caught by the
//! ownership word read after it, and never trusted.
//!
//! Every stage gates the producer itself; a dependent's cursor trails its upstream stages', so the gate is
//! set by the last stages anyway (the others add one cursor load per gate refresh). A stage starts no
//! earlier than its upstream stages' cursors when it joins: it cannot know which older events they saw.
//!
//! An anonymous upstream stage that leaves, dies (found by its liveness lock on the dependent's cold
//! path) or is evicted ends the dependent with
//! [`ConsumeError::UpstreamGone`](crate::ConsumeError::UpstreamGone), once the dependent has read
//! everything the stage committed. A durable upstream stage (reserved by name) is followed as the
//! reservation: its consumer may die and come back, resuming at its cursor, and the dependent waits for it
//! as the producer does; only the reservation's release ends the dependent.
//!
//! A stage that has caught up with its upstream stages but not with the producer sleeps (with `Blocking`)
//! on the commit line, the one a producer waiting for room sleeps on: a bit of its sleeper word says
//! dependents sleep, and every commit, which already loads that word for the producer, wakes them too.
//!
//! # Untethered consumers
//!
//! An [untethered](crate::untethered) consumer holds a table slot in state UNTETHERED, which does not
//! gate the producer. It copies each event out and validates the copy against the producer's horizon:
//! the slot of `s` is rewritten only by `s + capacity`, which the producer writes only after announcing
//! a horizon above it, before a fence. The [`untethered`](crate::untethered) module has the argument and
//! its cost. Its cursor in the table is informational (where it last read), for inspection.
//!
//! # Slot states
//!
//! A consumer slot's state and generation share one 64-bit ownership word, and every change is a
//! compare-and-swap on the whole word, so two processes never both win a slot, and a process holding a
//! stale view (an older generation) changes nothing:
//!
//! ```text
//! FREE ──claim──▶ CLAIMED ──▶ JOINING ──▶ ACTIVE ──leave / owner dead──▶ FREE
//!                                           │
//!                                           └─policy──▶ EVICTING ──consumer acks──▶ EVICTED ──▶ FREE
//! RESERVED (durable, named, no live owner) ──owner attaches──▶ ACTIVE ──leave / owner dead──▶ RESERVED
//! FREE ──claim──▶ CLAIMED ──▶ UNTETHERED ──leave / owner dead──▶ FREE
//!                                 └─policy──▶ EVICTED ──▶ FREE
//! ```
//!
//! JOINING, ACTIVE, EVICTING and RESERVED gate the producer; UNTETHERED does not.
//!
//! # Who is alive
//!
//! Liveness is kernel-backed, not a heartbeat and not a PID probe. Every endpoint opens the segment
//! itself and, on Linux, takes an open-file-description lock (`F_OFD_SETLK`) on one byte of its own past
//! the end of the data ([`LOCK_BASE`](crate::segment::LOCK_BASE) for the producer,
//! `LOCK_BASE + 1 + i` for consumer slot `i`). The kernel drops the lock when the process dies, however
//! it dies (`SIGKILL` included), and `F_OFD_GETLK` through another open of the segment tells whether it
//! is still held. No PID is involved, so the answer is right after a PID is reused and across PID
//! namespaces (two containers sharing `/dev/shm`); the PID kept in the table is for messages only.
//!
//! A consumer takes its slot's lock *before* claiming the slot, and a leaving consumer frees the slot
//! before dropping the lock, so a slot that is not free while its lock is free always has a dead owner.
//!
//! Checks cost a system call, so they run only on cold paths, never on a publish or read that finds what
//! it wants:
//!
//! - a publish blocked on a full ring looks for dead consumers every liveness interval (default
//!   [`DEFAULT_LIVENESS_INTERVAL`](crate::DEFAULT_LIVENESS_INTERVAL), 100 ms): a dead anonymous consumer's
//!   slot is freed and stops gating, so a plain `publish` never waits for ever on a dead process; a dead
//!   durable (named) consumer's slot returns to RESERVED and keeps gating at its cursor, because that is
//!   what durable means (the required-consumer policy can release it);
//! - a read that finds the ring empty checks the producer at most once per liveness interval; if the
//!   producer is dead and did not close the ring, the consumer, having read everything published, gets
//!   [`ConsumeError::ProducerGone`](crate::ConsumeError::ProducerGone) instead of waiting for ever. (A
//!   clean drop sets the closed flag first, so `Closed` and `ProducerGone` are told apart.)
//!
//! macOS has no OFD locks, and its `fcntl` locks do not work on shared-memory objects. There the table
//! records each endpoint's PID and process start time, and an endpoint is alive while a process with that
//! PID and start time exists, which is safe against PID reuse (macOS has no PID namespaces). This path is
//! type-checked in CI but has not run on a Mac.
//!
//! # Reclaiming a dead producer's name
//!
//! `build_producer` on a name that exists looks at the existing object. If its producer lock is held,
//! the name is refused with [`CreateError::AlreadyExists`](crate::CreateError::AlreadyExists) naming the
//! live producer's pid. If it is free and the object is one of ours (or one a creator never finished),
//! the reclaimer takes that lock itself, removes the name and creates a new segment with a new epoch.
//! Taking the stale object's lock first is what makes this safe: a creator takes its new object's lock
//! right after creating it, so of two processes racing for one object exactly one holds its lock and goes
//! on. Consumers still mapped to the old segment keep their mapping and see its producer gone. Nothing of
//! the old segment is trusted by the new one: cursors, reservations and counts start afresh.
//!
//! # Durable, named consumers
//!
//! `discover_consumer_with_prefix(count, prefix)` reserves slots `{prefix}_0 ..` before the segment is
//! marked ready, so they gate from the first event. A consumer attaching under such an id takes its slot
//! (from RESERVED, or from ACTIVE under a dead owner, with a compare-and-swap that bumps the generation)
//! and resumes at the slot's cursor: exactly after the last event any earlier incarnation committed,
//! because the slot gated the producer at that cursor all along. Two live consumers never share an id:
//! each new consumer with an id writes it, fences, and looks for another live holder, and of two that
//! claim at once the one in the higher slot yields.
//!
//! # Eviction by policy
//!
//! A live consumer is never simply dropped from gating, because it may be reading an event in place. The
//! producer marks it EVICTING, keeps gating, and bumps an eviction notice on the published count's line;
//! the consumer sees the notice the next time it loads the published count, finds its slot EVICTING and
//! acknowledges with EVICTED (then reads nothing more); only then, or once its
//! process is dead, does the producer stop gating. The [`required`](crate::required) module explains the
//! policy that triggers it.
//!
//! # Leaving, and `fork`
//!
//! A consumer that drops frees its slot (a durable one returns it to RESERVED, keeping its cursor) with a
//! compare-and-swap that names the generation it claimed, so it can never free a slot someone else
//! claimed since, and then drops its lock. A dropped producer stores the closed flag after its last
//! publish (consumers drain, then see [`ConsumeError::Closed`](crate::ConsumeError)) and removes the
//! segment's name, unless the name already belongs to a newer segment.
//!
//! Endpoints remember the process that built them. A child created with `fork` inherits copies of the
//! parent's endpoints, which share the parent's slot and cursor; dropping those copies in the child only
//! unmaps them: the parent's consumer keeps its slot and the parent's ring stays open and named. Do not
//! *use* an inherited endpoint in the child (both processes would move the same cursor, or publish the same
//! sequences): build new endpoints there instead. The child also shares the parent's open of the segment,
//! and with it the parent's liveness locks: while a child forked without `exec` lives, the parent's
//! endpoints count as alive even after the parent died.
//!
//! # Threat model
//!
//! Every process that attaches has the segment's control part (header, producer region, consumer table)
//! mapped read-write, because a consumer writes its cursor and its slot of the table. The permission bits
//! of the segment decide who may attach (default `0600`, the creating user only; see
//! [`SharedProducerBuilder::with_mode`](crate::SharedProducerBuilder::with_mode)). So today:
//!
//! - **What the library promises at attach.** Every header field is validated against this build and the
//!   mapping's length, from one copy taken once, before anything else is read. A corrupted, truncated or
//!   foreign object yields an [`AttachError`](crate::AttachError), never undefined behaviour or an access
//!   outside the mapping (property-tested with arbitrary bytes, every header field changed, truncation,
//!   and garbage in the producer region and the consumer table).
//! - **Who a consumer trusts by default.** Only segments its own user owns and that nobody else may
//!   write: a segment with group or other write bits is refused
//!   ([`AttachError::WritableByOthers`](crate::AttachError::WritableByOthers)), and so is one another
//!   user owns ([`AttachError::OwnedByOtherUser`](crate::AttachError::OwnedByOtherUser)), unless the
//!   consumer accepts them (`allow_writable_by_others`, `allow_other_owner`). Ring files are never opened
//!   through a symbolic link, and only in directories no other user can replace them in.
//! - **What a process with write access can do after that.** It can corrupt events (consumers read
//!   whatever bytes the slots hold; every bit pattern is a valid event, so this is wrong data, not
//!   undefined behaviour), move cursors or the published count (consumers may then read stale or torn
//!   events, or the producer may wait), or shrink the object with `ftruncate`, after which any peer that
//!   touches the lost pages dies with `SIGBUS`. Only processes you trust with the data should be able to
//!   open the segment.
//! - **What a consumer cannot do.** It maps the event slots read-only (on systems whose page size is the
//!   format's 4 KiB alignment or smaller), so it cannot change what the other consumers read.
//! - **What a rewrite after attach cannot do.** Every bound comes from the geometry validated at attach,
//!   never from shared words read again, so no rewrite makes an endpoint read or write outside its
//!   mapping or panic; and no loop of the library waits on a shared word without a bound (a producer's
//!   gate refresh gives up after a fixed number of table rescans, and every wait has its deadline or
//!   liveness bound). A consumer that finds the published count more than a ring beyond itself, which
//!   the protocol cannot produce since it gates the producer, stops with
//!   [`ConsumeError::CorruptSegment`](crate::ConsumeError::CorruptSegment) instead of handing out
//!   overwritten slots. Property-tested: arbitrary words of the producer region and the consumer table
//!   rewritten under a live producer, a consumer, a pipeline stage and an untethered reader.
//! - **Not yet handled** (planned): the rest of what a misbehaving peer can do to the others' data. A
//!   peer that writes the table can, for example, mark other consumers' slots free or evicted, or hold
//!   the producer back with a low cursor, as a stalled consumer would.
