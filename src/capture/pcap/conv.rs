//! One connection's HTTP conversation: requests paired with the responses
//! that answer them, in order (keep-alive and pipelining alike), and turned
//! into exchanges.
//!
//! Pairing is first-in first-out, corrected where the capture lost data:
//! a response that began before its supposed request was sent answers a
//! request the capture does not hold; a response found after lost server
//! bytes, past the start of a later request, means the earlier request's
//! response was among the lost bytes.

use std::collections::VecDeque;
use std::io::Read;
use std::net::IpAddr;

use flate2::read::{MultiGzDecoder, ZlibDecoder};

use super::head::{Framing, Head};
use super::http::{Handler, Role};
use crate::capture::access_log::{first_client_bytes, set_target_str, str_of, strip_port};
use crate::capture::{Body, Exchange};
use crate::model::Timestamp;

/// Request bodies longer than this are not kept (the modeller does not
/// template them either).
pub const MAX_BODY: usize = 64 << 10;

/// What became of a request's response.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Waiting,
    /// Its head was read.
    Head,
    Done,
    /// Lost to a capture gap.
    Lost,
}

/// A request on its way to becoming an exchange.
struct Req {
    x: Exchange,
    /// The request's first and last byte.
    first: Timestamp,
    last: Option<Timestamp>,
    /// The server stream's offset and unparsed bytes when it began.
    server_offset: u64,
    server_unparsed: u64,
    /// Byte offset in the capture of the packet where it began.
    at: u64,
    /// Why it will not become an exchange.
    dropped: Option<&'static str>,
    method_head: bool,
    method_connect: bool,
    body: Option<Vec<u8>>,
    answer: Answer,
    resp_first: Option<Timestamp>,
    resp_last: Option<Timestamp>,
}

/// What the conversations of all connections share: the exchanges made,
/// spare ones to reuse, tallies, the current packet.
#[derive(Default)]
pub struct Shared {
    /// Finished exchanges, for the reader to put in time order.
    pub done: Vec<Exchange>,
    /// Requests that did not become exchanges: (byte offset, why).
    pub dropped: Vec<(u64, &'static str)>,
    pub spare: Vec<Exchange>,
    pub packet_offset: u64,
    pub requests: u64,
    pub responses: u64,
    pub unanswered: u64,
    pub orphan_responses: u64,
    pub lost_responses: u64,
    pub interim: u64,
    pub response_damaged: u64,
    pub malformed_responses: u64,
    pub bodies_cut: u64,
    /// Most bytes a kept request body may take.
    pub body_limit: usize,
}

/// The server's stream position when a client message is fed.
#[derive(Clone, Copy, Default)]
pub struct Mark {
    pub offset: u64,
    pub unparsed: u64,
}

/// A connection's conversation.
#[derive(Default)]
pub struct Conv {
    pending: VecDeque<Req>,
    pub client: Option<IpAddr>,
    pub server: Option<IpAddr>,
    /// A response to a request not in the capture is being read.
    orphan: bool,
    /// Where and when the response being read began.
    resp_offset: u64,
    resp_started: Timestamp,
    /// The connection switched protocols (101, CONNECT).
    pub tunnel: bool,
}

impl Conv {
    /// When the oldest request not yet finished began.
    pub fn oldest_open(&self) -> Option<Timestamp> {
        self.pending.front().map(|r| r.first)
    }

    pub fn kept_bytes(&self) -> usize {
        self.pending
            .iter()
            .filter_map(|r| r.body.as_ref())
            .map(Vec::capacity)
            .sum()
    }

    /// The connection turned out not to be HTTP: what looked like requests
    /// is forgotten.
    pub fn discard(&mut self, shared: &mut Shared) {
        for mut r in self.pending.drain(..) {
            r.x.reset();
            shared.spare.push(r.x);
        }
    }

    /// The connection is over: every request left becomes an exchange (or a
    /// counted loss).
    pub fn finish(&mut self, shared: &mut Shared) {
        for r in &mut self.pending {
            if r.last.is_none() && r.dropped.is_none() {
                r.dropped = Some("request cut short");
            }
            if r.answer == Answer::Waiting && r.dropped.is_none() {
                shared.unanswered += 1;
            }
            r.answer = match r.answer {
                Answer::Head | Answer::Done => Answer::Done,
                _ => Answer::Lost,
            };
        }
        self.emit_ready(shared);
    }

    /// Pops finished requests off the front, making exchanges of them.
    fn emit_ready(&mut self, shared: &mut Shared) {
        while let Some(r) = self.pending.front() {
            let finished = matches!(r.answer, Answer::Done | Answer::Lost)
                && (r.last.is_some() || r.dropped.is_some());
            if !finished {
                return;
            }
            let r = self.pending.pop_front().expect("front");
            self.emit(r, shared);
        }
    }

