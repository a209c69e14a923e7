//! A worker's places for requests in flight (`--max-inflight`).
//!
//! The bound is split between workers, each holding its share on its own
//! thread: taking and giving back a place is a counter change, with no
//! atomic operation and no lock. (tokio's `Semaphore`, shared by all
//! workers, took a lock on every release: 5% of the generator's user time at
//! 40,000 requests/s.) Past the share, requests queue first come, first
//! served, and a place given back goes straight to the first in line, so a
//! request arriving later can never overtake one that waits.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// This worker's share of `--max-inflight` out of `total`, for worker `id`
/// of `workers`: the shares add up to `total`. The executor never runs more
/// workers than `total`, so no share is empty.
pub fn share(total: usize, id: usize, workers: usize) -> usize {
    let workers = workers.max(1);
    (total / workers + usize::from(id < total % workers)).max(1)
}

#[derive(Default)]
struct Turn {
    granted: Cell<bool>,
    /// Gone: its request stopped waiting.
    left: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

struct Inner {
    free: Cell<usize>,
    line: RefCell<VecDeque<Rc<Turn>>>,
}

/// This worker's places.
pub struct Places {
    inner: Rc<Inner>,
}

/// A place in flight, given back when dropped.
pub struct Place {
    inner: Rc<Inner>,
}

impl Drop for Place {
    fn drop(&mut self) {
        give_back(&self.inner);
    }
}

/// Hands a place to the first still waiting, or frees it.
fn give_back(inner: &Inner) {
    let mut line = inner.line.borrow_mut();
    while let Some(turn) = line.pop_front() {
        if turn.left.get() {
            continue;
        }
        turn.granted.set(true);
        if let Some(w) = turn.waker.take() {
            w.wake();
        }
        return;
    }
    inner.free.set(inner.free.get() + 1);
}

impl Places {
    pub fn new(count: usize) -> Places {
        Places {
            inner: Rc::new(Inner {
                free: Cell::new(count.max(1)),
                line: RefCell::new(VecDeque::new()),
            }),
        }
    }

    /// A place: at once when one is free and nobody waits, else in turn.
    /// Nothing is taken until the future is polled, so one dropped unpolled
    /// (its request stopped first) holds nothing.
    pub fn take(&self) -> Take {
        Take {
            inner: self.inner.clone(),
            turn: None,
        }
    }
}

/// Waiting for a place. Dropped before it is ready, it leaves the line (and
/// passes on a place handed to it meanwhile).
pub struct Take {
    inner: Rc<Inner>,
    /// Its place in line, once it had to queue.
    turn: Option<Rc<Turn>>,
}

impl Future for Take {
    type Output = Place;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Place> {
        let inner = self.inner.clone();
        match &self.turn {
            None => {
                let free = inner.free.get();
                if free > 0 && inner.line.borrow().is_empty() {
                    inner.free.set(free - 1);
                    return Poll::Ready(Place { inner });
                }
                let turn = Rc::new(Turn::default());
                turn.waker.set(Some(cx.waker().clone()));
                inner.line.borrow_mut().push_back(turn.clone());
                self.turn = Some(turn);
                Poll::Pending
            }
            Some(turn) if !turn.granted.get() => {
                turn.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
            Some(_) => {
                self.turn = None;
                Poll::Ready(Place { inner })
            }
        }
    }
}

impl Drop for Take {
    fn drop(&mut self) {
        if let Some(turn) = self.turn.take() {
            if turn.granted.get() {
                give_back(&self.inner);
            } else {
                turn.left.set(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll(t: &mut Take) -> Option<Place> {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(t).poll(&mut cx) {
            Poll::Ready(p) => Some(p),
            Poll::Pending => None,
        }
    }

    #[test]
    fn shares_add_up_and_none_is_empty() {
        for total in 1..40 {
            for workers in 1..=total.min(8) {
                let shares: Vec<_> = (0..workers).map(|i| share(total, i, workers)).collect();
                assert_eq!(
                    shares.iter().sum::<usize>(),
                    total,
                    "{total} over {workers}"
                );
                assert!(shares.iter().all(|&s| s >= 1));
            }
        }
    }

    #[test]
    fn places_go_in_turn_and_nobody_overtakes() {
        let places = Places::new(1);
        let first = poll(&mut places.take()).expect("free at once");
        let mut a = places.take();
        let mut b = places.take();
        assert!(poll(&mut a).is_none() && poll(&mut b).is_none());
        drop(first);
        // A newcomer does not overtake the two waiting.
        let mut c = places.take();
        assert!(poll(&mut c).is_none());
        assert!(poll(&mut b).is_none(), "b is behind a");
        let pa = poll(&mut a).expect("a is first in line");
        drop(pa);
        let pb = poll(&mut b).expect("then b");
        assert!(poll(&mut c).is_none());
        drop(pb);
        drop(poll(&mut c).expect("then c"));
        assert_eq!(places.inner.free.get(), 1, "everything given back");
    }

    #[test]
    fn a_take_dropped_unpolled_holds_nothing() {
        let places = Places::new(1);
        drop(places.take());
        let first = poll(&mut places.take()).expect("the place is still free");
        let mut waiting = places.take();
        assert!(poll(&mut waiting).is_none());
        drop(first);
        assert!(poll(&mut waiting).is_some());
    }

    #[test]
    fn leaving_the_line_passes_the_place_on() {
        let places = Places::new(1);
        let first = poll(&mut places.take()).unwrap();
        let mut a = places.take();
        let mut b = places.take();
        let mut c = places.take();
        assert!(poll(&mut a).is_none());
        assert!(poll(&mut b).is_none() && poll(&mut c).is_none());
        // b leaves before its turn; a is handed the place and leaves too.
        drop(b);
        drop(first);
        drop(a);
        assert!(poll(&mut c).is_some(), "the place went on to c");
        drop(c);
        assert_eq!(places.inner.free.get(), 1);
        b = places.take();
        assert!(poll(&mut b).is_some());
    }
}
