//! HTTP/1.x messages out of one direction's byte stream.
//!
//! A push parser: bytes arrive in whatever pieces TCP delivered them, and
//! only what must be looked at as a whole is copied (a message head, a
//! chunk-size line). Bodies are counted as they pass, and handed on only when
//! the handler asks for them (request bodies worth templating), so a large
//! response costs nothing but its framing.
//!
//! Heads are parsed by httparse, leniently (real servers and clients are
//! not all strict). Bodies are framed by Content-Length, chunked encoding,
//! or the end of the connection; which applies to a response depends on the
//! request it answers (HEAD) and its status (1xx, 204, 304), so the handler
//! decides. After bytes are lost (a capture gap) or something unreadable,
//! the parser looks for the next line that starts a message and carries on
//! from there; a gap inside a Content-Length body leaves it in step.

use super::head::{Framing, Head, MAX_HEADERS, head_end, parse_request, parse_response};
use crate::model::Timestamp;

/// Heads larger than this are not HTTP (or not worth it).
pub const MAX_HEAD: usize = 64 << 10;
const MAX_LINE: usize = 4 << 10;

/// Which messages a direction carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not known yet (a connection whose start was not captured): the first
    /// message found decides.
    Unknown,
    Request,
    Response,
}

/// Where the parser's findings go.
pub trait Handler {
    /// A message of `role` begins at stream offset `offset`; its first byte
    /// came at `ts`.
    fn start(&mut self, role: Role, ts: Timestamp, offset: u64);
    /// Its head is complete. Returns the framing of its body, and whether
    /// the body's bytes should be handed on.
    fn head(&mut self, role: Role, head: &Head, ts: Timestamp) -> (Framing, bool);
    /// Body bytes (decoded from chunks), when asked for.
    fn body(&mut self, role: Role, bytes: &[u8]);
    /// The message is complete: its last byte came at `ts`; `damaged` when
    /// bytes of its body were lost.
    fn end(&mut self, role: Role, ts: Timestamp, body_len: u64, damaged: bool);
    /// The message begun is lost (bytes missing, unreadable, cut short).
    fn broken(&mut self, role: Role, why: &'static str);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between messages.
    Idle,
    /// Out of step: looking for a line that starts a message.
    Hunt,
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    /// The line end after a chunk's data.
    ChunkEnd,
    Trailers,
    UntilClose,
    Tunnel,
}

/// One direction's parser.
pub struct Parser {
    pub role: Role,
    state: State,
    buf: Vec<u8>,
    keep: bool,
    body_len: u64,
    damaged: bool,
    last_ts: Timestamp,
    /// Stream offset: bytes and gaps seen.
    pub offset: u64,
    /// Offset where the current message began.
    pub message_start: u64,
    /// Bytes not read as part of any message (lost, or skipped while out of
    /// step).
    pub unparsed: u64,
    /// Messages whose heads were read.
    pub messages: u64,
    /// Most bytes a head may take (at most [`MAX_HEAD`]).
    pub head_limit: usize,
}

impl Parser {
    /// A parser for a stream whose start was seen (`in_step`) or not.
    pub fn new(role: Role, in_step: bool) -> Parser {
        Parser {
            role,
            state: if in_step { State::Idle } else { State::Hunt },
            buf: Vec::new(),
            keep: false,
            body_len: 0,
            damaged: false,
            last_ts: Timestamp::default(),
            offset: 0,
            message_start: 0,
            unparsed: 0,
            messages: 0,
            head_limit: MAX_HEAD,
        }
    }

    /// Whether the stream's first byte was captured (it then starts a
    /// message); before any byte is read.
    pub fn in_step(&mut self, in_step: bool) {
        if self.offset == 0 && in_step {
            self.state = State::Idle;
        }
    }

    /// Bytes the parser holds.
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// The stream stops being HTTP.
    pub fn tunnel(&mut self) {
        self.state = State::Tunnel;
        self.buf = Vec::new();
    }

    /// In the middle of a message.
    pub fn in_message(&self) -> bool {
        !matches!(self.state, State::Idle | State::Hunt | State::Tunnel)
    }

