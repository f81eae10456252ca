//! The embedded API: a [`Producer`] and a [`Consumer`] working directly on
//! an in-process [`Broker`](crate::Broker), with the same semantics as Kafka
//! clients (consumer groups, committed offsets, idempotent producers).
//!
//! Consumers speak Kafka's group protocol to the broker's coordinator, so a
//! group can mix embedded consumers and network clients. When an embedded
//! consumer leads its group the assignment is computed here, in the
//! broker's process, with the chosen strategy.

mod consumer;
mod producer;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

pub use consumer::{
    Consumer, ConsumerConfig, ConsumerGroupMetadata, ConsumerRecord, Flow, Isolation, OffsetReset,
    StopHandle,
};
pub use producer::{
    Delivery, DeliveryResult, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread (the blocking API is the
/// async one, driven here). Re-polls at least every `step`, so deadlines
/// inside the future are noticed promptly even without a wake-up.
pub(crate) fn block_on<F: Future>(fut: F, step: Duration) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(step);
    }
}
