//! One TCP connection: its two directions reassembled and parsed, and the
//! conversation that pairs their messages.
//!
//! Which side is the client comes from the handshake (the SYN's sender),
//! from `--port` (the side on a listed port serves), or, for a connection
//! whose start was not captured, from the first message found: a request
//! line marks the client, a status line the server. A connection whose
//! client does not speak HTTP/1.x (TLS, HTTP/2, anything else) is set aside
//! after its first bytes.

use std::net::IpAddr;

use super::conv::{Conv, Ctx, Mark, Shared};
use super::http::{MAX_HEAD, Parser, Role};
use super::link::Segment;
use super::tcp::{Event, Stream};
use crate::model::Timestamp;

/// A connection with no message found in this many bytes is not HTTP.
const MAX_HUNT: u64 = 64 << 10;

struct Side {
    ip: IpAddr,
    port: u16,
    stream: Stream,
    parser: Parser,
}

/// Why a connection was set aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotHttp {
    Tls,
    Http2,
    Other,
}

/// Whether a stream's first bytes look like the start of an HTTP/1.x
/// message (a method and a space, or a status line).
fn looks_http(first: &[u8]) -> bool {
    let method = first
        .iter()
        .take(25)
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    (method > 0 && first.get(method) == Some(&b' ')) || first.starts_with(b"HTTP/")
}

impl NotHttp {
    pub fn name(self) -> &'static str {
        match self {
            NotHttp::Tls => "TLS",
            NotHttp::Http2 => "HTTP/2",
            NotHttp::Other => "no HTTP/1.x message found",
        }
    }

    fn of(first: &[u8]) -> NotHttp {
        if first.starts_with(b"PRI * HTTP/2") {
            NotHttp::Http2
        } else if first.len() >= 2 && first[0] == 0x16 && first[1] == 0x03 {
            NotHttp::Tls
        } else {
            NotHttp::Other
        }
    }
}

/// One connection.
pub struct Flow {
    pub id: u64,
    /// Side 0 sent the first packet seen.
    sides: [Side; 2],
    client: Option<usize>,
    conv: Conv,
    pub last_seen: Timestamp,
    /// The time under which the flow is listed among those with requests
    /// open (see the reader's ordering of exchanges).
    pub registered: Option<Timestamp>,
    pub not_http: Option<NotHttp>,
    closed: bool,
    /// The client's initial sequence number, when its SYN was seen.
    isn: Option<u32>,
    /// Whether each side's first bytes looked like HTTP.
    looked_http: [Option<bool>; 2],
}

impl Flow {
    /// A flow starting with `seg`; `src_serves` says the sender is the
    /// server (from `--port`), when known.
    pub fn new(
        id: u64,
        seg: &Segment,
        ts: Timestamp,
        src_serves: Option<bool>,
        max_bytes: usize,
    ) -> Flow {
        let side = |ip, port| {
            let mut parser = Parser::new(Role::Unknown, false);
            parser.head_limit = MAX_HEAD.min(max_bytes);
            Side {
                ip,
                port,
                stream: Stream::default(),
                parser,
            }
        };
        let mut f = Flow {
            id,
            sides: [side(seg.src, seg.sport), side(seg.dst, seg.dport)],
            client: None,
            conv: Conv::default(),
            last_seen: ts,
            registered: None,
            not_http: None,
            closed: false,
            isn: (seg.syn && seg.ack.is_none()).then_some(seg.seq),
            looked_http: [None; 2],
        };
        let client = match (seg.syn, seg.ack.is_some(), src_serves) {
            (true, false, _) => Some(0),
            (true, true, _) => Some(1),
            (_, _, Some(serves)) => Some(usize::from(serves)),
            _ => None,
        };
        if let Some(c) = client {
            f.set_client(c);
        }
        f
    }

    fn set_client(&mut self, c: usize) {
        self.client = Some(c);
        self.sides[c].parser.role = Role::Request;
        self.sides[1 - c].parser.role = Role::Response;
        self.conv.client = Some(self.sides[c].ip);
        self.conv.server = Some(self.sides[1 - c].ip);
    }

    /// The server's port, once the roles are known.
    pub fn server_port(&self) -> Option<u16> {
        self.client.map(|c| self.sides[1 - c].port)
    }

    /// Whether a message was read on this connection.
    pub fn spoke_http(&self) -> bool {
        self.sides.iter().any(|s| s.parser.messages > 0)
    }

    /// Whether `seg` opens a new connection on the same addresses and ports
    /// (not a retransmitted SYN of this one).
    pub fn reopened_by(&self, seg: &Segment) -> bool {
        seg.syn
            && seg.ack.is_none()
            && match self.isn {
                Some(isn) => isn != seg.seq,
                None => self.spoke_http(),
            }
    }

    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Both sides sent FIN, but bytes before one of them are missing.
    pub fn closing(&self) -> bool {
        !self.closed && self.sides.iter().all(|s| s.stream.fin_seen())
    }

    /// Bytes this flow holds in buffers.
    pub fn held(&self) -> usize {
        self.sides
            .iter()
            .map(|s| s.stream.held_bytes + s.parser.buffered())
            .sum::<usize>()
            + self.conv.kept_bytes()
    }

    /// When the oldest request not yet finished began, or the oldest data
    /// held behind a hole (which may begin one) was captured.
    pub fn oldest_open(&self) -> Option<Timestamp> {
        self.sides
            .iter()
            .filter_map(|s| s.stream.held_since())
            .chain(self.conv.oldest_open())
            .min()
    }

    /// Tallies of the two directions: (retransmitted segments, bytes lost
    /// to gaps, holes given up under the memory limit, bytes then held).
    pub fn tcp_tallies(&self) -> [u64; 4] {
        let mut t = [0; 4];
        for s in &self.sides {
            t[0] += s.stream.retransmitted;
            t[1] += s.stream.gap_bytes;
            t[2] += s.stream.cut_holes;
            t[3] += s.stream.cut_bytes;
        }
        t
    }