    pub fn feed(&mut self, mut data: &[u8], ts: Timestamp, h: &mut dyn Handler) {
        self.last_ts = ts;
        while !data.is_empty() {
            let used = match self.state {
                State::Idle => self.idle(data, ts, h),
                State::Hunt => self.hunt(data, ts, h),
                State::Head => self.head(data, ts, h),
                State::Body(left) => {
                    let n = left.min(data.len() as u64);
                    self.pass(&data[..n as usize], h);
                    self.state = State::Body(left - n);
                    if left == n {
                        self.end(ts, h);
                    }
                    n as usize
                }
                State::ChunkSize => self.chunk_size(data, h),
                State::ChunkData(left) => {
                    let n = left.min(data.len() as u64);
                    self.pass(&data[..n as usize], h);
                    self.state = if left == n {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left - n)
                    };
                    n as usize
                }
                State::ChunkEnd => match data[0] {
                    b'\r' => 1,
                    b'\n' => {
                        self.state = State::ChunkSize;
                        1
                    }
                    _ => {
                        self.lose(h, "bad chunk framing");
                        0
                    }
                },
                State::Trailers => self.trailers(data, ts, h),
                State::UntilClose => {
                    self.pass(data, h);
                    data.len()
                }
                State::Tunnel => data.len(),
            };
            self.offset += used as u64;
            data = &data[used..];
        }
    }

    /// `n` bytes of the stream were lost.
    pub fn gap(&mut self, n: u64, ts: Timestamp, h: &mut dyn Handler) {
        self.offset += n;
        match self.state {
            State::Idle | State::Hunt => {
                self.unparsed += n;
                self.state = State::Hunt;
            }
            State::Body(left) if n < left => {
                self.damaged = true;
                self.body_len += n;
                self.state = State::Body(left - n);
            }
            State::Body(left) => {
                self.damaged = true;
                self.body_len += left;
                self.end(ts, h);
                self.unparsed += n - left;
                self.state = State::Hunt;
            }
            State::ChunkData(left) if n < left => {
                self.damaged = true;
                self.body_len += n;
                self.state = State::ChunkData(left - n);
            }
            State::UntilClose => {
                self.damaged = true;
                self.body_len += n;
            }
            State::Tunnel => {}
            _ => {
                self.lose(h, "bytes lost in the capture");
                self.unparsed += n;
            }
        }
    }

    /// The stream ended (FIN, RST, the end of the capture).
    pub fn finish(&mut self, h: &mut dyn Handler) {
        match self.state {
            State::UntilClose => {
                let ts = self.last_ts;
                self.end(ts, h);
            }
            State::Idle | State::Hunt | State::Tunnel => {}
            _ => {
                h.broken(self.role, "cut short by the end of the connection");
                self.state = State::Idle;
            }
        }
        self.buf = Vec::new();
    }

    fn pass(&mut self, bytes: &[u8], h: &mut dyn Handler) {
        self.body_len += bytes.len() as u64;
        if self.keep {
            h.body(self.role, bytes);
        }
    }

    fn idle(&mut self, data: &[u8], ts: Timestamp, h: &mut dyn Handler) -> usize {
        // Stray line ends between messages are tolerated.
        let blank = data
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 {
            return blank;
        }
        // With the role known, whatever comes is a message, readable or
        // not (a malformed request still gets its response, and is counted).
        let role = match self.role {
            Role::Unknown => starts_message(self.role, data, false),
            known => Some(known),
        };
        match role {
            Some(role) => self.begin(role, 0, ts, h),
            None => {
                self.state = State::Hunt;
            }
        }
        0
    }

    /// A message starts `skip` bytes into the piece being read.
    fn begin(&mut self, role: Role, skip: usize, ts: Timestamp, h: &mut dyn Handler) {
        self.role = role;
        self.state = State::Head;
        self.message_start = self.offset + skip as u64;
        self.buf.clear();
        h.start(role, ts, self.message_start);
    }

