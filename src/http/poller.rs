//! Readiness of the lean path's sockets, looked at in batches.
//!
//! Registered with tokio's reactor, every response that arrives while the
//! worker sleeps wakes it: at 20,000 requests a second the worker slept and
//! woke three times for each of its timer's wake-ups, once per trickle of
//! responses, and each return from sleep costs kernel time a saturated
//! closed-loop generator never pays (docs/performance.md). Here the
//! sockets live in an epoll set of their own, which tokio's reactor sees
//! only through a one-shot gate: after the poller has looked at the set it
//! waits at least [`WINDOW`] before the next look, on the worker's own timer
//! (so the look shares the wake-up of the requests due then), and only when
//! a look found nothing does it open the gate, so an idle worker still
//! hears the first answer at once.
//!
//! Answers seen up to a window late are not measured late: every read
//! carries the kernel's receive time of its data (`SO_TIMESTAMPNS`), and
//! the exchange's timings use it.

#[cfg(test)]
use std::cell::Cell;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::unix::AsyncFd;

/// The least time between two looks at the sockets while answers keep
/// coming: the precise timer's coalescing window, so one wake-up serves
/// both the requests due and the answers in.
pub const WINDOW: Duration = Duration::from_micros(500);

/// Sleeps until the instant given; the worker's precise timer when there is
/// one, so the poller's looks share its wake-ups.
pub type Nap = Rc<dyn Fn(Instant) -> Pin<Box<dyn Future<Output = ()>>>>;

/// tokio's timer (millisecond ticks), for clients without a precise one.
pub fn tokio_nap() -> Nap {
    Rc::new(|at| Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(at))))
}

/// One worker's set of lean-path sockets.
pub struct Poller {
    set: OwnedFd,
    slots: RefCell<Vec<Slot>>,
    /// The looking task, when it waits to be told the poller is gone.
    task: RefCell<Option<Waker>>,
    #[cfg(test)]
    looks: Cell<u64>,
}

#[derive(Default)]
struct Slot {
    readable: bool,
    writable: bool,
    /// The peer closed or the socket failed: reads and writes go to the
    /// kernel from now on, to hear about it.
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Slot {
    fn read_side(&mut self) -> (&mut bool, &mut Option<Waker>) {
        (&mut self.readable, &mut self.reader)
    }

    fn write_side(&mut self) -> (&mut bool, &mut Option<Waker>) {
        (&mut self.writable, &mut self.writer)
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn epoll() -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall; the descriptor is checked and owned.
    unsafe {
        Ok(OwnedFd::from_raw_fd(cvt(libc::epoll_create1(
            libc::EPOLL_CLOEXEC,
        ))?))
    }
}

fn ctl(epfd: RawFd, op: libc::c_int, fd: RawFd, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: valid descriptors and a valid event.
    cvt(unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) }).map(|_| ())
}

