//! How the producer and the consumers share a segment: publishing, consuming, joining, leaving, `fork`,
//! and what the library promises when a peer misbehaves. (Documentation only; the byte layout is in
//! [`segment`](crate::segment).)
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
//! 1. it stores a provisional cursor (the current `published`) and marks the slot JOINING: from now on it
//!    gates the producer;
//! 2. it bumps the membership counter and issues a `SeqCst` fence;
//! 3. it loads `published` as its start, stores it as its cursor, and marks the slot ACTIVE.
//!
//! Each gate refresh of the producer issues a `SeqCst` fence after its last `published` store and then
//! reads the membership counter (rescanning the table when it moved). By the two fences, either the
//! refresh sees the joiner, and gates on its cursor, which is never later than its start, or the joiner's
//! start is at least what the producer had published at that refresh, so the gate computed there cannot
//! reach the joiner's first event. Either way the consumer's first event is its start, and every later
//! one arrives in order, without a gap.
//!
//! A slot counts as attached (what [`SharedProducer::attached_consumers`](crate::SharedProducer) and
//! `wait_for_consumers` count) only once ACTIVE, when its start is fixed: a producer that waited for `n`
//! consumers and then publishes is sure all `n` receive that event.
//!
//! # Leaving, and `fork`
//!
//! A consumer that drops frees its slot with a compare-and-swap that names the generation it claimed, so
//! it can never free a slot someone else claimed since. A dropped producer stores the closed flag after
//! its last publish (consumers drain, then see [`ConsumeError::Closed`](crate::ConsumeError)) and removes
//! the segment's name, unless the name already belongs to a newer segment.
//!
//! Endpoints remember the process that built them. A child created with `fork` inherits copies of the
//! parent's endpoints, which share the parent's slot and cursor; dropping those copies in the child only
//! unmaps them: the parent's consumer keeps its slot and the parent's ring stays open and named. Do not
//! *use* an inherited endpoint in the child (both processes would move the same cursor, or publish the same
//! sequences): build new endpoints there instead.
//!
//! # Threat model
//!
//! Every process that attaches has the segment mapped read-write, because a consumer writes its cursor
//! and its slot of the table. The permission bits of the segment decide who may attach (default `0600`,
//! the creating user only; see
//! [`SharedProducerBuilder::with_mode`](crate::SharedProducerBuilder::with_mode)). So today:
//!
//! - **What the library promises at attach.** Every header field is validated against this build and the
//!   mapping's length, from one copy taken once, before anything else is read. A corrupted, truncated or
//!   foreign object yields an [`AttachError`](crate::AttachError), never undefined behaviour or an access
//!   outside the mapping.
//! - **What a process with write access can do after that.** It can corrupt events (consumers read
//!   whatever bytes the slots hold; every bit pattern is a valid event, so this is wrong data, not
//!   undefined behaviour), move cursors or the published count (consumers may then read stale or torn
//!   events, or the producer may wait), or shrink the object with `ftruncate`, after which any peer that
//!   touches the lost pages dies with `SIGBUS`. Only processes you trust with the data should be able to
//!   open the segment.
//! - **Not yet handled** (planned): detecting a peer that died without leaving (a consumer killed with
//!   `SIGKILL` keeps gating the producer; a consumer of a killed producer times out rather than learning
//!   why), and bounding what a misbehaving peer can do to the others after attach.
