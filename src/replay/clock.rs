//! Waiting until a request is due.
//!
//! tokio's timers tick in milliseconds: a request due at 20.3 ms would leave
//! at 21 ms, and every latency measured from its due time would carry up to
//! a millisecond the target never spent. On Linux each worker therefore has
//! a precise timer: one `timerfd` armed for the earliest pending deadline
//! (with the thread's timer slack set to 1 µs), woken through tokio's reactor,
//! firing at most every 500 µs so that high rates share wake-ups.
//! Tests use tokio's clock instead, so they can pause and advance time.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use tokio::time::Instant;

/// How the executor reads the time and waits.
pub trait Clock: Clone + 'static {
    fn now(&self) -> Instant;
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()>;
}

/// tokio's clock (millisecond timers; pausable in tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        tokio::time::sleep_until(deadline)
    }
}

/// A microsecond timer for one worker thread.
#[derive(Clone)]
pub struct PreciseClock {
    inner: Rc<RefCell<Inner>>,
}

#[cfg(target_os = "linux")]
type TimerFd = tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>;

/// The timer fires at most once per this: deadlines closer together than
/// this are woken together, the later ones up to this much late (half of
/// tokio's millisecond, which also delays the earliest). Sparse deadlines
/// each get their own wake-up, on time; at thousands of requests a second a
/// wake-up serves several requests instead of costing each a timer expiry,
/// an epoll return, a read, and a send that has to wake an idle target.
/// The lateness is not hidden: latency counts from the due time and the
/// generator lag is reported (docs/performance.md has the trade measured).
const COALESCE: std::time::Duration = std::time::Duration::from_micros(500);

struct Inner {
    /// The timerfd's number (the descriptor itself is owned by the driver).
    raw: i32,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    wakers: rustc_hash::FxHashMap<u64, Waker>,
    next_id: u64,
    armed: Option<Instant>,
    /// When the timer last fired.
    fired: Option<Instant>,
}

impl PreciseClock {
    /// A timer for the current thread, with its driver task spawned on the
    /// current `LocalSet`. Falls back to tokio's clock where there is no
    /// timerfd.
    #[cfg(target_os = "linux")]
    pub fn new() -> std::io::Result<PreciseClock> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscalls; the descriptor is checked and owned.
        let fd = unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0);
            let fd = libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            );
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            std::os::fd::OwnedFd::from_raw_fd(fd)
        };
        use std::os::fd::AsRawFd;
        let raw = fd.as_raw_fd();
        // SAFETY: the descriptor is ours and owned by the AsyncFd from here.
        let fd = unsafe { TimerFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        let clock = PreciseClock {
            inner: Rc::new(RefCell::new(Inner {
                raw,
                heap: BinaryHeap::new(),
                wakers: rustc_hash::FxHashMap::default(),
                next_id: 0,
                armed: None,
                fired: None,
            })),
        };
        tokio::task::spawn_local(drive(fd, clock.inner.clone()));
        Ok(clock)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> std::io::Result<PreciseClock> {
        Err(std::io::Error::other("no precise timer on this platform"))
    }
}

#[cfg(target_os = "linux")]
fn arm(inner: &mut Inner, deadline: Instant) {
    let deadline = match inner.fired {
        Some(f) => deadline.max(f + COALESCE),
        None => deadline,
    };
    if inner.armed.is_some_and(|a| a <= deadline) {
        return;
    }
    let rel = deadline
        .saturating_duration_since(Instant::now())
        .max(std::time::Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: rel.as_secs() as libc::time_t,
            tv_nsec: rel.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: a valid timerfd and a valid itimerspec.
    unsafe {
        libc::timerfd_settime(inner.raw, 0, &spec, std::ptr::null_mut());
    }
    inner.armed = Some(deadline);
}

/// Wakes sleepers as their deadlines come. Ends when the worker's tasks
/// are dropped.
#[cfg(target_os = "linux")]
async fn drive(fd: TimerFd, inner: Rc<RefCell<Inner>>) {
    use std::os::fd::AsRawFd;
    loop {
        let Ok(mut guard) = fd.readable().await else {
            return;
        };
        let mut buf = [0u8; 8];
        // SAFETY: reading the expiration count of our own timerfd.
        unsafe {
            libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8);
        }
        guard.clear_ready();
        let mut i = inner.borrow_mut();
        i.armed = None;
        let now = Instant::now();
        i.fired = Some(now);
        while let Some(Reverse((deadline, id))) = i.heap.peek().copied() {
            if deadline > now {
                arm(&mut i, deadline);
                break;
            }
            i.heap.pop();
            if let Some(w) = i.wakers.remove(&id) {
                w.wake();
            }
        }
    }
}

/// A sleep on the precise timer.
pub struct PreciseSleep {
    clock: PreciseClock,
    deadline: Instant,
    id: Option<u64>,
}

impl Future for PreciseSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let mut inner = self.clock.inner.borrow_mut();
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = inner.next_id;
                inner.next_id += 1;
                inner.heap.push(Reverse((self.deadline, id)));
                #[cfg(target_os = "linux")]
                arm(&mut inner, self.deadline);
                id
            }
        };
        inner.wakers.insert(id, cx.waker().clone());
        drop(inner);
        self.id = Some(id);
        Poll::Pending
    }
}

impl Drop for PreciseSleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // The heap entry stays until its time; its waker goes now.
            self.clock.inner.borrow_mut().wakers.remove(&id);
        }
    }
}

impl Clock for PreciseClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        PreciseSleep {
            clock: self.clone(),
            deadline,
            id: None,
        }
    }
}