    /// A segment of this connection.
    pub fn packet(&mut self, seg: &Segment, ts: Timestamp, shared: &mut Shared, max_bytes: usize) {
        self.last_seen = ts;
        if self.closed {
            return;
        }
        let d = usize::from(!(seg.src == self.sides[0].ip && seg.sport == self.sides[0].port));
        if self.client.is_none() && seg.syn {
            self.set_client(if seg.ack.is_some() { 1 - d } else { d });
        }
        if seg.syn && seg.ack.is_none() {
            self.isn.get_or_insert(seg.seq);
        }
        if self.not_http.is_some() {
            self.closed = seg.rst || (seg.fin && self.sides[1 - d].stream.finished());
            return;
        }
        if let Some(ack) = seg.ack {
            let first = self.with_side(1 - d, shared, |s, out| s.acknowledged(ack, out));
            self.after_feed(1 - d, first.as_deref(), shared);
            if self.not_http.is_some() {
                return;
            }
        }
        let limit = max_bytes.saturating_sub(self.held() - self.sides[d].stream.held_bytes);
        let first = self.with_side(d, shared, |s, out| {
            s.segment(
                seg.seq,
                seg.syn,
                seg.fin,
                seg.payload,
                seg.missing,
                ts,
                limit,
                out,
            )
        });
        self.after_feed(d, first.as_deref(), shared);
        if seg.rst || self.sides.iter().all(|s| s.stream.finished()) {
            self.finish(shared);
        }
    }

    /// Feeds the events `f` produces on side `d`'s stream to its parser;
    /// the stream's first bytes, when they are among them.
    fn with_side(
        &mut self,
        d: usize,
        shared: &mut Shared,
        f: impl FnOnce(&mut Stream, &mut dyn FnMut(Event)),
    ) -> Option<Vec<u8>> {
        let other = &self.sides[1 - d].parser;
        let server = Mark {
            offset: other.offset,
            unparsed: other.unparsed,
        };
        let Side { stream, parser, .. } = &mut self.sides[d];
        if parser.offset == 0 && stream.position() == 0 {
            parser.in_step(!stream.mid_stream);
        }
        let mut ctx = Ctx {
            conv: &mut self.conv,
            shared,
            server,
        };
        let mut first = None;
        f(stream, &mut |ev| match ev {
            Event::Data(bytes, ts) => {
                if parser.offset == 0 {
                    first = Some(bytes[..bytes.len().min(16)].to_vec());
                }
                parser.feed(bytes, ts, &mut ctx)
            }
            Event::Gap(n, ts) => parser.gap(n, ts, &mut ctx),
        });
        first
    }

    /// Roles found by the parser, tunnels, connections that are not HTTP.
    fn after_feed(&mut self, d: usize, first: Option<&[u8]>, shared: &mut Shared) {
        if self.client.is_none() {
            match self.sides[d].parser.role {
                Role::Request => self.set_client(d),
                Role::Response => self.set_client(1 - d),
                Role::Unknown => {}
            }
        }
        if self.conv.tunnel {
            for s in &mut self.sides {
                s.parser.tunnel();
            }
        }
        // Only a stream seen from its start has first bytes that mean
        // something.
        if let Some(first) = first.filter(|f| !f.is_empty())
            && self.looked_http[d].is_none()
            && !self.sides[d].stream.mid_stream
        {
            self.looked_http[d] = Some(looks_http(first));
            let kind = NotHttp::of(first);
            if kind != NotHttp::Other && self.client == Some(d) {
                return self.set_aside(kind, shared);
            }
        }
        if self.spoke_http() {
            return;
        }
        // Both sides spoke, neither like HTTP; or nothing found for long.
        let hunted: u64 = self.sides.iter().map(|s| s.parser.unparsed).sum();
        if self.looked_http == [Some(false); 2] || hunted > MAX_HUNT {
            self.set_aside(NotHttp::Other, shared);
        }
    }

    fn set_aside(&mut self, why: NotHttp, shared: &mut Shared) {
        self.not_http = Some(why);
        self.conv.discard(shared);
        for s in &mut self.sides {
            s.stream = Stream::default();
            s.parser.tunnel();
        }
    }

    /// Gives up on every hole (memory is short): what is held is delivered.
    pub fn cut(&mut self, shared: &mut Shared) {
        for d in 0..2 {
            if self.sides[d].stream.held_bytes > 0 {
                self.with_side(d, shared, |s, out| s.give_up(out));
            }
        }
    }

    /// The connection is over (FIN both ways, RST, idle, the end of the
    /// capture): held data is delivered, unfinished messages end.
    pub fn finish(&mut self, shared: &mut Shared) {
        if self.closed {
            return;
        }
        self.closed = true;
        if self.not_http.is_some() {
            return;
        }
        for d in 0..2 {
            self.with_side(d, shared, |s, out| s.flush(out));
        }
        if !self.spoke_http() {
            self.not_http = Some(NotHttp::Other);
            self.conv.discard(shared);
            return;
        }
        // The server's side first: a response that runs to the close ends
        // there, and completes its request's exchange.
        let order = match self.client {
            Some(c) => [1 - c, c],
            None => [0, 1],
        };
        for d in order {
            let other = &self.sides[1 - d].parser;
            let server = Mark {
                offset: other.offset,
                unparsed: other.unparsed,
            };
            let mut ctx = Ctx {
                conv: &mut self.conv,
                shared,
                server,
            };
            self.sides[d].parser.finish(&mut ctx);
        }
        self.conv.finish(shared);
    }
}
