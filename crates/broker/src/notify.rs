//! Waking waiters, blocking or async, without an async runtime.
//!
//! A [`Wakeup`] belongs to one waiter (a consumer, a long-polling fetch). It
//! can be registered with any number of [`Notifier`]s (one per partition, the
//! group coordinator, the broker's clock tick); a notification sets it and
//! wakes the thread blocked in [`Wakeup::wait`] or the task awaiting
//! [`Wakeup::wait_async`]. A waiter registered with many notifiers can
//! tag each registration ([`Notifier::subscribe_tagged`]) and learn which of
//! them rang ([`Wakeup::take_tags`]), so it need not look at all of them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

#[derive(Debug, Default)]
struct WakeState {
    notified: bool,
    wakers: Vec<Waker>,
    /// Tags of the tagged notifiers that rang since the last take.
    tags: Vec<u32>,
}

/// The tag of an untagged registration (never reported).
const UNTAGGED: u32 = u32::MAX;

/// A waiter's doorbell.
#[derive(Debug, Default)]
pub struct Wakeup {
    state: Mutex<WakeState>,
    ready: Condvar,
}

impl Wakeup {
    /// A new doorbell, not rung.
    pub fn new() -> Arc<Wakeup> {
        Arc::new(Wakeup::default())
    }

    /// Rings it.
    pub fn wake(&self) {
        self.wake_tagged(UNTAGGED);
    }

    /// Rings it for the registration tagged `tag`.
    fn wake_tagged(&self, tag: u32) {
        let wakers = {
            let mut st = self.state.lock();
            st.notified = true;
            // Consecutive rings of one notifier are reported once.
            if tag != UNTAGGED && st.tags.last() != Some(&tag) {
                st.tags.push(tag);
            }
            std::mem::take(&mut st.wakers)
        };
        self.ready.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// Blocks until rung or `timeout` passes; true if rung. Clears the bell.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            if st.notified {
                st.notified = false;
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.ready.wait_for(&mut st, deadline - now);
        }
    }

    /// The tags of the tagged registrations that rang since the last call
    /// (a tag may repeat, though not twice in a row). Does not clear the bell.
    pub fn take_tags(&self) -> Vec<u32> {
        std::mem::take(&mut self.state.lock().tags)
    }

    /// Completes when rung (clearing the bell).
    pub fn wait_async(self: &Arc<Self>) -> WakeupFuture {
        WakeupFuture {
            wakeup: Arc::clone(self),
        }
    }
}

/// The future of [`Wakeup::wait_async`].
#[derive(Debug)]
pub struct WakeupFuture {
    wakeup: Arc<Wakeup>,
}

impl Future for WakeupFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.wakeup.state.lock();
        if st.notified {
            st.notified = false;
            return Poll::Ready(());
        }
        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Something waiters can wait for (new data in a partition, a tick).
#[derive(Debug, Default)]
pub struct Notifier {
    listeners: Mutex<Vec<(Weak<Wakeup>, u32)>>,
}

impl Notifier {
    /// Registers `w` to be woken by every later [`Notifier::notify`], until it
    /// is dropped or removed.
    pub fn subscribe(&self, w: &Arc<Wakeup>) {
        self.subscribe_tagged(w, UNTAGGED);
    }

    /// [`Notifier::subscribe`], reporting `tag` through
    /// [`Wakeup::take_tags`] each time this notifier rings `w`. A waiter
    /// already registered keeps its first tag.
    pub fn subscribe_tagged(&self, w: &Arc<Wakeup>, tag: u32) {
        let mut l = self.listeners.lock();
        if !l.iter().any(|(x, _)| x.as_ptr() == Arc::as_ptr(w)) {
            l.push((Arc::downgrade(w), tag));
        }
    }

    /// Stops waking `w`.
    pub fn unsubscribe(&self, w: &Arc<Wakeup>) {
        self.listeners
            .lock()
            .retain(|(x, _)| x.as_ptr() != Arc::as_ptr(w) && x.strong_count() > 0);
    }

    /// Wakes every listener (and forgets dropped ones).
    pub fn notify(&self) {
        let live: Vec<(Arc<Wakeup>, u32)> = {
            let mut l = self.listeners.lock();
            l.retain(|(x, _)| x.strong_count() > 0);
            l.iter()
                .filter_map(|(x, tag)| Some((x.upgrade()?, *tag)))
                .collect()
        };
        for (w, tag) in live {
            w.wake_tagged(tag);
        }
    }
}

/// A value delivered once, waited for blocking or async.
#[derive(Debug)]
pub struct Promise<T> {
    slot: Mutex<Option<T>>,
    wakeup: Arc<Wakeup>,
}

impl<T> Default for Promise<T> {
    fn default() -> Self {
        Promise {
            slot: Mutex::new(None),
            wakeup: Wakeup::new(),
        }
    }
}

impl<T> Promise<T> {
    /// An empty promise.
    pub fn new() -> Arc<Self> {
        Arc::new(Promise::default())
    }

