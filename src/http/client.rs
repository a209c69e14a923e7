//! The hyper client of one worker: its own connections to each origin,
//! HTTP/1.1 (kept alive and reused) or HTTP/2 (one multiplexed connection,
//! by ALPN or forced), each phase timed.
//!
//! hyper-util's pooled client shares its pool between threads behind locks
//! and hides which request opened a connection; here each worker owns its
//! pool outright, and a request that had to connect reports how long the
//! connect and the TLS handshake took.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::error::Error as _;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::deadline::Deadlines;
use super::h1::Conn;
use super::poller::{Nap, Poller, Socket, tokio_nap};
use super::{ErrorKind, Origin, Outcome, Request, Transport, io_kind};

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// For the whole request, connecting included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// HTTP/2 only: prior knowledge on `http`, `h2` only in ALPN on `https`.
    pub http2: bool,
    /// TLS settings, for `https` origins.
    pub tls: Option<Arc<ClientConfig>>,
}

type Body = Full<Bytes>;

/// hyper's HTTP/2 connection tasks run on the worker's own thread.
#[derive(Clone, Copy)]
struct LocalExec;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

#[derive(Default)]
struct OriginPool {
    addrs: Vec<SocketAddr>,
    /// The name did not resolve, when and why: requests in the next
    /// [`UNRESOLVED_FOR`] fail at once with the same error instead of each
    /// asking the resolver again (which, when it is the thing that is
    /// broken, can take seconds per lookup).
    unresolved: Option<(Instant, Failure)>,
    /// Name lookups made (tests count them).
    lookups: u64,
    /// A lookup in progress: others wait for it instead of asking too.
    looking_up: Option<Rc<tokio::sync::Notify>>,
    /// hyper's HTTP/1.1 connections (TLS).
    idle: Vec<http1::SendRequest<Body>>,
    h2: Option<http2::SendRequest<Body>>,
    /// Plain HTTP/1.1 connections of the lean path.
    lean: Vec<Conn>,
    /// Connections being opened now, and the most there ever were.
    connecting: usize,
    peak_connecting: usize,
    /// Requests waiting, first come first served, for a connection to
    /// come back or a connect slot to free up.
    waiters: VecDeque<Rc<Waiter>>,
}

/// Connections opened at once to one origin by one worker. Past this,
/// requests wait for a connection to come back or a connect to finish: a
/// burst of due requests on a cold or drained pool would otherwise open
/// thousands of connections at once, overflow the target's accept queue and
/// wait a full second for the kernel to retry the dropped SYNs.
const MAX_CONNECTING: usize = 16;

/// How long a failed name lookup is remembered.
const UNRESOLVED_FOR: Duration = Duration::from_secs(1);

/// An idle HTTP/1.1 connection of either path.
enum Idle {
    Lean(Conn),
    Hyper(http1::SendRequest<Body>),
}

/// A request waiting in line. A connection that comes back goes straight
/// to the first in line, so a burst of new requests cannot pass over the
/// ones already waiting.
#[derive(Default)]
struct Waiter {
    handed: RefCell<Option<Idle>>,
    /// Told: a connection was handed over, or a connect slot is free.
    told: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Waiter {
    fn tell(&self, conn: Option<Idle>) {
        *self.handed.borrow_mut() = conn;
        self.told.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// A connect in progress; when it ends, the first waiting request is told.
struct ConnectSlot<'a> {
    client: &'a Client,
    origin: &'a Origin,
}

impl Drop for ConnectSlot<'_> {
    fn drop(&mut self) {
        self.client.with_pool(self.origin, |p| {
            p.connecting -= 1;
            if let Some(w) = p.next_waiter() {
                w.tell(None);
            }
        });
    }
}

impl OriginPool {
    /// The first request in line that is still waiting (one that gave up,
    /// at its timeout, holds the only other reference and is skipped).
    fn next_waiter(&mut self) -> Option<Rc<Waiter>> {
        while let Some(w) = self.waiters.pop_front() {
            if Rc::strong_count(&w) > 1 {
                return Some(w);
            }
        }
        None
    }