    fn emit(&mut self, r: Req, shared: &mut Shared) {
        let Req {
            mut x,
            first,
            last,
            at,
            dropped,
            body,
            resp_first,
            resp_last,
            ..
        } = r;
        shared.requests += 1;
        if let Some(why) = dropped {
            shared.dropped.push((at, why));
            x.reset();
            shared.spare.push(x);
            return;
        }
        x.time = first;
        if let (Some(last), Some(rf)) = (last, resp_first) {
            x.ttfb = Some(rf.saturating_since(last));
        }
        x.duration = resp_last.map(|rl| rl.saturating_since(first));
        if let Some(b) = body {
            x.body = text_body(&x, &b, shared);
        }
        shared.done.push(x);
    }

    fn request_head(&mut self, head: &Head, shared: &mut Shared) -> (Framing, bool) {
        let Some(r) = self.pending.back_mut() else {
            return (head.framing(Framing::None), false);
        };
        r.method_head = head.method.eq_ignore_ascii_case("HEAD");
        r.method_connect = head.method.eq_ignore_ascii_case("CONNECT");
        let x = &mut r.x;
        x.method.push_str(head.method);
        if set_target_str(x, head.target).is_err() {
            r.dropped = Some("malformed request target");
        }
        x.set_scheme("http");
        for h in head.headers {
            let name = h.name.to_ascii_lowercase();
            x.push_header(&name, &str_of(h.value));
        }
        if x.host.is_none() {
            let host = head
                .header("host")
                .map(|h| strip_port(str_of(h).trim()).to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .or_else(|| self.server.map(|ip| ip.to_string()));
            if let Some(h) = host {
                x.set_host(&h);
            }
        }
        // Behind a proxy or load balancer the client is in the forwarding
        // headers; the packet's source is the proxy.
        let forwarded = ["x-forwarded-for", "x-real-ip"]
            .iter()
            .find_map(|n| head.header(n))
            .and_then(first_client_bytes);
        match (forwarded, self.client) {
            (Some(f), _) => x.set_client(&str_of(f)),
            (None, Some(ip)) => x.set_client(&ip.to_string()),
            (None, None) => {}
        }
        let framing = head.framing(Framing::None);
        let keep = framing != Framing::None && worth_keeping(head, shared.body_limit);
        if keep {
            r.body = Some(Vec::new());
        }
        (framing, keep)
    }

    /// The request the response now read answers: its index in `pending`.
    fn answered(&mut self, offset: u64, shared: &mut Shared) -> Option<usize> {
        let mut t = self
            .pending
            .iter()
            .position(|r| r.answer == Answer::Waiting)?;
        if offset < self.pending[t].server_offset {
            // It began before its request was sent: it answers an earlier
            // request that the capture does not hold.
            return None;
        }
        while let Some(next) = self.pending.get(t + 1) {
            let lost_between = next.server_unparsed > self.pending[t].server_unparsed;
            if !(lost_between && offset >= next.server_offset) {
                break;
            }
            self.pending[t].answer = Answer::Lost;
            shared.lost_responses += 1;
            t += 1;
        }
        Some(t)
    }

    fn response_head(&mut self, head: &Head, shared: &mut Shared) -> (Framing, bool) {
        let status = head.status;
        if (100..200).contains(&status) && status != 101 {
            shared.interim += 1;
            return (Framing::None, false);
        }
        shared.responses += 1;
        let Some(t) = self.answered(self.resp_offset, shared) else {
            self.orphan = true;
            shared.orphan_responses += 1;
            return (response_framing(head, false, false), false);
        };
        let r = &mut self.pending[t];
        r.answer = Answer::Head;
        r.resp_first = Some(self.resp_started);
        r.x.status = Some(status);
        r.x.response_type = head
            .header("content-type")
            .map(|v| str_of(v).trim().to_string());
        (
            response_framing(head, r.method_head, r.method_connect),
            false,
        )
    }

    fn response_end(&mut self, ts: Timestamp, body_len: u64, damaged: bool, shared: &mut Shared) {
        if std::mem::take(&mut self.orphan) {
            return;
        }
        if damaged {
            shared.response_damaged += 1;
        }
        if let Some(r) = self.pending.iter_mut().find(|r| r.answer == Answer::Head) {
            r.answer = Answer::Done;
            r.resp_last = Some(ts);
            r.x.response_bytes = Some(body_len);
            if r.x.status == Some(101) || (r.method_connect && r.x.status.is_some_and(|s| s < 300))
            {
                self.tunnel = true;
            }
        }
        self.emit_ready(shared);
    }
}

/// The handler for one feed of one direction's parser.
pub struct Ctx<'a> {
    pub conv: &'a mut Conv,
    pub shared: &'a mut Shared,
    /// The server stream's position (for client messages).
    pub server: Mark,
}

impl Handler for Ctx<'_> {
    fn start(&mut self, role: Role, ts: Timestamp, offset: u64) {
        if role == Role::Response {
            self.conv.resp_offset = offset;
            self.conv.resp_started = ts;
            return;
        }
        let mut x = self.shared.spare.pop().unwrap_or_default();
        x.reset();
        self.conv.pending.push_back(Req {
            x,
            first: ts,
            last: None,
            server_offset: self.server.offset,
            server_unparsed: self.server.unparsed,
            at: self.shared.packet_offset,
            dropped: None,
            method_head: false,
            method_connect: false,
            body: None,
            answer: Answer::Waiting,
            resp_first: None,
            resp_last: None,
        });
    }