    /// Fulfils it (later calls replace the value if it was not taken yet).
    pub fn fulfil(&self, value: T) {
        *self.slot.lock() = Some(value);
        self.wakeup.wake();
    }

    /// The bell rung when the value arrives (subscribe it elsewhere to be
    /// woken by other events too).
    pub fn bell(&self) -> &Arc<Wakeup> {
        &self.wakeup
    }

    /// Takes the value if it is there.
    pub fn try_take(&self) -> Option<T> {
        self.slot.lock().take()
    }

    /// Blocks up to `timeout` for the value.
    pub fn wait(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.try_take() {
                return Some(v);
            }
            let now = Instant::now();
            if now >= deadline || !self.wakeup.wait(deadline - now) {
                return self.try_take();
            }
        }
    }

    /// Waits for the value asynchronously.
    pub async fn wait_async(&self) -> T {
        loop {
            if let Some(v) = self.try_take() {
                return v;
            }
            self.wakeup.wait_async().await;
        }
    }
}

/// A value set once and read by any number of waiters (blocking or async).
#[derive(Debug)]
pub struct Outcome<T> {
    value: std::sync::OnceLock<T>,
    ready: Mutex<bool>,
    changed: Condvar,
    wakers: Mutex<Vec<Waker>>,
}

impl<T> Default for Outcome<T> {
    fn default() -> Self {
        Outcome {
            value: std::sync::OnceLock::new(),
            ready: Mutex::new(false),
            changed: Condvar::new(),
            wakers: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Outcome<T> {
    /// An outcome not known yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Outcome::default())
    }

    /// Sets it (only the first call counts) and wakes every waiter.
    pub fn set(&self, value: T) {
        let _ = self.value.set(value);
        *self.ready.lock() = true;
        self.changed.notify_all();
        for w in std::mem::take(&mut *self.wakers.lock()) {
            w.wake();
        }
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// Blocks up to `timeout` for the value.
    pub fn wait(&self, timeout: Duration) -> Option<&T> {
        let deadline = Instant::now() + timeout;
        let mut ready = self.ready.lock();
        while !*ready {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            self.changed.wait_for(&mut ready, deadline - now);
        }
        drop(ready);
        self.value.get()
    }

    /// Waits asynchronously for the value.
    pub fn wait_async(self: &Arc<Self>) -> OutcomeFuture<T> {
        OutcomeFuture {
            outcome: Arc::clone(self),
        }
    }
}

/// The future of [`Outcome::wait_async`]: completes once the value is set.
#[derive(Debug)]
pub struct OutcomeFuture<T> {
    outcome: Arc<Outcome<T>>,
}

impl<T> Future for OutcomeFuture<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.outcome.value.get().is_some() {
            return Poll::Ready(());
        }
        self.outcome.wakers.lock().push(cx.waker().clone());
        // Set between the check and the registration: do not sleep.
        if self.outcome.value.get().is_some() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_wakes_a_blocked_waiter() {
        let n = Arc::new(Notifier::default());
        let w = Wakeup::new();
        n.subscribe(&w);
        let n2 = Arc::clone(&n);
        let t = std::thread::spawn(move || n2.notify());
        assert!(w.wait(Duration::from_secs(10)));
        t.join().expect("thread");
        assert!(!w.wait(Duration::from_millis(1)), "the bell was cleared");
        drop(w);
        n.notify(); // a dropped listener is forgotten, not an error
        assert!(n.listeners.lock().is_empty());
    }

    #[test]
    fn tagged_registrations_say_which_notifier_rang() {
        let (a, b, c) = (
            Notifier::default(),
            Notifier::default(),
            Notifier::default(),
        );
        let w = Wakeup::new();
        a.subscribe_tagged(&w, 0);
        b.subscribe_tagged(&w, 1);
        c.subscribe(&w);
        b.notify();
        c.notify();
        b.notify();
        a.notify();
        b.notify();
        assert_eq!(w.take_tags(), vec![1, 0, 1]);
        assert!(w.wait(Duration::ZERO), "rung");
        assert!(w.take_tags().is_empty());
        a.unsubscribe(&w);
        a.notify();
        assert!(w.take_tags().is_empty(), "unsubscribed");
    }

    #[test]
    fn outcomes_are_read_by_many() {
        let o: Arc<Outcome<u32>> = Outcome::new();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let o = Arc::clone(&o);
                std::thread::spawn(move || o.wait(Duration::from_secs(10)).copied())
            })
            .collect();
        o.set(9);
        o.set(10);
        for r in readers {
            assert_eq!(r.join().expect("reader"), Some(9));
        }
    }

    #[test]
    fn promises_deliver_once() {
        let p: Arc<Promise<u32>> = Promise::new();
        let p2 = Arc::clone(&p);
        std::thread::spawn(move || p2.fulfil(7));
        assert_eq!(p.wait(Duration::from_secs(10)), Some(7));
        assert_eq!(p.try_take(), None);
    }
}
