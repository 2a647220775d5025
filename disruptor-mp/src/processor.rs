//! Event processors: the library runs a consumer's loop on a thread of its own, in the upstream
//! Disruptor's style ([`Consumer::handle_events_with`], [`Consumer::processor`]).
//!
//! The thread reads batches with the consumer's wait strategy and calls the handler with
//! `(event, sequence, end_of_batch)` for each event, in place; `end_of_batch` is true exactly for the
//! last event of each batch (the events that were available together, at most the
//! [maximum batch](ProcessorBuilder::with_max_batch)), which is where a handler flushes what it buffers.
//! The batch is committed, with one cursor store, after its last event is handled.
//!
//! The processor ends when the ring ends for its consumer ([`ConsumeError::Closed`],
//! [`ConsumeError::ProducerGone`], [`ConsumeError::Evicted`], [`ConsumeError::UpstreamGone`]), when its
//! handler panics, or when asked to ([`EventProcessor::shutdown`]): between two batches, and at least
//! every [`SHUTDOWN_POLL`] while it waits for events, so it ends promptly under any traffic. Its consumer
//! is dropped with the thread, which gives up its table slot (a durable consumer keeps its place).

use crate::backend::affinity;
use crate::error::ConsumeError;
use crate::event::RingEvent;
use crate::segment::Backend;
use crate::Consumer;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest a processor waiting for events goes without looking at its shutdown request.
pub const SHUTDOWN_POLL: Duration = Duration::from_millis(10);

/// Events a processor hands its handler at most per batch, by default.
pub const DEFAULT_MAX_BATCH: usize = 1024;

impl<E: RingEvent, B: Backend> Consumer<E, B> {
    /// Runs `handler(event, sequence, end_of_batch)` for every event on a new thread, with this consumer's
    /// wait strategy and the default settings of [`processor`](Self::processor); returns the handle that
    /// ends it and tells why it ended.
    ///
    /// ```
    /// use disruptor_mp::{attach_shared_consumer, build_shared_single_producer, ConsumeError, ProcessorExit};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// # let name = format!("doc-processor-{}", std::process::id());
    /// let mut producer = build_shared_single_producer::<u64>(&name, 1024).build_producer()?;
    /// let total = Arc::new(AtomicU64::new(0));
    /// let sum = Arc::clone(&total);
    /// let processor = attach_shared_consumer::<u64>(&name)
    ///     .build_consumer()?
    ///     .handle_events_with(move |event, _sequence, _end_of_batch| {
    ///         sum.fetch_add(*event, Ordering::Relaxed);
    ///     })?;
    ///
    /// producer.publish_batch(&[1, 2, 3])?;
    /// drop(producer); // closes the ring: the processor drains it, then ends
    /// assert_eq!(processor.join(), ProcessorExit::Ended(ConsumeError::Closed));
    /// assert_eq!(total.load(Ordering::Relaxed), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_events_with<H>(self, handler: H) -> Result<EventProcessor, SpawnError>
    where
        H: FnMut(&E, u64, bool) + Send + 'static,
    {
        self.processor().spawn(handler)
    }

    /// Starts configuring an event processor for this consumer: its thread's name, the core it is pinned
    /// to, its maximum batch. [`ProcessorBuilder::spawn`] starts it.
    pub fn processor(self) -> ProcessorBuilder<E, B> {
        ProcessorBuilder {
            consumer: self,
            thread_name: None,
            core: None,
            max_batch: DEFAULT_MAX_BATCH,
        }
    }
}

/// Configures an event processor; see [`Consumer::processor`].
#[derive(Debug)]
#[must_use = "a processor builder does nothing until spawn() is called"]
pub struct ProcessorBuilder<E: RingEvent, B: Backend> {
    consumer: Consumer<E, B>,
    thread_name: Option<String>,
    core: Option<usize>,
    max_batch: usize,
}

