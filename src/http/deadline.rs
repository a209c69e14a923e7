//! Request timeouts of one worker without a timer per request.
//!
//! `tokio::time::timeout` registers an entry in the runtime's timer wheel
//! when a request starts and takes it out when it ends — two trips through
//! the time driver's lock for every request, though almost none time out.
//! Here a request takes a slot holding its deadline, and one sweeper task
//! per worker looks at the slots every few milliseconds and wakes the
//! overdue ones. A timeout fires up to one sweep late.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often the sweeper looks.
const SWEEP: Duration = Duration::from_millis(5);

#[derive(Default)]
pub struct Deadlines {
    slots: RefCell<Slab<Slot>>,
    sweeping: Cell<bool>,
}

struct Slot {
    deadline: Instant,
    expired: bool,
    waker: Option<Waker>,
}

/// A request's slot; given back when dropped.
pub struct Deadline<'a> {
    owner: &'a Rc<Deadlines>,
    slot: usize,
}

impl Deadlines {
    /// A slot expiring at `deadline`. Starts the sweeper (on the current
    /// `LocalSet`) the first time.
    pub fn start(self: &Rc<Self>, deadline: Instant) -> Deadline<'_> {
        if !self.sweeping.replace(true) {
            tokio::task::spawn_local(sweep(Rc::downgrade(self)));
        }
        let slot = self.slots.borrow_mut().insert(Slot {
            deadline,
            expired: false,
            waker: None,
        });
        Deadline { owner: self, slot }
    }
}

impl Deadline<'_> {
    /// Completes when the deadline has passed.
    pub fn expired(&self) -> Expired<'_> {
        Expired { deadline: self }
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        self.owner.slots.borrow_mut().try_remove(self.slot);
    }
}

pub struct Expired<'a> {
    deadline: &'a Deadline<'a>,
}

impl Future for Expired<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut slots = self.deadline.owner.slots.borrow_mut();
        let Some(s) = slots.get_mut(self.deadline.slot) else {
            return Poll::Ready(());
        };
        if s.expired {
            return Poll::Ready(());
        }
        match &mut s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Wakes overdue requests every [`SWEEP`] until the client is gone.
async fn sweep(deadlines: std::rc::Weak<Deadlines>) {
    loop {
        tokio::time::sleep(SWEEP).await;
        let Some(d) = deadlines.upgrade() else {
            return;
        };
        let now = Instant::now();
        for (_, s) in d.slots.borrow_mut().iter_mut() {
            if !s.expired && s.deadline <= now {
                s.expired = true;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn overdue_requests_wake_and_finished_ones_leave() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let d = Rc::new(Deadlines::default());
                let quick = d.start(Instant::now() + Duration::from_secs(60));
                drop(quick);
                assert!(d.slots.borrow().is_empty());
                let t0 = Instant::now();
                let slow = d.start(t0 + Duration::from_millis(20));
                let later = d.start(t0 + Duration::from_secs(60));
                slow.expired().await;
                let waited = t0.elapsed();
                assert!(waited >= Duration::from_millis(20), "{waited:?}");
                assert!(!d.slots.borrow()[later.slot].expired);
                tokio::select! {
                    biased;
                    _ = later.expired() => panic!("a minute has not passed"),
                    _ = tokio::time::sleep(Duration::from_millis(15)) => {}
                }
            })
            .await;
    }
}