    /// A connection is free again: to the first in line, or to the pool.
    fn put(&mut self, conn: Idle) {
        match self.next_waiter() {
            Some(w) => w.tell(Some(conn)),
            None => match conn {
                Idle::Lean(c) => self.lean.push(c),
                Idle::Hyper(s) => self.idle.push(s),
            },
        }
    }
}

/// The lookup in progress for an origin; when it ends (answered, failed,
/// or given up because its request timed out or the run stopped) the ones
/// waiting for it look again, and one of them asks if nobody knows yet.
struct LookingUp<'a> {
    client: &'a Client,
    origin: &'a Origin,
    done: Rc<tokio::sync::Notify>,
}

impl<'a> LookingUp<'a> {
    fn start(client: &'a Client, origin: &'a Origin) -> LookingUp<'a> {
        let done = Rc::new(tokio::sync::Notify::new());
        client.with_pool(origin, |p| p.looking_up = Some(done.clone()));
        LookingUp {
            client,
            origin,
            done,
        }
    }
}

impl Drop for LookingUp<'_> {
    fn drop(&mut self) {
        self.client.with_pool(self.origin, |p| p.looking_up = None);
        self.done.notify_waiters();
    }
}

/// Waiting in line; a connection handed over after the wait was given up
/// goes back to the pool.
struct InLine<'a> {
    client: &'a Client,
    origin: &'a Origin,
    waiter: Rc<Waiter>,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.waiter.handed.borrow_mut().take() {
            self.client.with_pool(self.origin, |p| p.put(c));
        }
    }
}

/// One worker's HTTP client.
pub struct Client {
    opts: ClientOptions,
    deadlines: Rc<Deadlines>,
    pools: RefCell<rustc_hash::FxHashMap<Origin, OriginPool>>,
    /// The lean path's sockets, made with the first of them.
    poller: RefCell<Option<Rc<Poller>>>,
    nap: Nap,
}

type Failure = (ErrorKind, String);

impl Client {
    pub fn new(opts: ClientOptions) -> Client {
        Client {
            opts,
            pools: RefCell::new(rustc_hash::FxHashMap::default()),
            deadlines: Rc::default(),
            poller: RefCell::default(),
            nap: tokio_nap(),
        }
    }

    /// Looks at the lean path's sockets on this timer (the worker's precise
    /// one), so the looks share its wake-ups; tokio's by default.
    pub fn pace_with(mut self, nap: Nap) -> Client {
        self.nap = nap;
        self
    }

    /// The lean path's poller, made (on the current `LocalSet`) when first
    /// needed.
    fn poller(&self) -> Result<Rc<Poller>, Failure> {
        let mut p = self.poller.borrow_mut();
        if let Some(p) = p.as_ref() {
            return Ok(p.clone());
        }
        let made = Poller::new(self.nap.clone()).map_err(|e| {
            (
                ErrorKind::Connect,
                format!("setting up the socket poller: {e}"),
            )
        })?;
        *p = Some(made.clone());
        Ok(made)
    }

    /// The pool of `origin`, made when it is first needed (without cloning
    /// the origin every time).
    fn with_pool<R>(&self, origin: &Origin, f: impl FnOnce(&mut OriginPool) -> R) -> R {
        let mut pools = self.pools.borrow_mut();
        if let Some(p) = pools.get_mut(origin) {
            return f(p);
        }
        f(pools.entry(origin.clone()).or_default())
    }

    /// A slot to open a connection to `origin`, if fewer than
    /// [`MAX_CONNECTING`] are being opened.
    fn connect_slot<'a>(&'a self, origin: &'a Origin) -> Option<ConnectSlot<'a>> {
        self.with_pool(origin, |p| {
            (p.connecting < MAX_CONNECTING).then(|| {
                p.connecting += 1;
                p.peak_connecting = p.peak_connecting.max(p.connecting);
            })
        })?;
        Some(ConnectSlot {
            client: self,
            origin,
        })
    }

