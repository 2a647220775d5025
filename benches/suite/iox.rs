//! iceoryx2 publish/subscribe set up with its fastest settings: a single publisher and subscriber,
//! zero-copy loans, no history, no overflow (the publisher retries until delivered, so nothing is
//! lost), and the subscriber busy-polls `receive`.

use crate::payload::Payload;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory;
use std::sync::atomic::{AtomicU32, Ordering};

/// A unique service name for one run (the parent chooses it; children open it).
pub fn unique_service(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "dmp-bench/{label}/{}/{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The process that owns this run's iceoryx2 domain: the suite's parent process (children get it as
/// their parent).
fn domain_owner() -> u32 {
    if disruptor_mp_suite::child_role().is_some() {
        std::os::unix::process::parent_id()
    } else {
        std::process::id()
    }
}

/// Where the run's iceoryx2 domain keeps its node and service directories.
fn domain_root(owner: u32) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dmp-bench-iceoryx2-{owner}"))
}

/// This run's own iceoryx2 domain (a prefix for its shared-memory names and a private root directory),
/// so that the run can remove everything iceoryx2 leaves behind without touching anyone else's.
fn domain_config() -> Config {
    let owner = domain_owner();
    let mut config = Config::default();
    config.global.prefix = FileName::new(format!("dmpb{owner}_").as_bytes())
        .unwrap_or_else(|e| panic!("iceoryx2 prefix: {e:?}"));
    let root = format!("{}/", domain_root(owner).display());
    config.global.set_root_path(
        &Path::new(root.as_bytes()).unwrap_or_else(|e| panic!("iceoryx2 root {root:?}: {e:?}")),
    );
    config
}

/// Removes what this run's iceoryx2 domain leaves behind when dropped: its global management segment
/// (which iceoryx2 keeps on purpose, for every later node of the domain) and its root directory.
pub struct Domain;

impl Drop for Domain {
    fn drop(&mut self) {
        remove_domain();
    }
}

/// Removes the run's iceoryx2 domain (in the parent, once no child uses it: at the end of the run, or
/// when a watchdog aborts it).
pub fn remove_domain() {
    // SAFETY: the domain is this run's own (its prefix names this process), and the callers call this only
    // once every child that used it has finished, or when the process is about to exit, after which the
    // children notice that their parent is gone and exit without touching the segment again.
    let _ =
        unsafe { iceoryx2::testing::remove_global_mgmt_segment::<ipc::Service>(&domain_config()) };
    let _ = std::fs::remove_dir_all(domain_root(std::process::id()));
}

/// A node of this process, in the run's domain.
pub fn node() -> Node<ipc::Service> {
    NodeBuilder::new()
        .config(&domain_config())
        .create::<ipc::Service>()
        .unwrap_or_else(|e| panic!("iceoryx2 node: {e:?}"))
}

/// Creates or opens the service `name` carrying `P`, with room for `buffer` samples in flight.
pub fn service<P: Payload>(
    node: &Node<ipc::Service>,
    name: &str,
    buffer: usize,
) -> PortFactory<ipc::Service, P, ()> {
    let service_name: ServiceName = name
        .try_into()
        .unwrap_or_else(|e| panic!("iceoryx2 service name {name:?}: {e:?}"));
    node.service_builder(&service_name)
        .publish_subscribe::<P>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(buffer)
        .enable_safe_overflow(false)
        .open_or_create()
        .unwrap_or_else(|e| panic!("iceoryx2 service {name:?}: {e:?}"))
}

/// The service's only publisher: it retries while the subscriber's buffer is full.
pub fn publisher<P: Payload>(
    service: &PortFactory<ipc::Service, P, ()>,
) -> Publisher<ipc::Service, P, ()> {
    service
        .publisher_builder()
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .unwrap_or_else(|e| panic!("iceoryx2 publisher: {e:?}"))
}

/// The service's only subscriber.
pub fn subscriber<P: Payload>(
    service: &PortFactory<ipc::Service, P, ()>,
    buffer: usize,
) -> Subscriber<ipc::Service, P, ()> {
    service
        .subscriber_builder()
        .buffer_size(buffer)
        .create()
        .unwrap_or_else(|e| panic!("iceoryx2 subscriber: {e:?}"))
}

/// Sends the event for `seq` through a zero-copy loan, written in place.
#[inline(always)]
pub fn send<P: Payload>(publisher: &Publisher<ipc::Service, P, ()>, seq: u64) {
    let sample = publisher
        .loan_uninit()
        .unwrap_or_else(|e| panic!("iceoryx2 loan: {e:?}"));
    let sample = sample.write_payload(P::for_seq(seq));
    sample
        .send()
        .unwrap_or_else(|e| panic!("iceoryx2 send: {e:?}"));
}
