//! The hyper client of one worker: its own connections to each origin,
//! HTTP/1.1 (kept alive and reused) or HTTP/2 (one multiplexed connection,
//! by ALPN or forced), each phase timed.
//!
//! hyper-util's pooled client shares its pool between threads behind locks
//! and hides which request opened a connection; here each worker owns its
//! pool outright, and a request that had to connect reports how long the
//! connect and the TLS handshake took.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::{ErrorKind, Origin, Outcome, Request, Transport};

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
    idle: Vec<http1::SendRequest<Body>>,
    h2: Option<http2::SendRequest<Body>>,
}

/// One worker's HTTP client.
pub struct Client {
    opts: ClientOptions,
    pools: RefCell<HashMap<Origin, OriginPool>>,
}

type Failure = (ErrorKind, String);

impl Client {
    pub fn new(opts: ClientOptions) -> Client {
        Client {
            opts,
            pools: RefCell::new(HashMap::new()),
        }
    }

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
            self.pools
                .borrow_mut()
                .entry(origin.clone())
                .or_default()
                .idle
                .push(s);
        }
    }

    async fn resolve(&self, origin: &Origin) -> Result<Vec<SocketAddr>, Failure> {
        if let Some(p) = self.pools.borrow().get(origin)
            && !p.addrs.is_empty()
        {
            return Ok(p.addrs.clone());
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| {
                (
                    ErrorKind::Connect,
                    format!("resolving {}: {e}", origin.host),
                )
            })?
            .collect();
        if addrs.is_empty() {
            return Err((
                ErrorKind::Connect,
                format!("{} has no address", origin.host),
            ));
        }
        self.pools
            .borrow_mut()
            .entry(origin.clone())
            .or_default()
            .addrs = addrs.clone();
        Ok(addrs)
    }

    /// A new connection: (sender, connect time, TLS time).
    async fn connect(
        &self,
        origin: &Origin,
    ) -> Result<(Sender, Duration, Option<Duration>), Failure> {
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
        let connecting = t0.elapsed();
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
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
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
        let origin = req.origin;
        let (sender, connecting, tls) = match reuse.then(|| self.checkout(origin)).flatten() {
            Some(s) => (s, None, None),
            None => match Box::pin(self.connect(origin)).await {
                Ok((s, c, t)) => (s, Some(c), t),
                Err((kind, msg)) => return Err((false, Outcome::failed(started, kind, msg))),
            },
        };
        let reused = connecting.is_none();
        let h2 = matches!(sender, Sender::H2(_));
        let (request, bytes_sent) = build(req, h2);
        let sent = Instant::now();
        let result = match sender {
            Sender::H1(mut s) => {
                let r = s.send_request(request).await;
                (r, Some(s))
            }
            Sender::H2(mut s) => (s.send_request(request).await, None),
        };
        let mut outcome = Outcome {
            started,
            finished: sent,
            status: None,
            error: None,
            connecting,
            tls,
            waiting: None,
            receiving: None,
            bytes_received: 0,
            bytes_sent,
            kept: None,
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
            })
        });
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        outcome.bytes_received += d.len() as u64;
                        if let Some(k) = kept.as_mut() {
                            let room = super::KEEP_LIMIT.saturating_sub(k.body.len());
                            k.body.extend_from_slice(&d[..d.len().min(room)]);
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

impl Transport for Client {
    async fn send(&self, req: Request<'_>) -> Outcome {
        let started = Instant::now();
        let run = async {
            match self.attempt(&req, started, true).await {
                Ok(o) => o,
                // A kept-alive connection the server had already closed:
                // once more on a new one.
                // Boxed: rare, and it keeps every request's future small.
                Err((true, _)) => Box::pin(self.attempt(&req, started, false))
                    .await
                    .unwrap_or_else(|(_, o)| o),
                Err((false, o)) => o,
            }
        };
        match tokio::time::timeout(self.opts.timeout, run).await {
            Ok(o) => o,
            Err(_) => Outcome::failed(
                started,
                ErrorKind::Timeout,
                format!("no response within {:?}", self.opts.timeout),
            ),
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
    let uri = if h2 {
        format!(
            "{}://{}{}",
            req.origin.scheme(),
            req.origin.authority(),
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
        let host = req.origin.authority();
        size += host.len() + 8;
        b = b.header(hyper::header::HOST, host);
    }
    for (k, v) in req.headers {
        if k == "host" || k == "content-length" || k == "connection" {
            continue;
        }
        size += k.len() + v.len() + 4;
        b = b.header(k.as_str(), v.as_str());
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

fn io_kind(e: &std::io::Error, otherwise: ErrorKind) -> ErrorKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        K::TimedOut => ErrorKind::Timeout,
        _ => otherwise,
    }
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