    /// Waits in line until a connection comes back to `origin`'s pool
    /// (returned) or a connect to it ends (`None`: try to open one).
    async fn wait_for_pool(&self, origin: &Origin) -> Option<Idle> {
        let line = InLine {
            client: self,
            origin,
            waiter: Rc::new(Waiter::default()),
        };
        self.with_pool(origin, |p| p.waiters.push_back(line.waiter.clone()));
        std::future::poll_fn(|cx| {
            if line.waiter.told.get() {
                return Poll::Ready(());
            }
            *line.waiter.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        line.waiter.handed.borrow_mut().take()
    }

    /// A connection from the pool: the HTTP/2 one, or an idle HTTP/1.1 one.
    fn checkout(&self, origin: &Origin) -> Option<Sender> {
        let mut pools = self.pools.borrow_mut();
        let pool = pools.get_mut(origin)?;
        if let Some(h2) = &pool.h2 {
            if !h2.is_closed() {
                return Some(Sender::H2(h2.clone()));
            }
            pool.h2 = None;
        }
        while let Some(s) = pool.idle.pop() {
            if s.is_ready() {
                return Some(Sender::H1(s));
            }
        }
        None
    }

    fn checkin(&self, origin: &Origin, s: http1::SendRequest<Body>) {
        if s.is_ready() {
            self.with_pool(origin, |p| p.put(Idle::Hyper(s)));
        }
    }

    /// Why `origin`'s name did not resolve, if that was under
    /// [`UNRESOLVED_FOR`] ago.
    fn unresolved(&self, origin: &Origin) -> Option<Failure> {
        let pools = self.pools.borrow();
        let (at, f) = pools.get(origin)?.unresolved.as_ref()?;
        (at.elapsed() < UNRESOLVED_FOR).then(|| f.clone())
    }

    /// The origin's addresses: looked up once and kept. A lookup is bounded
    /// by the connect timeout (it is part of connecting), and a failure is
    /// remembered for [`UNRESOLVED_FOR`].
    /// One lookup per origin at a time: the others wait for its answer.
    async fn resolve(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Failure> {
        loop {
            if let Some(p) = self.pools.borrow().get(origin)
                && !p.addrs.is_empty()
            {
                return Ok(p.addrs.clone());
            }
            if let Some(f) = self.unresolved(origin) {
                return Err(f);
            }
            let Some(pending) = self.with_pool(origin, |p| p.looking_up.clone()) else {
                break;
            };
            // Registered at its first poll, before the lookup (on this
            // same thread) can finish and notify.
            pending.notified().await;
        }
        let _looking = LookingUp::start(self, origin);
        self.with_pool(origin, |p| p.lookups += 1);
        let lookup = tokio::net::lookup_host((origin.host.as_str(), origin.port));
        let looked = match tokio::time::timeout(self.opts.connect_timeout, lookup).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    Err(format!("{} has no address", origin.host))
                } else {
                    Ok(addrs)
                }
            }
            Ok(Err(e)) => Err(format!("resolving {}: {e}", origin.host)),
            Err(_) => Err(format!(
                "resolving {}: no answer within {:?}",
                origin.host, self.opts.connect_timeout
            )),
        };
        self.with_pool(origin, |p| match looked {
            Ok(addrs) => {
                p.unresolved = None;
                p.addrs = addrs.clone();
                Ok(addrs)
            }
            Err(msg) => {
                let f = (ErrorKind::Connect, msg);
                p.unresolved = Some((Instant::now(), f.clone()));
                // Everyone waiting for a connect slot would only learn the
                // same: let them find it out now.
                while let Some(w) = p.next_waiter() {
                    w.tell(None);
                }
                Err(f)
            }
        })
    }