    /// Skips to the next line that starts a message.
    fn hunt(&mut self, data: &[u8], ts: Timestamp, h: &mut dyn Handler) -> usize {
        // Candidates: where the piece begins (TCP segments often begin
        // messages) and every line start.
        let mut at = Some(0);
        while let Some(i) = at {
            if i >= data.len() {
                break;
            }
            if let Some(role) = starts_message(self.role, &data[i..], true)
                && plausible_line(role, &data[i..])
            {
                self.unparsed += i as u64;
                self.begin(role, i, ts, h);
                return i;
            }
            at = memchr::memchr(b'\n', &data[i..]).map(|j| i + j + 1);
        }
        self.unparsed += data.len() as u64;
        data.len()
    }

    fn head(&mut self, data: &[u8], ts: Timestamp, h: &mut dyn Handler) -> usize {
        // Most heads arrive whole in one piece: parse them where they are.
        if self.buf.is_empty()
            && let Some(end) = head_end(data, 0)
            && end <= self.head_limit
        {
            self.parse_head(&data[..end], ts, h);
            return end;
        }
        let had = self.buf.len();
        let room = self.head_limit.saturating_sub(had);
        let take = data.len().min(room + 1);
        self.buf.extend_from_slice(&data[..take]);
        match head_end(&self.buf, had.saturating_sub(3)) {
            Some(end) => {
                let buf = std::mem::take(&mut self.buf);
                self.parse_head(&buf[..end], ts, h);
                self.buf = buf;
                self.buf.clear();
                end.saturating_sub(had)
            }
            None if self.buf.len() > self.head_limit => {
                self.lose(h, "message head too large");
                take
            }
            None => take,
        }
    }

    fn parse_head(&mut self, bytes: &[u8], ts: Timestamp, h: &mut dyn Handler) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let parsed = match self.role {
            Role::Response => parse_response(bytes, &mut headers),
            _ => parse_request(bytes, &mut headers),
        };
        let Some(head) = parsed else {
            let why = if self.role == Role::Response {
                "malformed response head"
            } else {
                "malformed request head"
            };
            self.lose(h, why);
            self.unparsed += bytes.len() as u64;
            return;
        };
        self.messages += 1;
        let (framing, keep) = h.head(self.role, &head, ts);
        self.keep = keep;
        self.body_len = 0;
        self.damaged = false;
        self.state = match framing {
            Framing::None => State::Body(0),
            Framing::Length(n) => State::Body(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
            Framing::Tunnel => {
                h.end(self.role, ts, 0, false);
                self.tunnel();
                return;
            }
        };
        if self.state == State::Body(0) {
            self.end(ts, h);
        }
    }

    fn chunk_size(&mut self, data: &[u8], h: &mut dyn Handler) -> usize {
        let Some((line, used)) = self.line(data) else {
            if self.buf.len() > MAX_LINE {
                self.lose(h, "bad chunk framing");
            }
            return data.len();
        };
        let mut line = line;
        if !line.ends_with(b"\r\n") {
            // A bare LF ends the line too.
            line.truncate(line.len() - 1);
            line.extend_from_slice(b"\r\n");
        }
        match httparse::parse_chunk_size(&line) {
            Ok(httparse::Status::Complete((_, 0))) => self.state = State::Trailers,
            Ok(httparse::Status::Complete((_, n))) => self.state = State::ChunkData(n),
            _ => self.lose(h, "bad chunk framing"),
        }
        self.buf = line;
        self.buf.clear();
        used
    }

    fn trailers(&mut self, data: &[u8], ts: Timestamp, h: &mut dyn Handler) -> usize {
        let Some((line, used)) = self.line(data) else {
            if self.buf.len() > MAX_LINE {
                self.lose(h, "bad chunk framing");
            }
            return data.len();
        };
        if line == b"\n" || line == b"\r\n" {
            self.end(ts, h);
        }
        self.buf = line;
        self.buf.clear();
        used
    }

