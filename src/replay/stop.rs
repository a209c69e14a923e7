//! A worker's stop signal, local to its thread.
//!
//! Every await of a session races the stop (Ctrl-C, an abort, the end of
//! the grace period), four or five times per request. tokio-util's
//! `CancellationToken` is shared between threads: each race takes its
//! locks to look at the token and to queue a waiter. Here the shared token
//! is watched once per worker, and a race is a flag check and, while it
//! waits, a slot in this thread's list of wakers.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slab::Slab;
use tokio_util::sync::CancellationToken;

/// Cheap to clone; every clone sees the same stop.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    stopped: Cell<bool>,
    waiting: RefCell<Slab<Waker>>,
}

impl Stop {
    /// A stop that also follows `shared` (the run's shutdown), through a
    /// task on the current `LocalSet`.
    pub fn following(shared: CancellationToken) -> Stop {
        let stop = Stop::default();
        let local = stop.clone();
        tokio::task::spawn_local(async move {
            shared.cancelled().await;
            local.trigger();
        });
        stop
    }

    pub fn trigger(&self) {
        if self.inner.stopped.replace(true) {
            return;
        }
        let waiting = std::mem::take(&mut *self.inner.waiting.borrow_mut());
        for (_, w) in waiting {
            w.wake();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.get()
    }

    /// Completes when the stop is triggered.
    pub fn stopped(&self) -> Stopped<'_> {
        Stopped {
            stop: &self.inner,
            slot: None,
        }
    }
}

pub struct Stopped<'a> {
    stop: &'a Inner,
    slot: Option<usize>,
}

impl Future for Stopped<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.stop.stopped.get() {
            self.slot = None;
            return Poll::Ready(());
        }
        let mut waiting = self.stop.waiting.borrow_mut();
        match self.slot {
            Some(i) => {
                if let Some(w) = waiting.get_mut(i)
                    && !w.will_wake(cx.waker())
                {
                    *w = cx.waker().clone();
                }
            }
            None => {
                let i = waiting.insert(cx.waker().clone());
                drop(waiting);
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot
            && !self.stop.stopped.get()
        {
            self.stop.waiting.borrow_mut().try_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn waiters_wake_on_the_shared_token_and_leave_no_slot_behind() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let shared = CancellationToken::new();
                let stop = Stop::following(shared.clone());
                // A race that ends otherwise gives its slot back.
                tokio::select! {
                    _ = stop.stopped() => panic!("not stopped yet"),
                    _ = tokio::task::yield_now() => {}
                }
                assert!(stop.inner.waiting.borrow().is_empty());
                let waiters: Vec<_> = (0..3)
                    .map(|_| {
                        let s = stop.clone();
                        tokio::task::spawn_local(async move { s.stopped().await })
                    })
                    .collect();
                tokio::task::yield_now().await;
                assert_eq!(stop.inner.waiting.borrow().len(), 3);
                assert!(!stop.is_stopped());
                shared.cancel();
                for w in waiters {
                    w.await.unwrap();
                }
                assert!(stop.is_stopped());
                // Once stopped, a new race is over at once.
                stop.stopped().await;
            })
            .await;
    }
}