const SOCKET_EVENTS: u32 =
    (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
const GATE_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;

impl Poller {
    /// A poller with its looking task spawned on the current `LocalSet`;
    /// the task ends when the poller is dropped.
    pub fn new(nap: Nap) -> io::Result<Rc<Poller>> {
        let set = epoll()?;
        let gate = epoll()?;
        ctl(
            gate.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            set.as_raw_fd(),
            GATE_EVENTS,
        )?;
        // SAFETY: the gate is ours and owned by the AsyncFd from here.
        let gate = unsafe { AsyncFd::register_with_interest(gate, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        let poller = Rc::new(Poller {
            set,
            slots: RefCell::default(),
            task: RefCell::default(),
            #[cfg(test)]
            looks: Cell::new(0),
        });
        tokio::task::spawn_local(watch(Rc::downgrade(&poller), gate, nap));
        Ok(poller)
    }

    /// Looks at the set without waiting: marks what is ready and wakes who
    /// waits for it. How many sockets had news.
    fn look(&self) -> usize {
        #[cfg(test)]
        self.looks.set(self.looks.get() + 1);
        const BATCH: usize = 256;
        // Not zeroed: the kernel writes the first n, and only those are
        // read (zeroing 3 KB was 3,000 instructions a look).
        let mut events = [const { std::mem::MaybeUninit::<libc::epoll_event>::uninit() }; BATCH];
        let mut total = 0;
        loop {
            // SAFETY: our epoll set and a buffer of BATCH events.
            let n = unsafe {
                libc::epoll_wait(
                    self.set.as_raw_fd(),
                    events.as_mut_ptr().cast(),
                    BATCH as i32,
                    0,
                )
            };
            if n <= 0 {
                return total;
            }
            let n = n as usize;
            total += n;
            let mut slots = self.slots.borrow_mut();
            for ev in &events[..n] {
                // SAFETY: epoll_wait wrote the first n events.
                let ev = unsafe { ev.assume_init_ref() };
                let Some(s) = slots.get_mut(ev.u64 as usize) else {
                    continue;
                };
                let bits = ev.events as libc::c_int;
                let failed = bits & (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) != 0;
                s.closed |= failed;
                if bits & libc::EPOLLIN != 0 || failed {
                    s.readable = true;
                    if let Some(w) = s.reader.take() {
                        w.wake();
                    }
                }
                if bits & libc::EPOLLOUT != 0 || failed {
                    s.writable = true;
                    if let Some(w) = s.writer.take() {
                        w.wake();
                    }
                }
            }
            if n < BATCH {
                return total;
            }
        }
    }

    #[cfg(test)]
    pub fn looks(&self) -> u64 {
        self.looks.get()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        if let Some(w) = self.task.get_mut().take() {
            w.wake();
        }
    }
}

/// The looking task: a look, then a window's nap while looks find news;
/// when one finds nothing, the gate opens and the next news wakes it.
async fn watch(poller: Weak<Poller>, gate: AsyncFd<OwnedFd>, nap: Nap) {
    #[cfg(test)]
    let _running = super::Running::new(&tests::WATCHERS);
    loop {
        let Some(p) = poller.upgrade() else {
            return;
        };
        let looked = Instant::now();
        if p.look() > 0 {
            drop(p);
            nap(looked + WINDOW).await;
            continue;
        }
        // Open the gate: one event of the set (perhaps already there) makes
        // it readable, and it stays shut after that until opened again.
        if ctl(
            gate.as_raw_fd(),
            libc::EPOLL_CTL_MOD,
            p.set.as_raw_fd(),
            GATE_EVENTS,
        )
        .is_err()
        {
            return;
        }
        drop(p);
        let opened = std::future::poll_fn(|cx| {
            let Some(p) = poller.upgrade() else {
                return Poll::Ready(false);
            };
            if let Poll::Ready(r) = gate.poll_read_ready(cx) {
                let Ok(mut guard) = r else {
                    return Poll::Ready(false);
                };
                guard.clear_ready();
                return Poll::Ready(true);
            }
            *p.task.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        if !opened {
            return;
        }
        // Take the gate's one event, so that opening it again can signal.
        let mut ev = [libc::epoll_event { events: 0, u64: 0 }];
        // SAFETY: our gate and a buffer of one event.
        unsafe {
            libc::epoll_wait(gate.as_raw_fd(), ev.as_mut_ptr(), 1, 0);
        }
    }
}

/// A nonblocking TCP socket in a poller's set, reads timestamped.
pub struct Socket {
    stream: std::net::TcpStream,
    poller: Rc<Poller>,
}

/// What a read brought: how many bytes, and when the last of them arrived
/// (the kernel's time, when it gave one; otherwise the time of the read).
pub struct Got {
    pub n: usize,
    pub at: Instant,
}

impl Socket {
    /// Moves a connected tokio stream into `poller`'s set.
    pub fn new(stream: tokio::net::TcpStream, poller: Rc<Poller>) -> io::Result<Socket> {
        let stream = stream.into_std()?;
        let fd = stream.as_raw_fd();
        let on: libc::c_int = 1;
        // SAFETY: our socket and an int option.
        cvt(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
        {
            let mut slots = poller.slots.borrow_mut();
            let i = fd as usize;
            if slots.len() <= i {
                slots.resize_with(i + 1, Slot::default);
            }
            slots[i] = Slot {
                readable: true,
                writable: true,
                ..Slot::default()
            };
        }
        ctl(
            poller.set.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            SOCKET_EVENTS,
        )?;
        Ok(Socket { stream, poller })
    }

    fn fd(&self) -> usize {
        self.stream.as_raw_fd() as usize
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_io(cx, Slot::write_side, || {
            // SAFETY: our socket and a valid buffer.
            let n = unsafe {
                libc::send(
                    self.stream.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    /// Reads into `buf`: `n == 0` when the peer closed.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<Got> {
        std::future::poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<Got>> {
        let fd = self.stream.as_raw_fd();
        self.poll_io(cx, Slot::read_side, || recv_stamped(fd, buf))
    }

    /// Runs `op` (one system call) when `side` of the socket may be ready
    /// or the socket closed; otherwise, and when the kernel says "not yet",
    /// waits for the poller's news of that side. Never goes round again
    /// after "not yet", closed or not: a peer that shut its side and reads
    /// no more leaves our send buffer full, and retrying would spin the
    /// worker; room made later is news of its own.
    fn poll_io<T>(
        &self,
        cx: &mut Context<'_>,
        side: fn(&mut Slot) -> (&mut bool, &mut Option<Waker>),
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let fd = self.fd();
        {
            let mut slots = self.poller.slots.borrow_mut();
            let s = &mut slots[fd];
            let closed = s.closed;
            let (ready, waiter) = side(s);
            if !*ready && !closed {
                *waiter = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut slots = self.poller.slots.borrow_mut();
                    let (ready, waiter) = side(&mut slots[fd]);
                    *ready = false;
                    *waiter = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                done => return Poll::Ready(done),
            }
        }
    }

    /// Everything that was ready has been read: the next read waits for
    /// news instead of asking the kernel for what can only be "not yet".
    /// News that came meanwhile is still in the set, and marks it again.
    pub fn drained(&mut self) {
        let fd = self.fd();
        self.poller.slots.borrow_mut()[fd].readable = false;
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Closing the descriptor (after this) takes it out of the set.
        let fd = self.fd();
        if let Some(s) = self.poller.slots.borrow_mut().get_mut(fd) {
            *s = Slot::default();
        }
    }
}

/// `recvmsg` with the kernel's receive time of the data read.
fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<Got> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one SCM_TIMESTAMPNS message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: zeroed msghdr is valid; its pointers are set below to live
    // buffers of the lengths given.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: our socket and the message set up above.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let now = Instant::now();
    let mut at = now;
    // SAFETY: walking the control buffer the kernel filled, with its macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                at = arrival(now, &ts);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Got { n: n as usize, at })
}

/// The monotonic instant of a wall-clock receive time: now, less how long
/// ago it was (never later than now).
fn arrival(now: Instant, ts: &libc::timespec) -> Instant {
    let stamp = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    now.checked_sub(wall.saturating_sub(stamp)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::local;
    use std::io::Write;

    thread_local! {
        /// Looking tasks running on this thread.
        pub(super) static WATCHERS: Cell<usize> = const { Cell::new(0) };
    }

    /// A socket in a new poller, and the blocking peer it is connected to.
    async fn pair(poller: &Rc<Poller>) -> (Socket, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (peer, _) = listener.accept().unwrap();
        (Socket::new(stream, poller.clone()).unwrap(), peer)
    }

    /// Data read long after it came is timed when it came, not when read:
    /// the worker may look a window late, and the latency must not grow by
    /// it.
    #[test]
    fn reads_carry_the_time_their_data_arrived() {
        local(async {
            let poller = Poller::new(tokio_nap()).unwrap();
            let (mut socket, mut peer) = pair(&poller).await;
            peer.write_all(b"hello").unwrap();
            let written = Instant::now();
            // The worker is busy (blocked) for 100 ms before it reads.
            std::thread::sleep(Duration::from_millis(100));
            let mut buf = [0u8; 16];
            let got = socket.read(&mut buf).await.unwrap();
            let read = Instant::now();
            assert_eq!(&buf[..got.n], b"hello");
            assert!(read - written >= Duration::from_millis(100));
            assert!(
                got.at < written + Duration::from_millis(20),
                "arrived {:?} after the write, read {:?} after it",
                got.at.saturating_duration_since(written),
                read - written
            );
        });
    }

    /// An idle worker waits for news without looking again and again, and
    /// hears it as soon as it comes; a socket whose response was all read
    /// waits for the next one without asking the kernel.
    #[test]
    fn an_idle_poller_waits_for_news_without_looking() {
        local(async {
            let poller = Poller::new(tokio_nap()).unwrap();
            let (mut socket, mut peer) = pair(&poller).await;
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                peer.write_all(b"late").unwrap();
                peer
            });
            let mut buf = [0u8; 16];
            let asked = Instant::now();
            let got = socket.read(&mut buf).await.unwrap();
            let waited = asked.elapsed();
            assert_eq!(&buf[..got.n], b"late");
            assert!(waited >= Duration::from_millis(290), "{waited:?}");
            // Heard within a few milliseconds of the write (not at some
            // later look), and by a handful of looks, not one per window.
            assert!(waited < Duration::from_millis(300) + Duration::from_millis(100));
            assert!(poller.looks() <= 4, "{} looks", poller.looks());
            socket.drained();
            let mut peer = writer.join().unwrap();
            peer.write_all(b"again").unwrap();
            let got = socket.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..got.n], b"again");
            // A close is news too.
            drop(peer);
            assert_eq!(socket.read(&mut buf).await.unwrap().n, 0);
        });
    }

    /// While news keeps coming, the poller looks once per window on the
    /// timer it was given, not once per answer.
    #[test]
    fn busy_sockets_are_looked_at_once_a_window() {
        local(async {
            let naps = Rc::new(Cell::new(0u32));
            let counted = naps.clone();
            let nap: Nap = Rc::new(move |at| {
                counted.set(counted.get() + 1);
                Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(at)))
            });
            let poller = Poller::new(nap).unwrap();
            let mut pairs = Vec::new();
            for _ in 0..20 {
                pairs.push(pair(&poller).await);
            }
            // Nothing to read yet: each read waits for the poller to see news.
            for (socket, _) in &mut pairs {
                socket.drained();
            }
            let before = poller.looks();
            // Every peer answers at once; all twenty are read after one or
            // two looks.
            for (_, peer) in &mut pairs {
                peer.write_all(b"x").unwrap();
            }
            let mut buf = [0u8; 4];
            for (socket, _) in &mut pairs {
                assert_eq!(socket.read(&mut buf).await.unwrap().n, 1);
            }
            let looks = poller.looks() - before;
            assert!((1..=3).contains(&looks), "{looks} looks");
            assert!(naps.get() >= 1, "a look with news is followed by a nap");
        });
    }

    /// A peer that shut its side and reads nothing leaves the send buffer
    /// full: the write waits (for a timeout to end it) instead of spinning
    /// the worker, which keeps running its other tasks.
    #[test]
    fn a_write_to_a_half_closed_peer_that_reads_nothing_waits() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            local(async {
                let poller = Poller::new(tokio_nap()).unwrap();
                let (mut socket, peer) = pair(&poller).await;
                peer.shutdown(std::net::Shutdown::Write).unwrap();
                let mut buf = [0u8; 4];
                assert_eq!(socket.read(&mut buf).await.unwrap().n, 0);
                let big = vec![b'x'; 64 << 20];
                let wrote =
                    tokio::time::timeout(Duration::from_millis(300), socket.write_all(&big)).await;
                assert!(
                    wrote.is_err(),
                    "a 64 MB write to a peer that reads nothing finished"
                );
                drop(peer);
            });
            done.send(()).unwrap();
        });
        match finished.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("the write spun instead of waiting")
            }
            Err(e) => panic!("the test's thread failed: {e}"),
        }
    }

    /// With its client gone, the looking task ends.
    #[test]
    fn the_looking_task_ends_with_its_poller() {
        local(async {
            let poller = Poller::new(tokio_nap()).unwrap();
            tokio::task::yield_now().await;
            assert_eq!(WATCHERS.with(Cell::get), 1);
            drop(poller);
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            assert_eq!(WATCHERS.with(Cell::get), 0);
        });
    }
}