    /// Completes a line in `buf` from `data`: the line (with its end) and
    /// how much of `data` it used; `None` when `data` ran out first (all of
    /// it is then in `buf`).
    fn line(&mut self, data: &[u8]) -> Option<(Vec<u8>, usize)> {
        match memchr::memchr(b'\n', data) {
            Some(i) => {
                self.buf.extend_from_slice(&data[..=i]);
                Some((std::mem::take(&mut self.buf), i + 1))
            }
            None => {
                self.buf.extend_from_slice(data);
                None
            }
        }
    }

    fn end(&mut self, ts: Timestamp, h: &mut dyn Handler) {
        h.end(self.role, ts, self.body_len, self.damaged);
        self.state = State::Idle;
        self.keep = false;
    }

    /// The current message is lost; look for the next.
    fn lose(&mut self, h: &mut dyn Handler, why: &'static str) {
        if self.in_message() {
            h.broken(self.role, why);
        }
        self.state = State::Hunt;
        self.buf.clear();
    }
}

/// Whether `data` can start a message of `role` (or of either, when the
/// role is unknown), and which. `strict`: the first bytes must show it (a
/// method and a space, `HTTP/1.`); otherwise a prefix of them will do.
fn starts_message(role: Role, data: &[u8], strict: bool) -> Option<Role> {
    let response = || {
        let n = if strict { 7 } else { data.len().min(5) };
        (data.get(..n)? == &b"HTTP/1."[..n]).then_some(Role::Response)
    };
    let request = || {
        let n = data
            .iter()
            .take(25)
            .take_while(|b| b.is_ascii_uppercase())
            .count();
        let token_then_space = n > 0 && data.get(n) == Some(&b' ');
        let all_token_so_far = !strict && n == data.len() && n < 25;
        (token_then_space || all_token_so_far).then_some(Role::Request)
    };
    match role {
        Role::Request => request(),
        Role::Response => response(),
        Role::Unknown => response().or_else(request),
    }
}

