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

/// A node of this process.
pub fn node() -> Node<ipc::Service> {
    NodeBuilder::new()
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
