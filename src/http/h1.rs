//! The lean HTTP/1.1 path for plain `http` targets: the request head written
//! straight into the connection's buffer, the response parsed in place with
//! httparse, the body counted (and kept for checks when asked) as it
//! arrives, all within the session's own task.
//!
//! hyper's client runs each connection as a task of its own and hands every
//! request to it through a channel and every response back through another:
//! four wake-ups and a few allocations per request, which at tens of
//! thousands of requests a second is most of the generator's user time.
//! Here a request is one `write` and, usually, one `read`. TLS and HTTP/2
//! still go through hyper.

use std::io;
use std::time::Instant;

use super::poller::Socket;
use super::{ErrorKind, Kept, Outcome, Request, host_override, io_kind};

/// The most a response head may take.
const MAX_HEAD: usize = 64 * 1024;
/// Response headers parsed at most.
const MAX_HEADERS: usize = 100;
/// How far a connection's buffer grows for bodies: the most a body read
/// asks for, unless a long head already grew the buffer past it (up to
/// [`MAX_HEAD`]; it keeps that size for the connection's life).
const READ_CHUNK: usize = 16 * 1024;
/// A new connection's buffer: most responses' heads and many whole
/// responses fit. It doubles (up to [`READ_CHUNK`]) whenever a read fills
/// it, so large bodies still come in big reads. Connections are many when
/// the generator falls behind (one per request in flight): 3,552 in a run
/// at 40,000 requests/s that peaked at 128 MB, where 16 KB each was 57 MB,
/// and zeroing them and faulting their pages in 3–4% of the generator's CPU.
const FIRST_CHUNK: usize = 2 * 1024;

/// One kept-alive connection with its buffers.
pub struct Conn {
    socket: Socket,
    /// Bytes read and not yet consumed are `buf[..filled]`.
    buf: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
    /// When the data of the last read arrived (the kernel's time: the
    /// worker may look at the socket up to a poller window later).
    arrived: Instant,
}

/// Why an exchange failed, and whether a reused connection was found
/// closed before anything came back (worth one more try on a new one).
#[derive(Debug)]
pub struct Failed {
    pub stale: bool,
    pub kind: ErrorKind,
    pub message: String,
}

/// How the response's body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

impl Conn {
    pub fn new(socket: Socket) -> Conn {
        Conn {
            socket,
            buf: vec![0; FIRST_CHUNK],
            filled: 0,
            out: Vec::with_capacity(512),
            arrived: Instant::now(),
        }
    }

    /// Reads into `buf[from..]`: how many bytes (0 when the peer closed).
    async fn read_at(&mut self, from: usize) -> io::Result<usize> {
        let got = self.socket.read(&mut self.buf[from..]).await?;
        self.arrived = got.at;
        Ok(got.n)
    }

    /// Sends `req` and reads its response into `o` (status, timings, bytes,
    /// kept headers and body). `Ok(true)` when the connection can carry
    /// another request.
    pub async fn exchange(
        &mut self,
        req: &Request<'_>,
        reused: bool,
        o: &mut Outcome,
    ) -> Result<bool, Failed> {
        render(req, &mut self.out);
        o.bytes_sent = self.out.len() as u64;
        let sent = Instant::now();
        if let Err(e) = self.socket.write_all(&self.out).await {
            return Err(Failed {
                stale: reused,
                kind: io_kind(&e, ErrorKind::Reset),
                message: format!("sending the request: {e}"),
            });
        }
        req.sent.set(o.bytes_sent);
        self.filled = 0;
        let head = loop {
            match read_head(&mut self.buf, &mut self.filled, req, o)? {
                Some(h) => break h,
                None => {
                    self.read_more(reused && self.filled == 0).await?;
                }
            }
        };
        let headers_at = self.arrived.max(sent);
        o.waiting = Some(headers_at - sent);
        let (framing, mut reusable, consumed) = head;
        self.buf.copy_within(consumed..self.filled, 0);
        self.filled -= consumed;
        let done = self.body(framing, o, &req.received).await;
        o.finished = self.arrived.max(headers_at);
        o.receiving = Some(o.finished - headers_at);
        match done {
            Ok(clean) => reusable &= clean,
            Err(f) => {
                o.error = Some((f.kind, f.message));
                reusable = false;
            }
        }
        if reusable {
            // The whole response is read; nothing else is expected before
            // the next request. Forget the readiness left from this one so
            // the next read waits for the poller instead of trying a read
            // that can only say "not yet". Anything that arrives from here
            // on (the next response, a close) is new news.
            self.socket.drained();
        }
        Ok(reusable)
    }