/// Stricter, for hunting in the middle of a stream: when the line is whole,
/// a request line must end in an HTTP version and a status line start with
/// one and a three-digit code.
fn plausible_line(role: Role, data: &[u8]) -> bool {
    let Some(end) = memchr::memchr(b'\n', data) else {
        return true;
    };
    let line = data[..end].strip_suffix(b"\r").unwrap_or(&data[..end]);
    match role {
        Role::Response => {
            line.len() >= 12
                && line.starts_with(b"HTTP/1.")
                && line[8] == b' '
                && line[9..12].iter().all(u8::is_ascii_digit)
        }
        _ => {
            line.len() > 10
                && line[line.len() - 9..line.len() - 1].eq_ignore_ascii_case(b" HTTP/1.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the parser reports.
    #[derive(Default)]
    struct Log {
        events: Vec<String>,
        body: Vec<u8>,
        framing: Option<Framing>,
    }

    impl Handler for Log {
        fn start(&mut self, role: Role, _ts: Timestamp, offset: u64) {
            self.events.push(format!("start {role:?} @{offset}"));
        }
        fn head(&mut self, role: Role, head: &Head, _ts: Timestamp) -> (Framing, bool) {
            self.events.push(format!(
                "head {role:?} {}{}{}",
                head.method,
                head.target,
                if head.status > 0 {
                    head.status.to_string()
                } else {
                    String::new()
                }
            ));
            let f = self.framing.unwrap_or_else(|| {
                head.framing(if role == Role::Response {
                    Framing::UntilClose
                } else {
                    Framing::None
                })
            });
            (f, true)
        }
        fn body(&mut self, _role: Role, bytes: &[u8]) {
            self.body.extend_from_slice(bytes);
        }
        fn end(&mut self, role: Role, _ts: Timestamp, body_len: u64, damaged: bool) {
            self.events.push(format!(
                "end {role:?} {body_len}{}",
                if damaged { " damaged" } else { "" }
            ));
        }
        fn broken(&mut self, role: Role, why: &'static str) {
            self.events.push(format!("broken {role:?} {why}"));
        }
    }

    fn feed_in_pieces(role: Role, bytes: &[u8], piece: usize) -> Log {
        let mut p = Parser::new(role, true);
        let mut log = Log::default();
        for c in bytes.chunks(piece) {
            p.feed(c, Timestamp::default(), &mut log);
        }
        p.finish(&mut log);
        log
    }

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";

    #[test]
    fn chunked_bodies_in_any_pieces() {
        for piece in [1, 2, 3, 5, 7, 64, 1000] {
            let log = feed_in_pieces(Role::Response, CHUNKED, piece);
            assert_eq!(
                log.events,
                vec![
                    "start Response @0",
                    "head Response 200",
                    "end Response 11",
                    "start Response @93",
                    "head Response 204",
                    "end Response 0",
                ],
                "pieces of {piece}"
            );
            assert_eq!(log.body, b"hello world");
        }
    }

    #[test]
    fn pipelined_requests_with_bodies() {
        let bytes = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n\r\nGET /c HTTP/1.0\n\n";
        for piece in [1, 4, 100] {
            let log = feed_in_pieces(Role::Request, bytes, piece);
            assert_eq!(
                log.events,
                vec![
                    "start Request @0",
                    "head Request POST/a",
                    "end Request 3",
                    "start Request @42",
                    "head Request GET/b",
                    "end Request 0",
                    "start Request @63",
                    "head Request GET/c",
                    "end Request 0",
                ]
            );
        }
    }

    #[test]
    fn close_delimited_bodies_end_with_the_stream() {
        let log = feed_in_pieces(Role::Response, b"HTTP/1.0 200 OK\r\n\r\nall of it", 4);
        assert_eq!(log.events.last().unwrap(), "end Response 9");
    }

    #[test]
    fn a_gap_in_a_sized_body_keeps_step() {
        let mut p = Parser::new(Role::Response, true);
        let mut log = Log::default();
        let t = Timestamp::default();
        p.feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            t,
            &mut log,
        );
        p.gap(4, t, &mut log);
        p.feed(b"hij", t, &mut log);
        p.feed(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            t,
            &mut log,
        );
        assert_eq!(
            log.events,
            vec![
                "start Response @0",
                "head Response 200",
                "end Response 10 damaged",
                "start Response @49",
                "head Response 404",
                "end Response 0",
            ]
        );
    }

    #[test]
    fn a_gap_in_a_head_resynchronises_on_the_next_message() {
        let mut p = Parser::new(Role::Request, true);
        let mut log = Log::default();
        let t = Timestamp::default();
        p.feed(b"GET /a HTTP/1.1\r\nHo", t, &mut log);
        p.gap(30, t, &mut log);
        p.feed(b"tail of something\r\nGET /b HTTP/1.1\r\n\r\n", t, &mut log);
        assert_eq!(
            log.events,
            vec![
                "start Request @0",
                "broken Request bytes lost in the capture",
                "start Request @68",
                "head Request GET/b",
                "end Request 0",
            ]
        );
        assert_eq!(p.unparsed, 30 + 19);
    }

    #[test]
    fn hunting_mid_stream_finds_a_status_line() {
        let mut p = Parser::new(Role::Response, false);
        let mut log = Log::default();
        p.feed(
            b"dy of an earlier one\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
            Timestamp::default(),
            &mut log,
        );
        assert_eq!(log.events[1], "head Response 304");
        assert_eq!(p.unparsed, 22);
    }

    #[test]
    fn malformed_heads_are_broken_messages() {
        let log = feed_in_pieces(Role::Request, b"GET /HTTP/1.1\r\nHost: x\r\n\r\n", 100);
        assert_eq!(
            log.events,
            vec!["start Request @0", "broken Request malformed request head"]
        );
    }

    #[test]
    fn heads_over_the_limit_are_dropped() {
        let mut p = Parser::new(Role::Request, true);
        p.head_limit = 32;
        let mut log = Log::default();
        p.feed(
            b"GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
            Timestamp::default(),
            &mut log,
        );
        assert_eq!(log.events[1], "broken Request message head too large");
        assert!(p.buffered() <= 64);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Message-like bytes: heads, bodies, chunks, junk, in any order.
        fn http_ish() -> impl Strategy<Value = Vec<u8>> {
            let part = prop_oneof![
                Just(b"GET /a HTTP/1.1\r\n\r\n".to_vec()),
                Just(b"POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\n".to_vec()),
                Just(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()),
                Just(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
                Just(b"HTTP/1.0 200 OK\r\n\r\n".to_vec()),
                Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
                Just(b"fffffffffffffffffff\r\n".to_vec()),
                Just(b"\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..40),
            ];
            proptest::collection::vec(part, 0..12).prop_map(|v| v.concat())
        }

        /// Well-formed messages of one role, back to back.
        fn messages(response: bool) -> impl Strategy<Value = Vec<u8>> {
            let part = if response {
                prop_oneof![
                    Just(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec()),
                    Just(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
                    Just(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc".to_vec()),
                    Just(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
                ]
                .boxed()
            } else {
                prop_oneof![
                    Just(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
                    Just(b"POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec()),
                    Just(b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n".to_vec()),
                    Just(b"\r\n".to_vec()),
                ]
                .boxed()
            };
            proptest::collection::vec(part, 0..12).prop_map(|v| v.concat())
        }

        fn events(role: Role, bytes: &[u8], cuts: &[usize]) -> (Vec<String>, Parser) {
            let mut p = Parser::new(role, true);
            let mut log = Log::default();
            let mut at = 0;
            for &c in cuts {
                let c = c.min(bytes.len()).max(at);
                p.feed(&bytes[at..c], Timestamp::default(), &mut log);
                at = c;
            }
            p.feed(&bytes[at..], Timestamp::default(), &mut log);
            p.finish(&mut log);
            (log.events, p)
        }

        proptest! {
            /// However TCP cut a stream of messages, they are read alike.
            #[test]
            fn pieces_do_not_change_what_is_read(
                (response, bytes) in any::<bool>().prop_flat_map(|r| (Just(r), messages(r))),
                mut cuts in proptest::collection::vec(0usize..400, 0..20),
            ) {
                cuts.sort_unstable();
                let role = if response { Role::Response } else { Role::Request };
                let (whole, _) = events(role, &bytes, &[]);
                let (pieces, q) = events(role, &bytes, &cuts);
                prop_assert!(!whole.iter().any(|e| e.starts_with("broken")), "{:?}", whole);
                prop_assert_eq!(whole, pieces);
                prop_assert_eq!(q.offset, bytes.len() as u64);
            }

            /// Whatever the bytes and however they are cut: no panic, every
            /// byte accounted for, buffers bounded.
            #[test]
            fn any_bytes_in_any_pieces(
                bytes in http_ish(),
                mut cuts in proptest::collection::vec(0usize..400, 0..20),
                role in prop_oneof![Just(Role::Request), Just(Role::Response), Just(Role::Unknown)],
            ) {
                cuts.sort_unstable();
                let (_, p) = events(role, &bytes, &cuts);
                prop_assert_eq!(p.offset, bytes.len() as u64);
                prop_assert!(p.buffered() <= 2 * MAX_HEAD + MAX_LINE);
            }

            /// Gaps anywhere never panic, and the offset counts them.
            #[test]
            fn gaps_anywhere(bytes in http_ish(), gaps in proptest::collection::vec((0usize..300, 1u64..100), 0..6)) {
                let mut p = Parser::new(Role::Unknown, false);
                let mut log = Log::default();
                let mut at = 0;
                let mut lost = 0;
                for (cut, n) in gaps {
                    let c = cut.min(bytes.len()).max(at);
                    p.feed(&bytes[at..c], Timestamp::default(), &mut log);
                    p.gap(n, Timestamp::default(), &mut log);
                    lost += n;
                    at = c;
                }
                p.feed(&bytes[at..], Timestamp::default(), &mut log);
                p.finish(&mut log);
                prop_assert_eq!(p.offset, bytes.len() as u64 + lost);
            }
        }
    }
}
