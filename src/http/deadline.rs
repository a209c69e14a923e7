//! Request timeouts of one worker without a timer per request.
//!
//! `tokio::time::timeout` registers an entry in the runtime's timer wheel
//! when a request starts and takes it out when it ends — two trips through
//! the time driver's lock for every request, though almost none time out.
//! Here a request takes a slot holding its deadline, and one sweeper task
//! per worker wakes the overdue ones. The sweeper sleeps until the earliest
//! deadline it knows of (a request that starts with an earlier one wakes it
//! to look again), and sweeps at most every [`SWEEP`]. It used to look every
//! 5 ms whatever the deadlines, 200 times a second; while requests finish
//! before their timeout it now looks about once per timeout. (When requests
//! do keep timing out, the next deadline is always near and it still sweeps
//! every [`SWEEP`], over every slot.) A timeout fires up to a millisecond
//! (tokio's timer) late, or up to one [`SWEEP`] after the previous sweep.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// The least time between two sweeps.
const SWEEP: Duration = Duration::from_millis(5);

#[derive(Default)]
pub struct Deadlines {
    slots: RefCell<Slab<Slot>>,
    sweeping: Cell<bool>,
    /// The earliest deadline the sweeper knows of (it looks then, or
    /// [`SWEEP`] after its last look if that is later; the request may be
    /// gone by then, which costs one sweep); `None`: it waits to be told.
    next: Cell<Option<Instant>>,
    /// The sleeping sweeper, to be woken for an earlier deadline.
    sweeper: RefCell<Option<Waker>>,
    /// Sweeps so far (tests count them).
    #[cfg(test)]
    sweeps: Cell<u64>,
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
        if self.next.get().is_none_or(|n| deadline < n) {
            // Earlier than the sweeper means to look (or it waits to be
            // told): it looks again when it runs.
            self.next.set(Some(deadline));
            if let Some(w) = self.sweeper.borrow_mut().take() {
                w.wake();
            }
        }
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

/// Wakes overdue requests when the earliest deadline comes, until the
/// client is gone. Holds the client's deadlines only while it sweeps.
async fn sweep(deadlines: std::rc::Weak<Deadlines>) {
    #[cfg(test)]
    let _running = super::Running::new(&tests::SWEEPERS);
    let mut sleep = Box::pin(tokio::time::sleep(Duration::ZERO));
    let mut last = Instant::now();
    loop {
        let go = std::future::poll_fn(|cx| {
            let Some(d) = deadlines.upgrade() else {
                return Poll::Ready(false);
            };
            if let Some(next) = d.next.get() {
                let at = tokio::time::Instant::from_std(next.max(last + SWEEP));
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
            }
            *d.sweeper.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        let Some(d) = deadlines.upgrade().filter(|_| go) else {
            return;
        };
        let now = Instant::now();
        last = now;
        #[cfg(test)]
        d.sweeps.set(d.sweeps.get() + 1);
        let mut next: Option<Instant> = None;
        for (_, s) in d.slots.borrow_mut().iter_mut() {
            if s.expired {
                continue;
            }
            if s.deadline <= now {
                s.expired = true;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            } else {
                next = Some(next.map_or(s.deadline, |n| n.min(s.deadline)));
            }
        }
        d.next.set(next);
    }
}

impl Drop for Deadlines {
    fn drop(&mut self) {
        // A sweeper waiting to be told learns that the client is gone.
        if let Some(w) = self.sweeper.get_mut().take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Sweepers running on this thread.
        pub(super) static SWEEPERS: Cell<usize> = const { Cell::new(0) };
    }

    /// With the client gone, its sweeper ends, even while it waits to be
    /// told of a deadline.
    #[tokio::test(flavor = "current_thread")]
    async fn the_sweeper_ends_with_its_client() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let d = Rc::new(Deadlines::default());
                drop(d.start(Instant::now() + Duration::from_millis(1)));
                tokio::time::sleep(Duration::from_millis(20)).await;
                // It has looked, found nothing, and waits to be told.
                assert_eq!((d.sweeps.get(), d.next.get()), (1, None));
                assert_eq!(SWEEPERS.with(Cell::get), 1);
                drop(d);
                tokio::time::sleep(Duration::from_millis(20)).await;
                assert_eq!(SWEEPERS.with(Cell::get), 0);
            })
            .await;
    }

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

    /// A request whose deadline is earlier than any the sweeper knows of
    /// wakes it to look again; far-off deadlines do not make it look every
    /// few milliseconds.
    #[tokio::test(flavor = "current_thread")]
    async fn the_sweeper_sleeps_until_the_earliest_deadline() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let d = Rc::new(Deadlines::default());
                let t0 = Instant::now();
                let far = d.start(t0 + Duration::from_secs(60));
                tokio::time::sleep(Duration::from_millis(100)).await;
                let sweeps = d.sweeps.get();
                assert!(sweeps <= 1, "{sweeps} sweeps in 100 ms with nothing due");
                let near = d.start(Instant::now() + Duration::from_millis(30));
                let t1 = Instant::now();
                tokio::time::timeout(Duration::from_secs(5), near.expired())
                    .await
                    .expect("the earlier deadline fires");
                let waited = t1.elapsed();
                assert!(waited >= Duration::from_millis(30), "{waited:?}");
                assert!(!d.slots.borrow()[far.slot].expired);
                drop((near, far));
            })
            .await;
    }
}