    /// Reads more into the buffer. `stale_if_closed`: a close now means the
    /// kept-alive connection was already gone.
    async fn read_more(&mut self, stale_if_closed: bool) -> Result<(), Failed> {
        if self.filled == self.buf.len() {
            if self.buf.len() >= MAX_HEAD {
                return Err(Failed {
                    stale: false,
                    kind: ErrorKind::Protocol,
                    message: format!("response head longer than {MAX_HEAD} bytes"),
                });
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        match self.read_at(self.filled).await {
            Ok(0) => Err(Failed {
                stale: stale_if_closed,
                kind: ErrorKind::Reset,
                message: if self.filled == 0 {
                    "connection closed before a response".into()
                } else {
                    "connection closed in the middle of the response head".into()
                },
            }),
            Ok(n) => {
                self.filled += n;
                Ok(())
            }
            Err(e) => Err(Failed {
                stale: stale_if_closed,
                kind: io_kind(&e, ErrorKind::Reset),
                message: format!("reading the response: {e}"),
            }),
        }
    }
}

/// Parses the final response head if it is all in `buf[..*filled]`
/// (skipping interim 1xx heads, which it removes from the buffer): its
/// framing, whether the connection stays open, and how many bytes it took.
fn read_head(
    buf: &mut [u8],
    filled: &mut usize,
    req: &Request<'_>,
    o: &mut Outcome,
) -> Result<Option<(Framing, bool, usize)>, Failed> {
    loop {
        // Left uninitialised: httparse writes the ones it finds. Filling
        // all of them first was 3.2 KB of stores for every response.
        let mut headers =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut res,
            &buf[..*filled],
            &mut headers,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(Failed {
                    stale: false,
                    kind: ErrorKind::Protocol,
                    message: format!("invalid response head: {e}"),
                });
            }
        };
        let status = res.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            // 100 Continue and other interim answers: the real one follows.
            buf.copy_within(len..*filled, 0);
            *filled -= len;
            continue;
        }
        o.status = Some(status);
        let mut keep_alive = res.version == Some(1);
        let mut length = None;
        let mut chunked = false;
        for h in res.headers.iter() {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
                match (n, length) {
                    (Some(n), None) => length = Some(n),
                    (Some(n), Some(m)) if n == m => {}
                    _ => {
                        return Err(Failed {
                            stale: false,
                            kind: ErrorKind::Protocol,
                            message: "invalid content-length in the response".into(),
                        });
                    }
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"connection") {
                for t in h.value.split(|&b| b == b',') {
                    let t = t.trim_ascii();
                    if t.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    }
                }
            }
        }
        if req.keep {
            o.kept = Some(Box::new(Kept {
                headers: res
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
                body: Vec::new(),
                cut: false,
            }));
        }
        let framing = if req.method.eq_ignore_ascii_case("HEAD")
            || status == 204
            || status == 304
            || status == 101
        {
            Framing::None
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            keep_alive = false;
            Framing::Close
        };
        if status == 101 {
            keep_alive = false;
        }
        return Ok(Some((framing, keep_alive, len)));
    }
}