impl<E: RingEvent, B: Backend> ProcessorBuilder<E, B> {
    /// Names the processor's thread (default: `dmp-` and the consumer id, or `dmp-consumer-` and its
    /// slot). Linux shows the first 15 bytes.
    pub fn with_thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = Some(name.into());
        self
    }

    /// Pins the processor's thread to CPU core `core` (Linux; on macOS, which cannot pin threads,
    /// [`spawn`](Self::spawn) fails with [`SpawnError::Pin`]).
    pub fn pinned_to_core(mut self, core: usize) -> Self {
        self.core = Some(core);
        self
    }

    /// Hands the handler at most `max` events per batch (default [`DEFAULT_MAX_BATCH`]; at least one).
    /// Larger batches mean fewer cursor stores and `end_of_batch` flushes; a shutdown request is seen
    /// between batches.
    pub fn with_max_batch(mut self, max: usize) -> Self {
        self.max_batch = max.max(1);
        self
    }

    /// Starts the processor's thread (pinned first, if asked) and returns its handle once the thread runs.
    pub fn spawn<H>(self, handler: H) -> Result<EventProcessor, SpawnError>
    where
        H: FnMut(&E, u64, bool) + Send + 'static,
    {
        let ProcessorBuilder {
            consumer,
            thread_name,
            core,
            max_batch,
        } = self;
        let thread_name = thread_name.unwrap_or_else(|| match consumer.consumer_id() {
            "" => format!("dmp-consumer-{}", consumer.slot_index()),
            id => format!("dmp-{id}"),
        });
        let shutdown = Arc::new(AtomicBool::new(false));
        let requested = Arc::clone(&shutdown);
        let (started, pinned) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || {
                if let Some(core) = core {
                    if let Err(source) = affinity::pin_current_thread(core) {
                        let _ = started.send(Err(SpawnError::Pin { core, source }));
                        return ProcessorExit::Shutdown;
                    }
                }
                let _ = started.send(Ok(()));
                run(consumer, handler, max_batch, &requested)
            })
            .map_err(|source| SpawnError::Thread { source })?;
        match pinned.recv() {
            Ok(Ok(())) => Ok(EventProcessor {
                shutdown,
                thread: Some(thread),
                thread_name,
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            // The thread ended before reporting: only a panic can do that.
            Err(_) => Err(SpawnError::Thread {
                source: io::Error::other("the processor thread panicked while starting"),
            }),
        }
    }
}

/// The processor's loop: batches until the ring ends for the consumer or a shutdown is requested; a
/// panicking handler is caught and reported.
fn run<E: RingEvent, B: Backend>(
    mut consumer: Consumer<E, B>,
    mut handler: impl FnMut(&E, u64, bool),
    max_batch: usize,
    shutdown: &AtomicBool,
) -> ProcessorExit {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| loop {
        // Relaxed: the flag carries no data, only the request.
        if shutdown.load(Ordering::Relaxed) {
            return ProcessorExit::Shutdown;
        }
        match consumer.consume_batch_timeout(max_batch, SHUTDOWN_POLL, &mut handler) {
            Ok(_) | Err(ConsumeError::Timeout { .. }) => {}
            Err(ended) => return ProcessorExit::Ended(ended),
        }
    }));
    outcome.unwrap_or_else(|payload| ProcessorExit::Panicked {
        message: panic_message(payload.as_ref()),
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// Why an event processor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessorExit {
    /// It was asked to end ([`EventProcessor::shutdown`] or [`EventProcessor::request_shutdown`]).
    Shutdown,
    /// The ring ended for its consumer: [`ConsumeError::Closed`], [`ConsumeError::ProducerGone`],
    /// [`ConsumeError::Evicted`] or [`ConsumeError::UpstreamGone`].
    Ended(ConsumeError),
    /// The handler panicked; the batch it was handling was not committed (a durable consumer that attaches
    /// again gets it again).
    Panicked {
        /// The panic's message.
        message: String,
    },
}

/// Why an event processor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The operating system refused a new thread.
    #[error("cannot start the processor thread: {source}")]
    Thread {
        /// The underlying error.
        source: io::Error,
    },
    /// The thread could not be pinned to the core asked for (no such core, not allowed, or macOS).
    #[error("cannot pin the processor thread to core {core}: {source}")]
    Pin {
        /// The core asked for.
        core: usize,
        /// The underlying error.
        source: io::Error,
    },
}

/// A running event processor: its thread, and the way to end it ([`Consumer::handle_events_with`]).
///
/// Dropping the handle without joining asks the processor to shut down and does not wait for it.
#[derive(Debug)]
pub struct EventProcessor {
    shutdown: Arc<AtomicBool>,
    /// `Some` until joined.
    thread: Option<JoinHandle<ProcessorExit>>,
    thread_name: String,
}

impl EventProcessor {
    /// Asks the processor to end after its current batch, without waiting.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Asks the processor to end and waits for it: it ends after its current batch, or within
    /// [`SHUTDOWN_POLL`] while waiting for events. Returns why it ended (which may be something else that
    /// happened first).
    pub fn shutdown(self) -> ProcessorExit {
        self.request_shutdown();
        self.join()
    }

    /// Waits for the processor to end on its own (the ring closed, the producer died, …) and returns why.
    pub fn join(mut self) -> ProcessorExit {
        let thread = self.thread.take().expect("joined once, by value");
        thread
            .join()
            .unwrap_or_else(|payload| ProcessorExit::Panicked {
                message: panic_message(payload.as_ref()),
            })
    }

    /// [`join`](Self::join) waiting at most `timeout`; gives the handle back if the processor still runs.
    pub fn join_timeout(self, timeout: Duration) -> Result<ProcessorExit, EventProcessor> {
        // `None`: a timeout too large to represent, never reached.
        let deadline = Instant::now().checked_add(timeout);
        while !self.is_finished() {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(self);
            }
            thread::sleep(Duration::from_millis(1));
        }
        Ok(self.join())
    }

    /// Whether the processor has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The processor thread's name.
    pub fn thread_name(&self) -> &str {
        &self.thread_name
    }
}

impl Drop for EventProcessor {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.request_shutdown();
        }
    }
}