    /// A new TCP connection and how long it took (resolving included).
    async fn tcp(&self, origin: &Origin) -> Result<(TcpStream, Duration), Failure> {
        let t0 = Instant::now();
        let addrs = self.resolve(origin).await?;
        let mut last = (ErrorKind::Connect, "no address to connect to".to_string());
        let mut tcp = None;
        for addr in addrs {
            match tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    tcp = Some(s);
                    break;
                }
                Ok(Err(e)) => {
                    last = (
                        io_kind(&e, ErrorKind::Connect),
                        format!("connecting to {addr}: {e}"),
                    )
                }
                Err(_) => {
                    last = (
                        ErrorKind::Timeout,
                        format!(
                            "no connection to {addr} within {:?}",
                            self.opts.connect_timeout
                        ),
                    )
                }
            }
        }
        let tcp = tcp.ok_or(last)?;
        let _ = tcp.set_nodelay(true);
        Ok((tcp, t0.elapsed()))
    }

    /// A new connection through hyper: (sender, connect time, TLS time).
    async fn connect(
        &self,
        origin: &Origin,
    ) -> Result<(Sender, Duration, Option<Duration>), Failure> {
        let (tcp, connecting) = self.tcp(origin).await?;
        if !origin.https {
            let io = TokioIo::new(tcp);
            let sender = if self.opts.http2 {
                self.h2(origin, io).await?
            } else {
                h1(io).await?
            };
            return Ok((sender, connecting, None));
        }
        let cfg = self
            .opts
            .tls
            .clone()
            .ok_or((ErrorKind::Tls, "TLS is not configured".to_string()))?;
        let name = ServerName::try_from(origin.host.clone())
            .map_err(|e| (ErrorKind::Tls, format!("{}: {e}", origin.host)))?;
        let t1 = Instant::now();
        let tls = tokio::time::timeout(
            self.opts.connect_timeout,
            tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
        )
        .await
        .map_err(|_| {
            (
                ErrorKind::Timeout,
                format!(
                    "no TLS handshake with {origin} within {:?}",
                    self.opts.connect_timeout
                ),
            )
        })?
        .map_err(|e| (ErrorKind::Tls, format!("TLS with {origin}: {e}")))?;
        let handshake = t1.elapsed();
        // `--http2` offers only `h2`; a server that chooses nothing by
        // ALPN still gets HTTP/2, as prior knowledge does on `http://`.
        let h2 = self.opts.http2 || tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let sender = if h2 {
            self.h2(origin, io).await?
        } else {
            h1(io).await?
        };
        Ok((sender, connecting, Some(handshake)))
    }

    async fn h2<T>(&self, origin: &Origin, io: T) -> Result<Sender, Failure>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    {
        let (sender, conn) = http2::handshake(LocalExec, io)
            .await
            .map_err(|e| (classify(&e), format!("HTTP/2 handshake: {e}")))?;
        tokio::task::spawn_local(conn);
        self.pools
            .borrow_mut()
            .entry(origin.clone())
            .or_default()
            .h2 = Some(sender.clone());
        Ok(Sender::H2(sender))
    }

    /// One try: a connection (reused or new), the request, the response.
    /// `Err` with `true` when a reused connection turned out to be closed
    /// before anything was answered (worth one more try).
    async fn attempt(
        &self,
        req: &Request<'_>,
        started: Instant,
        reuse: bool,
    ) -> Result<Outcome, (bool, Outcome)> {
        if !req.origin.https && !self.opts.http2 {
            return self.attempt_lean(req, started, reuse).await;
        }
        // Boxed: hyper's futures are large, and inline they would make every
        // session's future (plain HTTP too) that much larger to move.
        Box::pin(self.attempt_hyper(req, started, reuse)).await
    }

    /// One try through hyper (TLS, HTTP/2).
    async fn attempt_hyper(
        &self,
        req: &Request<'_>,
        started: Instant,
        reuse: bool,
    ) -> Result<Outcome, (bool, Outcome)> {
        let origin = req.origin;
        let mut handed = None;
        let (sender, connecting, tls) = loop {
            match handed.take() {
                Some(Idle::Hyper(s)) if s.is_ready() => break (Sender::H1(s), None, None),
                Some(Idle::Lean(c)) => self.with_pool(origin, |p| p.put(Idle::Lean(c))),
                _ => {}
            }
            if let Some(s) = reuse.then(|| self.checkout(origin)).flatten() {
                break (s, None, None);
            }
            if let Some((kind, msg)) = self.unresolved(origin) {
                return Err((false, Outcome::failed(started, kind, msg)));
            }
            if let Some(_slot) = self.connect_slot(origin) {
                match Box::pin(self.connect(origin)).await {
                    Ok((s, c, t)) => {
                        req.connected.set(Some((c, t)));
                        break (s, Some(c), t);
                    }
                    Err((kind, msg)) => return Err((false, Outcome::failed(started, kind, msg))),
                }
            }
            handed = self.wait_for_pool(origin).await;
        };
        let reused = connecting.is_none();
        let h2 = matches!(sender, Sender::H2(_));
        let (request, bytes_sent) = build(req, h2);
        // Handed to the connection, which writes it at once (a request
        // that then times out waiting for its answer was still sent).
        req.sent.set(bytes_sent);
        let sent = Instant::now();
        let result = match sender {
            Sender::H1(mut s) => {
                let r = s.send_request(request).await;
                (r, Some(s))
            }
            Sender::H2(mut s) => (s.send_request(request).await, None),
        };
        let mut outcome = Outcome {
            finished: sent,
            connecting,
            tls,
            bytes_sent,
            ..Outcome::started(started)
        };
        let (response, h1) = match result {
            (Ok(r), h1) => (r, h1),
            (Err(e), _) => {
                let stale =
                    reused && (e.is_canceled() || e.is_closed() || e.is_incomplete_message());
                outcome.finished = Instant::now();
                outcome.error = Some((classify(&e), describe(&e)));
                return Err((stale, outcome));
            }
        };
        let headers_at = Instant::now();
        outcome.waiting = Some(headers_at - sent);
        outcome.status = Some(response.status().as_u16());
        let mut kept = req.keep.then(|| {
            Box::new(super::Kept {
                headers: response
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: Vec::new(),
                cut: false,
            })
        });
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        outcome.bytes_received += d.len() as u64;
                        req.received.set(outcome.bytes_received);
                        if let Some(k) = kept.as_mut() {
                            k.take(d);
                        }
                    }
                }
                Err(e) => {
                    outcome.error = Some((
                        classify(&e),
                        format!("reading the response body: {}", describe(&e)),
                    ));
                    break;
                }
            }
        }
        outcome.finished = Instant::now();
        outcome.receiving = Some(outcome.finished - headers_at);
        outcome.kept = kept;
        if let (Some(s), None) = (h1, &outcome.error) {
            self.checkin(origin, s);
        }
        Ok(outcome)
    }
}

