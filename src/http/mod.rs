//! Sending requests to the target: hyper 1 connections, a pool per worker,
//! TLS through rustls, and timings of every phase.
//!
//! A worker is one thread with its own connections: nothing is shared
//! between workers, so the hot path takes no lock. A failed request is data
//! — an [`Outcome`] with an error kind — never an error of the run.

mod client;
mod deadline;
mod h1;
mod poller;
mod target;
mod tls;

use std::fmt;
use std::time::{Duration, Instant};

pub use client::{Client, ClientOptions};
pub use poller::Nap;
pub use target::{Origin, Target, TargetError, basic_auth};
pub use tls::tls_config;

/// Why a request failed (HTTP error statuses are counted apart, by class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The target refused the connection.
    Refused,
    /// The connection was reset or closed mid-request.
    Reset,
    /// No answer within `--timeout` (or no connection within
    /// `--connect-timeout`).
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// Connecting failed otherwise (name resolution, unreachable).
    Connect,
    /// The response broke HTTP.
    Protocol,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Refused,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Tls,
        ErrorKind::Connect,
        ErrorKind::Protocol,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Connect => "connect",
            ErrorKind::Protocol => "protocol",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happened to one request.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// When the transport began (a connection was looked for).
    pub started: Instant,
    /// When the last byte of the response arrived, or the failure.
    pub finished: Instant,
    pub status: Option<u16>,
    pub error: Option<(ErrorKind, String)>,
    /// Set when this request opened a new connection.
    pub connecting: Option<Duration>,
    pub tls: Option<Duration>,
    /// Time to the response headers, from when the request was handed to
    /// the connection.
    pub waiting: Option<Duration>,
    /// From the headers to the end of the body.
    pub receiving: Option<Duration>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// The response's headers and body (up to [`KEEP_LIMIT`]), when the
    /// request asked for them (checks look at them).
    pub kept: Option<Box<Kept>>,
}

/// A response kept for checks.
#[derive(Clone, Debug, Default)]
pub struct Kept {
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than [`KEEP_LIMIT`]: only its start is kept.
    pub cut: bool,
}

/// The most of a body kept for checks.
pub const KEEP_LIMIT: usize = 1 << 20;

impl Kept {
    /// Keeps a piece of the body, up to [`KEEP_LIMIT`] in all.
    pub fn take(&mut self, data: &[u8]) {
        let room = KEEP_LIMIT.saturating_sub(self.body.len());
        self.body.extend_from_slice(&data[..data.len().min(room)]);
        self.cut |= data.len() > room;
    }
}

impl Outcome {
    pub fn failed(started: Instant, kind: ErrorKind, message: String) -> Outcome {
        Outcome {
            finished: Instant::now(),
            error: Some((kind, message)),
            ..Outcome::started(started)
        }
    }

    /// Nothing known yet but when it began.
    pub fn started(started: Instant) -> Outcome {
        Outcome {
            started,
            finished: started,
            status: None,
            error: None,
            connecting: None,
            tls: None,
            waiting: None,
            receiving: None,
            bytes_received: 0,
            bytes_sent: 0,
            kept: None,
        }
    }
}

/// A header to send: a name in lower case and a value, borrowed from the
/// plan where it can be.
pub type Header<'a> = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>);

/// A request as the transport takes it.
pub struct Request<'a> {
    pub method: &'a str,
    pub origin: &'a Origin,
    /// `/path?query` (the target's base path already in front).
    pub path_and_query: &'a str,
    pub headers: &'a [Header<'a>],
    pub body: Option<&'a [u8]>,
    /// Keep the response's headers and body in the outcome.
    pub keep: bool,
    /// Bytes written so far, set by the transport as it writes: a request
    /// that times out after it was sent still counts in `data_sent`.
    pub sent: std::cell::Cell<u64>,
    /// The time to connect (and the TLS handshake) when this request
    /// opened a connection, set as soon as it is known: a request that
    /// then times out still reports how long connecting took.
    pub connected: std::cell::Cell<Option<(Duration, Option<Duration>)>>,
    /// Body bytes read so far, set as they arrive: a request that times
    /// out half-way through its body still counts them in data_received.
    pub received: std::cell::Cell<u64>,
}

/// A `host` header the run asked for (`--header 'Host: api.staging'`,
/// for a virtual host behind the target's address), when it is a value a
/// header line can carry. Recorded Host headers never get here: the
/// importer drops them.
pub(crate) fn host_override<'a>(req: &'a Request<'_>) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| &**v)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// The error kind of a failed socket operation.
pub(crate) fn io_kind(e: &std::io::Error, otherwise: ErrorKind) -> ErrorKind {
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

/// Something that sends requests: the hyper client, or a stand-in in tests.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Borrows the request, so the caller can still read what was written
    /// (`sent`) if it gives up on the answer.
    async fn send(&self, req: &Request<'_>) -> Outcome;
}

/// Counts a background task (a sweeper, a poller's looking task) in a
/// thread-local counter while the task runs, so tests can check that it
/// ends with what owns it.
#[cfg(test)]
pub(crate) struct Running(&'static std::thread::LocalKey<std::cell::Cell<usize>>);

#[cfg(test)]
impl Running {
    pub(crate) fn new(count: &'static std::thread::LocalKey<std::cell::Cell<usize>>) -> Running {
        count.with(|c| c.set(c.get() + 1));
        Running(count)
    }
}

#[cfg(test)]
impl Drop for Running {
    fn drop(&mut self) {
        self.0.with(|c| c.set(c.get() - 1));
    }
}

/// Runs `f` on a `LocalSet` of a current-thread runtime (the client's
/// sweeper and poller tasks need one).
#[cfg(test)]
pub(crate) fn local<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f);
}