    fn head(&mut self, role: Role, head: &Head, _ts: Timestamp) -> (Framing, bool) {
        match role {
            Role::Response => self.conv.response_head(head, self.shared),
            _ => self.conv.request_head(head, self.shared),
        }
    }

    fn body(&mut self, role: Role, bytes: &[u8]) {
        if role != Role::Request {
            return;
        }
        let limit = self.shared.body_limit;
        if let Some(r) = self.conv.pending.back_mut()
            && let Some(b) = &mut r.body
        {
            if b.len() + bytes.len() > limit {
                r.body = None;
                self.shared.bodies_cut += 1;
            } else {
                b.extend_from_slice(bytes);
            }
        }
    }

    fn end(&mut self, role: Role, ts: Timestamp, body_len: u64, damaged: bool) {
        match role {
            Role::Response => self.conv.response_end(ts, body_len, damaged, self.shared),
            _ => {
                if let Some(r) = self.conv.pending.back_mut() {
                    r.last = Some(ts);
                    if damaged {
                        r.dropped = Some("request bytes lost in the capture");
                    }
                }
                self.conv.emit_ready(self.shared);
            }
        }
    }

    fn broken(&mut self, role: Role, why: &'static str) {
        match role {
            Role::Response => {
                if std::mem::take(&mut self.conv.orphan) {
                    return;
                }
                match self
                    .conv
                    .pending
                    .iter_mut()
                    .find(|r| r.answer == Answer::Head)
                {
                    // The head was read: its status and first byte stand.
                    Some(r) => {
                        r.answer = Answer::Done;
                        self.shared.response_damaged += 1;
                    }
                    None => self.shared.malformed_responses += 1,
                }
                self.conv.emit_ready(self.shared);
            }
            _ => {
                if let Some(r) = self.conv.pending.back_mut()
                    && r.last.is_none()
                {
                    r.dropped = Some(why);
                    r.last = Some(r.first);
                }
                self.conv.emit_ready(self.shared);
            }
        }
    }
}

fn response_framing(head: &Head, to_head: bool, to_connect: bool) -> Framing {
    let s = head.status;
    if s == 101 || (to_connect && (200..300).contains(&s)) {
        Framing::Tunnel
    } else if to_head || (100..200).contains(&s) || s == 204 || s == 304 {
        Framing::None
    } else {
        head.framing(Framing::UntilClose)
    }
}

/// Whether a request body is worth keeping: text the modeller can template
/// (JSON, forms, XML, plain text), of a size it keeps.
fn worth_keeping(head: &Head, limit: usize) -> bool {
    let textual = head.header("content-type").is_none_or(|t| {
        let t = str_of(t).to_ascii_lowercase();
        ["json", "x-www-form-urlencoded", "text/", "xml", "graphql"]
            .iter()
            .any(|k| t.contains(k))
    });
    let small = match head.framing(Framing::None) {
        Framing::Length(n) => n as usize <= limit,
        _ => true,
    };
    textual && small && limit > 0
}

/// A kept body as text, decoded from gzip or deflate when it was sent so.
fn text_body(x: &Exchange, raw: &[u8], shared: &mut Shared) -> Option<Body> {
    if raw.is_empty() {
        return None;
    }
    let encoding = x
        .header("content-encoding")
        .map(|e| e.trim().to_ascii_lowercase());
    let decoded;
    let bytes = match encoding.as_deref() {
        None | Some("identity") | Some("") => raw,
        Some("gzip") | Some("x-gzip") => {
            decoded = inflate(MultiGzDecoder::new(raw), shared)?;
            &decoded
        }
        Some("deflate") => {
            decoded = inflate(ZlibDecoder::new(raw), shared)?;
            &decoded
        }
        Some(_) => return None,
    };
    let text = std::str::from_utf8(bytes).ok()?;
    let mime = x.header("content-type").unwrap_or_default().to_string();
    Some(Body::Text {
        mime,
        text: text.to_string(),
    })
}

/// Decompresses at most the body limit; more is dropped as too large.
fn inflate(r: impl Read, shared: &mut Shared) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = shared.body_limit as u64;
    r.take(limit + 1).read_to_end(&mut out).ok()?;
    if out.len() as u64 > limit {
        shared.bodies_cut += 1;
        return None;
    }
    Some(out)
}