impl Client {
    /// One try on the lean HTTP/1.1 path (plain `http`).
    async fn attempt_lean(
        &self,
        req: &Request<'_>,
        started: Instant,
        reuse: bool,
    ) -> Result<Outcome, (bool, Outcome)> {
        let origin = req.origin;
        let mut handed = None;
        let (mut conn, connecting) = loop {
            match handed.take() {
                Some(Idle::Lean(c)) => break (c, None),
                Some(h) => self.with_pool(origin, |p| p.put(h)),
                None => {}
            }
            if reuse && let Some(c) = self.with_pool(origin, |p| p.lean.pop()) {
                break (c, None);
            }
            if let Some((kind, msg)) = self.unresolved(origin) {
                return Err((false, Outcome::failed(started, kind, msg)));
            }
            if let Some(_slot) = self.connect_slot(origin) {
                let socket = match Box::pin(self.tcp(origin)).await {
                    Ok((s, c)) => self.poller().and_then(|p| {
                        Socket::new(s, p).map(|s| (s, c)).map_err(|e| {
                            (ErrorKind::Connect, format!("setting up the socket: {e}"))
                        })
                    }),
                    Err(f) => Err(f),
                };
                match socket {
                    Ok((s, c)) => {
                        req.connected.set(Some((c, None)));
                        break (Conn::new(s), Some(c));
                    }
                    Err((kind, msg)) => return Err((false, Outcome::failed(started, kind, msg))),
                }
            }
            handed = self.wait_for_pool(origin).await;
        };
        let reused = connecting.is_none();
        let mut outcome = Outcome {
            connecting,
            ..Outcome::started(started)
        };
        match conn.exchange(req, reused, &mut outcome).await {
            Ok(reusable) => {
                if reusable {
                    self.with_pool(origin, |p| p.put(Idle::Lean(conn)));
                }
                Ok(outcome)
            }
            Err(f) => {
                outcome.finished = Instant::now();
                outcome.error = Some((f.kind, f.message));
                Err((f.stale, outcome))
            }
        }
    }
}

impl Transport for Client {
    async fn send(&self, req: &Request<'_>) -> Outcome {
        let started = Instant::now();
        let run = async {
            match self.attempt(req, started, true).await {
                Ok(o) => o,
                // A kept-alive connection the server had already closed:
                // once more on a new one.
                // Boxed: rare, and it keeps every request's future small.
                Err((true, _)) => Box::pin(self.attempt(req, started, false))
                    .await
                    .unwrap_or_else(|(_, o)| o),
                Err((false, o)) => o,
            }
        };
        let deadline = self.deadlines.start(started + self.opts.timeout);
        let timed = tokio::select! {
            biased;
            o = run => Some(o),
            _ = deadline.expired() => None,
        };
        match timed {
            Some(o) => o,
            None => Outcome {
                bytes_sent: req.sent.get(),
                bytes_received: req.received.get(),
                connecting: req.connected.get().map(|(c, _)| c),
                tls: req.connected.get().and_then(|(_, t)| t),
                ..Outcome::failed(
                    started,
                    ErrorKind::Timeout,
                    format!("no response within {:?}", self.opts.timeout),
                )
            },
        }
    }
}