impl Conn {
    /// Reads the body. `Ok(true)` when it ended exactly where the response
    /// did (nothing left over, so the connection can be reused).
    async fn body(
        &mut self,
        framing: Framing,
        o: &mut Outcome,
        got: &std::cell::Cell<u64>,
    ) -> Result<bool, Failed> {
        match framing {
            Framing::None => Ok(self.filled == 0),
            Framing::Length(mut left) => loop {
                let take = (self.filled as u64).min(left) as usize;
                take_data(o, &self.buf[..take]);
                left -= take as u64;
                let rest = self.filled - take;
                if left == 0 {
                    return Ok(rest == 0);
                }
                self.filled = 0;
                got.set(o.bytes_received);
                self.fill("the response body").await?;
            },
            Framing::Close => loop {
                take_data(o, &self.buf[..self.filled]);
                self.filled = 0;
                got.set(o.bytes_received);
                match self.read_at(0).await {
                    Ok(0) => return Ok(false),
                    Ok(n) => {
                        self.filled = n;
                        self.grow_if_filled();
                    }
                    Err(e) => return Err(read_failed(&e, "the response body")),
                }
            },
            Framing::Chunked => {
                let mut chunks = Chunked::Size;
                let mut at = 0;
                loop {
                    at = chunks.feed(&self.buf[at..self.filled], o).map(|n| at + n)?;
                    if matches!(chunks, Chunked::Done) {
                        return Ok(at == self.filled);
                    }
                    // Keep the unparsed tail (a size line or trailer cut in
                    // two) at the front and read more behind it.
                    self.buf.copy_within(at..self.filled, 0);
                    self.filled -= at;
                    at = 0;
                    if self.filled == self.buf.len() {
                        return Err(Failed {
                            stale: false,
                            kind: ErrorKind::Protocol,
                            message: "a chunk size or trailer line too long".into(),
                        });
                    }
                    got.set(o.bytes_received);
                    self.fill("the chunked response body").await?;
                }
            }
        }
    }

    /// Doubles the buffer, up to [`READ_CHUNK`], when it is full.
    fn grow_if_filled(&mut self) {
        if self.filled == self.buf.len() && self.buf.len() < READ_CHUNK {
            self.buf.resize(self.buf.len() * 2, 0);
        }
    }

    /// Reads more behind what the buffer holds; a close is an error.
    async fn fill(&mut self, what: &str) -> Result<(), Failed> {
        match self.read_at(self.filled).await {
            Ok(0) => Err(Failed {
                stale: false,
                kind: ErrorKind::Reset,
                message: format!("connection closed in the middle of {what}"),
            }),
            Ok(n) => {
                self.filled += n;
                self.grow_if_filled();
                Ok(())
            }
            Err(e) => Err(read_failed(&e, what)),
        }
    }
}

fn read_failed(e: &io::Error, what: &str) -> Failed {
    Failed {
        stale: false,
        kind: io_kind(e, ErrorKind::Reset),
        message: format!("reading {what}: {e}"),
    }
}

/// Counts body bytes, and keeps them (up to the limit) when asked.
fn take_data(o: &mut Outcome, data: &[u8]) {
    o.bytes_received += data.len() as u64;
    if let Some(k) = o.kept.as_mut() {
        k.take(data);
    }
}

/// Where the chunked decoder is.
#[derive(Debug)]
enum Chunked {
    /// Expecting a size line.
    Size,
    /// Inside a chunk's data.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
    Done,
}