async fn h1<T>(io: T) -> Result<Sender, Failure>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| (classify(&e), format!("HTTP/1.1 handshake: {e}")))?;
    tokio::task::spawn_local(conn);
    Ok(Sender::H1(sender))
}

/// The hyper request, and how many bytes it is on the wire (roughly).
fn build(req: &Request<'_>, h2: bool) -> (hyper::Request<Body>, u64) {
    // `--header 'Host: …'` names the virtual host (HTTP/2's :authority).
    let authority = super::host_override(req)
        .map(str::to_string)
        .unwrap_or_else(|| req.origin.authority());
    let uri = if h2 {
        format!(
            "{}://{}{}",
            req.origin.scheme(),
            authority,
            req.path_and_query
        )
    } else {
        req.path_and_query.to_string()
    };
    let mut b = hyper::Request::builder()
        .method(req.method)
        .uri(uri.as_str());
    let mut size = req.method.len() + uri.len() + 12;
    if !h2 {
        let host = authority;
        size += host.len() + 8;
        b = b.header(hyper::header::HOST, host);
    }
    for (k, v) in req.headers {
        if k == "host" || k == "content-length" || k == "connection" {
            continue;
        }
        size += k.len() + v.len() + 4;
        b = b.header(&**k, &**v);
    }
    let body = req.body.map(Bytes::copy_from_slice).unwrap_or_default();
    size += body.len();
    let request = b.body(Full::new(body)).unwrap_or_else(|_| {
        // A header the capture had that HTTP does not allow: send without.
        hyper::Request::builder()
            .method(req.method)
            .uri(uri.as_str())
            .body(Full::new(Bytes::new()))
            .expect("method and URI were accepted before")
    });
    (request, size as u64)
}

fn classify(e: &hyper::Error) -> ErrorKind {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_kind(io, ErrorKind::Reset);
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            return ErrorKind::Tls;
        }
        source = s.source();
    }
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        ErrorKind::Reset
    } else {
        ErrorKind::Protocol
    }
}

fn describe(e: &hyper::Error) -> String {
    match e.source() {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! The lean HTTP/1.1 path against a scripted server on loopback: how
    //! bodies end, when connections are kept, reused or retried, and what
    //! a broken or silent server comes out as.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What the server does with each request: byte pieces written one
    /// after the other (with a pause between), then whether to close.
    #[derive(Clone)]
    struct Reply {
        pieces: Vec<Vec<u8>>,
        close: bool,
    }

    fn reply(pieces: &[&[u8]], close: bool) -> Reply {
        Reply {
            pieces: pieces.iter().map(|p| p.to_vec()).collect(),
            close,
        }
    }

    /// Serves `replies` in order (one per request, over whatever
    /// connections come); returns the port and the count of connections.
    async fn server(replies: Vec<Reply>) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let next = Arc::new(AtomicUsize::new(0));
        let replies = Arc::new(replies);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (next, replies) = (next.clone(), replies.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // One request head (the tests send no bodies).
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            let mut chunk = [0u8; 1024];
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        buf.drain(..end);
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(r) = replies.get(i) else { return };
                        for p in &r.pieces {
                            if s.write_all(p).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        if r.close {
                            return;
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    fn client(timeout: Duration) -> Client {
        Client::new(ClientOptions {
            timeout,
            connect_timeout: Duration::from_secs(2),
            http2: false,
            tls: None,
        })
    }

    async fn get(c: &Client, port: u16, method: &str, keep: bool) -> Outcome {
        let origin = Origin {
            https: false,
            host: "127.0.0.1".into(),
            port,
        };
        c.send(&Request {
            method,
            origin: &origin,
            path_and_query: "/x",
            headers: &[],
            body: None,
            keep,
            sent: Default::default(),
            connected: Default::default(),
            received: Default::default(),
        })
        .await
    }

    use crate::http::local;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[test]
    fn chunked_bodies_in_pieces_are_decoded_and_the_connection_reused() {
        local(async {
            let chunked = reply(
                &[
                    b"HTTP/1.1 200 OK\r\ntransfer-",
                    b"encoding: chunked\r\nx-a: 1\r\n\r\n5\r\nhel",
                    b"lo\r\n6;ext=1\r\n world\r\n0\r\n",
                    b"x-trailer: t\r\n\r\n",
                ],
                false,
            );
            let (port, accepted) = server(vec![chunked, reply(&[OK], false)]).await;
            let c = client(Duration::from_secs(5));
            let o = get(&c, port, "GET", true).await;
            assert_eq!(o.error, None);
            assert_eq!(o.status, Some(200));
            assert_eq!(o.bytes_received, 11);
            let kept = o.kept.unwrap();
            assert_eq!(kept.body, b"hello world");
            assert!(kept.headers.contains(&("x-a".into(), "1".into())));
            assert!(o.connecting.is_some());
            let o = get(&c, port, "GET", false).await;
            assert_eq!((o.status, o.bytes_received), (Some(200), 2));
            assert!(o.connecting.is_none(), "the connection was reused");
            assert_eq!(accepted.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn a_body_ended_by_close_and_connection_close_are_not_reused() {
        local(async {
            let (port, accepted) = server(vec![
                reply(&[b"HTTP/1.1 200 OK\r\n\r\nuntil the ", b"end"], true),
                reply(
                    &[b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"],
                    true,
                ),
                reply(&[OK], false),
            ])
            .await;
            let c = client(Duration::from_secs(5));
            let o = get(&c, port, "GET", false).await;
            assert_eq!((o.status, o.bytes_received, o.error), (Some(200), 13, None));
            let o = get(&c, port, "GET", false).await;
            assert_eq!((o.status, o.bytes_received, o.error), (Some(200), 2, None));
            assert!(o.connecting.is_some());
            let o = get(&c, port, "GET", false).await;
            assert!(o.connecting.is_some());
            assert_eq!(accepted.load(Ordering::SeqCst), 3);
        });
    }

    #[test]
    fn a_kept_connection_the_server_closed_is_retried_on_a_new_one() {
        local(async {
            // The first connection answers once and is closed by the server
            // (as an idle timeout would) without saying so.
            let (port, accepted) = server(vec![reply(&[OK], true), reply(&[OK], false)]).await;
            let c = client(Duration::from_secs(5));
            assert_eq!(get(&c, port, "GET", false).await.status, Some(200));
            tokio::time::sleep(Duration::from_millis(50)).await;
            let o = get(&c, port, "GET", false).await;
            assert_eq!((o.status, o.error), (Some(200), None));
            assert!(o.connecting.is_some(), "a new connection was opened");
            assert_eq!(accepted.load(Ordering::SeqCst), 2);
        });
    }

    #[test]
    fn interim_answers_head_and_no_content_have_no_body() {
        local(async {
            let (port, accepted) = server(vec![
                reply(&[b"HTTP/1.1 100 Continue\r\n\r\n", OK], false),
                reply(&[b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n"], false),
                reply(&[b"HTTP/1.1 204 No Content\r\n\r\n"], false),
                reply(&[OK], false),
            ])
            .await;
            let c = client(Duration::from_secs(5));
            let o = get(&c, port, "GET", false).await;
            assert_eq!((o.status, o.bytes_received), (Some(200), 2));
            let o = get(&c, port, "HEAD", false).await;
            assert_eq!((o.status, o.bytes_received, o.error), (Some(200), 0, None));
            let o = get(&c, port, "GET", false).await;
            assert_eq!((o.status, o.bytes_received, o.error), (Some(204), 0, None));
            let o = get(&c, port, "GET", false).await;
            assert_eq!((o.status, o.bytes_received), (Some(200), 2));
            assert_eq!(accepted.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn broken_cut_and_silent_responses_are_measured_errors() {
        local(async {
            let (port, _) = server(vec![
                reply(&[b"NOT HTTP AT ALL\r\n\r\n"], true),
                reply(&[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"], true),
                reply(
                    &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"],
                    true,
                ),
                reply(&[b"HTTP/1.1 200 OK\r\nx-pad: ", &[b'a'; 100_000]], true),
                reply(
                    &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok"],
                    true,
                ),
                reply(&[], false),
                reply(
                    &[b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf"],
                    false,
                ),
            ])
            .await;
            let c = client(Duration::from_millis(300));
            let o = get(&c, port, "GET", false).await;
            assert_eq!(o.error.unwrap().0, ErrorKind::Protocol);
            let o = get(&c, port, "GET", false).await;
            assert_eq!(o.status, Some(200));
            assert_eq!(o.bytes_received, 3);
            assert_eq!(o.error.unwrap().0, ErrorKind::Reset);
            let o = get(&c, port, "GET", false).await;
            assert_eq!(o.error.unwrap().0, ErrorKind::Protocol);
            // A head that never ends is cut off; two lengths are refused.
            let o = get(&c, port, "GET", false).await;
            let (kind, message) = o.error.unwrap();
            assert_eq!(kind, ErrorKind::Protocol);
            assert!(message.contains("longer than"), "{message}");
            let o = get(&c, port, "GET", false).await;
            assert_eq!(o.error.unwrap().0, ErrorKind::Protocol);
            let t0 = Instant::now();
            let o = get(&c, port, "GET", false).await;
            // It was sent before it timed out: it counts in data_sent.
            assert!(o.bytes_sent > 20, "{} bytes sent", o.bytes_sent);
            assert_eq!(o.error.unwrap().0, ErrorKind::Timeout);
            assert!(t0.elapsed() >= Duration::from_millis(300));
            // It opened its connection first: that is timed all the same.
            assert!(o.connecting.is_some(), "connecting was timed");
            // A body that stops half-way: what came counts in data_received.
            let o = get(&c, port, "GET", false).await;
            assert_eq!(o.error.unwrap().0, ErrorKind::Timeout);
            assert_eq!(o.bytes_received, 4);
        });
    }

    #[test]
    fn a_burst_opens_at_most_16_connections_at_once_and_all_are_answered() {
        local(async {
            let (port, accepted) = server(vec![reply(&[OK], false); 300]).await;
            let c = Rc::new(client(Duration::from_secs(10)));
            let tasks: Vec<_> = (0..300)
                .map(|_| {
                    let c = c.clone();
                    tokio::task::spawn_local(async move { get(&c, port, "GET", false).await })
                })
                .collect();
            for t in tasks {
                let o = t.await.unwrap();
                assert_eq!((o.status, o.error), (Some(200), None));
            }
            // Connections are opened as requests need them (an open model
            // does not queue behind a few), but never more than
            // MAX_CONNECTING at once; and some requests waited for one to
            // come back instead of opening their own.
            let origin = Origin {
                https: false,
                host: "127.0.0.1".into(),
                port,
            };
            let peak = c.with_pool(&origin, |p| p.peak_connecting);
            assert!(peak <= MAX_CONNECTING, "{peak} connects at once");
            assert!(peak > 1, "the burst opened connections in parallel");
            let opened = accepted.load(Ordering::SeqCst);
            assert!(opened < 300, "{opened} connections for 300 requests");
        });
    }

    #[test]
    fn a_name_that_does_not_resolve_fails_every_waiting_request_at_once() {
        local(async {
            // An empty label: the resolver refuses it without asking
            // anyone, so no traffic leaves the machine.
            let origin = Rc::new(Origin {
                https: false,
                host: "a..b".into(),
                port: 80,
            });
            let c = Rc::new(client(Duration::from_secs(30)));
            let tasks: Vec<_> = (0..300)
                .map(|_| {
                    let (c, origin) = (c.clone(), origin.clone());
                    tokio::task::spawn_local(async move {
                        c.send(&Request {
                            method: "GET",
                            origin: &origin,
                            path_and_query: "/",
                            headers: &[],
                            body: None,
                            keep: false,
                            sent: Default::default(),
                            connected: Default::default(),
                            received: Default::default(),
                        })
                        .await
                    })
                })
                .collect();
            for t in tasks {
                let o = t.await.unwrap();
                let (kind, msg) = o.error.unwrap();
                assert_eq!(kind, ErrorKind::Connect);
                assert!(msg.starts_with("resolving a..b"), "{msg}");
            }
            // One lookup, and its failure remembered: the other requests
            // wait for it and learn its answer, not from a lookup each (a
            // broken resolver would make each of those take seconds, and
            // hold a thread).
            let lookups = c.with_pool(&origin, |p| p.lookups);
            assert_eq!(lookups, 1, "one lookup for 300 requests");
        });
    }

    #[test]
    fn a_refused_connection_is_refused() {
        local(async {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let o = get(&client(Duration::from_secs(2)), port, "GET", false).await;
            assert_eq!(o.error.unwrap().0, ErrorKind::Refused);
        });
    }
}