impl Chunked {
    /// Decodes what it can of `input`, returning how much it consumed; a
    /// line cut at the end of `input` is left for the next call.
    fn feed(&mut self, input: &[u8], o: &mut Outcome) -> Result<usize, Failed> {
        let bad = |m: &str| Failed {
            stale: false,
            kind: ErrorKind::Protocol,
            message: format!("invalid chunked body: {m}"),
        };
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match *self {
                Chunked::Done => return Ok(at),
                Chunked::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        at += n;
                        *self = if size == 0 {
                            Chunked::Trailers
                        } else {
                            Chunked::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => return Ok(at),
                    Err(_) => return Err(bad("a bad chunk size")),
                },
                Chunked::Data(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let take = (rest.len() as u64).min(left) as usize;
                    take_data(o, &rest[..take]);
                    at += take;
                    *self = if take as u64 == left {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left - take as u64)
                    };
                }
                Chunked::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(bad("no CRLF after a chunk"));
                    }
                    at += 2;
                    *self = Chunked::Size;
                }
                Chunked::Trailers => {
                    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                        return Ok(at);
                    };
                    at += end + 1;
                    if rest[..end].trim_ascii().is_empty() {
                        *self = Chunked::Done;
                    }
                }
            }
        }
    }
}

/// The last transfer coding of a `Transfer-Encoding` value.
fn last_token(v: &[u8]) -> &[u8] {
    v.rsplit(|&b| b == b',').next().unwrap_or(v).trim_ascii()
}

/// Writes the request head (and body) into `out`: the recorded headers in
/// their order, Host from the origin, Content-Length from the body. A header
/// HTTP cannot carry (a name that is not a token, a value with a line
/// break) is left out rather than sent broken.
pub fn render(req: &Request<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    if req.path_and_query.is_empty() {
        out.push(b'/');
    } else {
        out.extend_from_slice(req.path_and_query.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    if let Some(host) = host_override(req) {
        // `--header 'Host: api.staging'`: a virtual host behind an address.
        out.extend_from_slice(host.as_bytes());
    } else {
        let o = req.origin;
        let bracket = o.host.contains(':');
        if bracket {
            out.push(b'[');
        }
        out.extend_from_slice(o.host.as_bytes());
        if bracket {
            out.push(b']');
        }
        if o.port != if o.https { 443 } else { 80 } {
            out.push(b':');
            out.extend_from_slice(itoa(o.port as u64, &mut [0; 20]));
        }
    }
    out.extend_from_slice(b"\r\n");
    for (k, v) in req.headers {
        if matches!(
            &**k,
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) || !is_token(k.as_bytes())
            || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
        {
            continue;
        }
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let body = req.body.unwrap_or_default();
    if req.body.is_some() || matches!(req.method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa(body.len() as u64, &mut [0; 20]));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// An HTTP token (RFC 9110 §5.6.2): what a header name may be.
fn is_token(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Origin;
    use crate::http::poller::{Poller, tokio_nap};

    fn outcome() -> Outcome {
        Outcome::started(Instant::now())
    }

    #[test]
    fn renders_head_host_and_length() {
        let origin = Origin {
            https: false,
            host: "127.0.0.1".into(),
            port: 8080,
        };
        let headers: Vec<crate::http::Header> = vec![
            ("accept".into(), "*/*".into()),
            ("bad name".into(), "x".into()),
            ("x-split".into(), "a\r\nevil: 1".into()),
        ];
        let req = Request {
            method: "POST",
            origin: &origin,
            path_and_query: "/orders?x=1",
            headers: &headers,
            body: Some(b"{}"),
            keep: false,
            sent: Default::default(),
            connected: Default::default(),
            received: Default::default(),
        };
        let mut out = Vec::new();
        render(&req, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /orders?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: */*\r\n\
             content-length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn a_host_header_given_for_the_run_names_the_virtual_host() {
        let origin = Origin {
            https: false,
            host: "10.0.0.7".into(),
            port: 8080,
        };
        let headers: Vec<crate::http::Header> = vec![("host".into(), "api.staging".into())];
        let mut req = Request {
            method: "GET",
            origin: &origin,
            path_and_query: "/",
            headers: &headers,
            body: None,
            keep: false,
            sent: Default::default(),
            connected: Default::default(),
            received: Default::default(),
        };
        let mut out = Vec::new();
        render(&req, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nhost: api.staging\r\n\r\n"
        );
        // One that cannot be a header value is not used.
        let bad: Vec<crate::http::Header> = vec![("host".into(), "a b".into())];
        req.headers = &bad;
        let mut out = Vec::new();
        render(&req, &mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("host: 10.0.0.7:8080\r\n")
        );
    }

    #[test]
    fn default_port_and_ipv6_host() {
        let origin = Origin {
            https: false,
            host: "::1".into(),
            port: 80,
        };
        let req = Request {
            method: "GET",
            origin: &origin,
            path_and_query: "",
            headers: &[],
            body: None,
            keep: false,
            sent: Default::default(),
            connected: Default::default(),
            received: Default::default(),
        };
        let mut out = Vec::new();
        render(&req, &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: [::1]\r\n\r\n");
    }

    /// Responses far larger than a new connection's buffer, in every
    /// framing, arrive whole over a real socket: the buffer grows as reads
    /// fill it, to [`READ_CHUNK`] for bodies and past it only for a head.
    #[tokio::test(flavor = "current_thread")]
    async fn responses_larger_than_the_first_buffer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let big_header = "x".repeat(20_000);
        let trailer = "t".repeat(5_000);
        let mut chunked = Vec::new();
        for part in body.chunks(7_000) {
            chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            chunked.extend_from_slice(part);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(format!("0\r\nx-trailer: {trailer}\r\n\r\n").as_bytes());
        let ok = b"ok".to_vec();
        // (response, body, buffer size after it); each on a new connection,
        // so each starts from the first buffer.
        let cases: Vec<(Vec<u8>, Vec<u8>, usize)> = vec![
            (
                [
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes(),
                    &body,
                ]
                .concat(),
                body.clone(),
                READ_CHUNK,
            ),
            // A chunked body, many reads long, with a long trailer at its
            // end.
            (
                [
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".as_slice(),
                    &chunked,
                ]
                .concat(),
                body.clone(),
                READ_CHUNK,
            ),
            // Nothing but a long trailer line: it comes in pieces into a
            // buffer that has to grow under it.
            (
                format!(
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx-t: {trailer}\r\n\r\n"
                )
                .into_bytes(),
                Vec::new(),
                8 * 1024,
            ),
            // A head longer than the most a body read asks for.
            (
                format!("HTTP/1.1 200 OK\r\nx-big: {big_header}\r\ncontent-length: 2\r\n\r\nok")
                    .into_bytes(),
                ok,
                2 * READ_CHUNK,
            ),
            (
                [
                    b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".as_slice(),
                    &body,
                ]
                .concat(),
                body.clone(),
                READ_CHUNK,
            ),
        ];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served: Vec<Vec<u8>> = cases.iter().map(|c| c.0.clone()).collect();
        let server = tokio::spawn(async move {
            let mut scratch = [0u8; 4096];
            for r in served {
                let (mut s, _) = listener.accept().await.unwrap();
                // One request head in, the response out in pieces.
                let mut got = Vec::new();
                while !got.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut scratch).await.unwrap();
                    assert!(n > 0);
                    got.extend_from_slice(&scratch[..n]);
                }
                for piece in r.chunks(3_000) {
                    s.write_all(piece).await.unwrap();
                    s.flush().await.unwrap();
                }
            }
        });
        let origin = Origin {
            https: false,
            host: "127.0.0.1".into(),
            port,
        };
        let req = Request {
            method: "GET",
            origin: &origin,
            path_and_query: "/",
            headers: &[],
            body: None,
            keep: true,
            sent: Default::default(),
            connected: Default::default(),
            received: Default::default(),
        };
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let poller = Poller::new(tokio_nap()).unwrap();
                for (i, (_, want, grown)) in cases.iter().enumerate() {
                    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .unwrap();
                    let mut conn = Conn::new(Socket::new(stream, poller.clone()).unwrap());
                    assert_eq!(conn.buf.len(), FIRST_CHUNK);
                    let mut o = outcome();
                    let reusable = conn.exchange(&req, false, &mut o).await.unwrap();
                    assert_eq!(o.error.as_ref().map(|e| &e.1), None, "response {i}");
                    assert_eq!(o.bytes_received as usize, want.len(), "response {i}");
                    assert_eq!(reusable, i != 4, "response {i}");
                    assert_eq!(&o.kept.unwrap().body, want, "response {i}");
                    assert_eq!(conn.buf.len(), *grown, "response {i}");
                }
            })
            .await;
        server.await.unwrap();
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let body =
            b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nx-t: 1\r\n\r\n";
        for cut in 0..body.len() {
            let mut o = outcome();
            o.kept = Some(Box::default());
            let mut c = Chunked::Size;
            let mut pending = body[..cut].to_vec();
            let n = c
                .feed(&pending, &mut o)
                .unwrap_or_else(|_| panic!("cut {cut}"));
            pending.drain(..n);
            pending.extend_from_slice(&body[cut..]);
            let n = c.feed(&pending, &mut o).unwrap();
            assert!(matches!(c, Chunked::Done), "cut {cut}: {c:?}");
            assert_eq!(n, pending.len());
            assert_eq!(o.bytes_received, 23);
            assert_eq!(o.kept.unwrap().body, b"Wikipedia in\r\n\r\nchunks.");
        }
    }

    #[test]
    fn bad_chunks_are_protocol_errors() {
        for body in [&b"zz\r\n"[..], b"3\r\nabcXY"] {
            let mut o = outcome();
            let err = Chunked::Size.feed(body, &mut o).expect_err("an error");
            assert_eq!(err.kind, ErrorKind::Protocol);
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn response_ish() -> impl Strategy<Value = Vec<u8>> {
            let part = prop_oneof![
                Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
                Just(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
                Just(b"HTTP/1.0 204 No Content\r\n".to_vec()),
                Just(b"content-length: 3\r\n".to_vec()),
                Just(b"Content-Length: 99999999999999999999\r\n".to_vec()),
                Just(b"transfer-encoding: gzip, chunked\r\n".to_vec()),
                Just(b"connection: close, keep-alive\r\n".to_vec()),
                Just(b"5;x=y\r\nhello\r\n0\r\n\r\n".to_vec()),
                Just(b"fffffffffffffffffffff\r\n".to_vec()),
                Just(b"\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..40),
            ];
            proptest::collection::vec(part, 0..14).prop_map(|v| v.concat())
        }

        proptest! {
            /// Whatever a server sends, in whatever pieces, parsing the head
            /// and decoding chunks never panics and never claims more bytes
            /// than it was given.
            #[test]
            fn any_response_bytes(bytes in response_ish(), cut in 0usize..200, keep: bool) {
                let origin = Origin { https: false, host: "h".into(), port: 80 };
                let req = Request {
                    method: "GET", origin: &origin, path_and_query: "/",
                    headers: &[], body: None, keep, sent: Default::default(),
            connected: Default::default(),
            received: Default::default(),
                };
                let mut o = outcome();
                let mut buf = bytes.clone();
                let mut filled = buf.len();
                if let Ok(Some((framing, _, len))) = read_head(&mut buf, &mut filled, &req, &mut o) {
                    prop_assert!(len <= filled);
                    if let Framing::Chunked = framing {
                        let rest = &buf[len..filled];
                        let cut = cut.min(rest.len());
                        let mut c = Chunked::Size;
                        if let Ok(n) = c.feed(&rest[..cut], &mut o) {
                            prop_assert!(n <= cut);
                            let mut pending = rest[n..].to_vec();
                            if let Ok(m) = c.feed(&pending, &mut o) {
                                prop_assert!(m <= pending.len());
                                pending.drain(..m);
                            }
                        }
                    }
                }
                // Arbitrary bytes straight into the chunk decoder, too.
                let _ = Chunked::Size.feed(&bytes, &mut o);
            }
        }
    }
}
