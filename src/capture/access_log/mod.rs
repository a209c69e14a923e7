//! The access-log family: one line, one request.
//!
//! Each format is a [`LineParser`]; the line loop, the per-line skip
//! accounting and the request-line and URL helpers are shared here. Lines are
//! handled as bytes: logs carry escaped binary junk, and a line that is not
//! valid UTF-8 is still a request worth reading.

mod aws;
mod clf;
pub mod json;
mod log_format;
mod w3c;

use std::io::{self, BufRead};

pub use log_format::LogFormat;

use super::{CaptureError, Exchange, Format, InputStats, ReadOptions, Sink};

/// Lines longer than this are skipped (a log line is a few hundred bytes; a
/// megabyte without a newline is not a log).
const MAX_LINE: usize = 1 << 20;

/// What a parser made of one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The exchange given to the parser now holds the line's request.
    Exchange,
    /// Not a record: a comment, a directive, a header line.
    Ignore,
    /// A record that could not be used, and why.
    Skip(&'static str),
}

/// One access-log format.
pub trait LineParser: Send {
    /// Parses `line` into `x` (a reset exchange).
    fn parse(&mut self, line: &[u8], x: &mut Exchange) -> Parsed;
}

/// Parses one line into a fresh exchange (tests and detection).
pub fn parse_one(p: &mut dyn LineParser, line: &[u8]) -> Result<Exchange, Parsed> {
    let mut x = Exchange::default();
    match p.parse(line, &mut x) {
        Parsed::Exchange => Ok(x),
        other => Err(other),
    }
}

/// Whether lines of `format` can be parsed independently of each other (W3C
/// lines depend on the `#Fields` before them, JSON lines on the first
/// record's shape), so that chunks of a file can be parsed in parallel.
pub fn independent_lines(format: Format) -> bool {
    matches!(
        format,
        Format::Clf | Format::LogFormat | Format::Alb | Format::Elb
    )
}

/// The parser for a line format.
pub fn parser_for(format: Format, opts: &ReadOptions) -> Box<dyn LineParser> {
    match format {
        Format::Clf => Box::new(clf::Clf::default()),
        Format::LogFormat => Box::new(
            opts.log_format
                .clone()
                .unwrap_or_else(|| LogFormat::parse(log_format::COMBINED).expect("built-in")),
        ),
        Format::Alb => Box::new(aws::Alb),
        Format::Elb => Box::new(aws::Elb),
        Format::Cloudfront => Box::new(w3c::W3c::cloudfront()),
        Format::W3c => Box::new(w3c::W3c::default()),
        Format::Json => Box::new(json::JsonLines::new(opts.json_fields.clone())),
        Format::Har | Format::Pcap => unreachable!("not a line format"),
    }
}

/// How well `lines` fit `format` (for format detection): two points for a
/// line that parses, one for a line that has the format's structure but bad
/// content (a junk request line in a well-formed combined line), none for a
/// line of another structure — those skip with reasons starting "not ".
pub fn sniff(format: Format, lines: &[&[u8]]) -> usize {
    let mut p = parser_for(format, &ReadOptions::default());
    let mut x = Exchange::default();
    lines
        .iter()
        .map(|l| match p.parse(l, &mut x) {
            Parsed::Exchange => 2,
            Parsed::Skip(reason) if !reason.starts_with("not ") => 1,
            _ => 0,
        })
        .sum()
}

/// Reads a line-oriented log to the end.
pub fn read(
    format: Format,
    opts: &ReadOptions,
    path: &str,
    reader: &mut dyn BufRead,
    stats: &mut InputStats,
    sink: &mut dyn Sink,
) -> Result<(), CaptureError> {
    let mut parser = parser_for(format, opts);
    let mut lines = Lines::new(reader);
    let io_err = |source| CaptureError::Io {
        path: path.to_string(),
        error: source,
    };
    while let Some((n, line)) = lines.next().map_err(io_err)? {
        match line {
            Line::TooLong => {
                stats.records += 1;
                stats.skip(n, "line longer than 1 MiB");
            }
            Line::Text(l) => {
                let l = if n == 1 {
                    super::detect::strip_bom(l)
                } else {
                    l
                };
                one_line(&mut *parser, n, l, stats, sink)
            }
        }
    }
    Ok(())
}

/// Parses the lines of `chunk` (whole lines), numbering them from 1 (the
/// reader shifts the numbers to the chunk's place in the file); returns how
/// many lines it had. `file_start`: the chunk begins the file (a byte-order
/// mark may open it).
pub fn read_chunk(
    parser: &mut dyn LineParser,
    chunk: &[u8],
    file_start: bool,
    stats: &mut InputStats,
    sink: &mut dyn Sink,
) -> u64 {
    let mut n = 0;
    let mut start = 0;
    while start < chunk.len() {
        let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
        n += 1;
        let mut line = &chunk[start..end];
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if n == 1 && file_start {
            line = super::detect::strip_bom(line);
        }
        if line.len() > MAX_LINE {
            stats.records += 1;
            stats.skip(n, "line longer than 1 MiB");
        } else {
            one_line(parser, n, line, stats, sink);
        }
        start = end + 1;
    }
    n
}

fn one_line(
    parser: &mut dyn LineParser,
    n: u64,
    line: &[u8],
    stats: &mut InputStats,
    sink: &mut dyn Sink,
) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let x = sink.slot();
    x.reset();
    match parser.parse(line, x) {
        Parsed::Exchange => {
            stats.records += 1;
            stats.accepted += 1;
            sink.commit();
        }
        Parsed::Ignore => {}
        Parsed::Skip(reason) => {
            stats.records += 1;
            stats.skip(n, reason);
        }
    }
}

enum Line<'a> {
    Text(&'a [u8]),
    TooLong,
}

/// Splits a reader into lines (`\n` or `\r\n`), bounding each line's length.
struct Lines<'r> {
    reader: &'r mut dyn BufRead,
    buf: Vec<u8>,
    number: u64,
}

impl<'r> Lines<'r> {
    fn new(reader: &'r mut dyn BufRead) -> Self {
        Lines {
            reader,
            buf: Vec::with_capacity(4096),
            number: 0,
        }
    }

    fn next(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (chunk, used, end) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            if !too_long {
                if self.buf.len() + chunk.len() > MAX_LINE {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            self.reader.consume(used);
            if end {
                break;
            }
        }
        self.number += 1;
        if too_long {
            return Ok(Some((self.number, Line::TooLong)));
        }
        let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
        Ok(Some((self.number, Line::Text(line))))
    }
}

// ---- helpers shared by the formats ----

/// Bytes to text, replacing invalid UTF-8.
pub(crate) fn text(b: &[u8]) -> String {
    str_of(b).into_owned()
}

/// Bytes as text, borrowed when they are valid UTF-8 (the fast check first:
/// nearly every log field is).
pub(crate) fn str_of(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// `-` and empty mean "not recorded" in every log format.
pub(crate) fn present(b: &[u8]) -> Option<&[u8]> {
    (!b.is_empty() && b != b"-").then_some(b)
}

/// Splits `METHOD TARGET [PROTOCOL]`.
pub(crate) fn split_request_line(req: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    if req.is_empty() || req == b"-" {
        return Err("no request line");
    }
    // Words between runs of spaces: method, target, and the protocol if
    // any. (The iterator chain this replaces, split and filter, was 3% of an
    // import's instructions.)
    let mut rest = req;
    let mut word = || {
        let start = rest.iter().position(|&b| b != b' ')?;
        let len = memchr::memchr(b' ', &rest[start..]).unwrap_or(rest.len() - start);
        let w = &rest[start..start + len];
        rest = &rest[start + len..];
        Some(w)
    };
    let method = word().ok_or("no request line")?;
    let target = word().ok_or("malformed request line")?;
    if let Some(proto) = word()
        && (!proto.starts_with(b"HTTP/") || word().is_some())
    {
        return Err("malformed request line");
    }
    if !is_method(method) {
        return Err("malformed request line");
    }
    Ok((method, target))
}

/// An HTTP method token as servers log them: 1 to 24 upper-case letters,
/// digits, `-` or `_`.
pub(crate) fn is_method(m: &[u8]) -> bool {
    (1..=24).contains(&m.len())
        && m[0].is_ascii_uppercase()
        && m.iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// Fills scheme, host, path and query from a request target: origin form
/// (`/a?b`), absolute form (`http://h:80/a?b`), or a path missing its `/`.
pub(crate) fn set_target(x: &mut Exchange, target: &[u8]) -> Result<(), &'static str> {
    set_target_str(x, &str_of(target))
}

/// [`set_target`] for text already known to be UTF-8: one pass over it.
pub(crate) fn set_target_str(x: &mut Exchange, target: &str) -> Result<(), &'static str> {
    let b = target.as_bytes();
    if b.is_empty() {
        return Err("malformed request target");
    }
    // Without an early exit the check compiles to vector instructions; the
    // byte loop it replaces was 4% of an import's instructions.
    if b.iter()
        .fold(false, |bad, &c| bad | (c <= b' ') | (c == 0x7f))
    {
        return Err("malformed request target");
    }
    let end = memchr::memchr(b'#', b).unwrap_or(b.len());
    let query_at = memchr::memchr(b'?', &b[..end]);
    let mut path_at = 0;
    // Absolute form (`http://host/...`): a short scheme, then `://`.
    if b[0] != b'/'
        && let Some(i) = b[..b.len().min(9)].iter().position(|&c| c == b':')
        && i > 0
        && b[i..].starts_with(b"://")
        && b[..i].iter().all(u8::is_ascii_alphabetic)
    {
        x.set_scheme(&target[..i].to_ascii_lowercase());
        let host_end = b[i + 3..end]
            .iter()
            .position(|&c| c == b'/' || c == b'?')
            .map_or(end, |p| i + 3 + p);
        if host_end > i + 3 {
            x.set_host(&strip_port(&target[i + 3..host_end]).to_ascii_lowercase());
        }
        path_at = host_end;
    }
    let path_end = query_at.unwrap_or(end).max(path_at);
    let path = &target[path_at..path_end];
    x.path.clear();
    if !(path.starts_with('/') || path == "*") {
        x.path.push('/');
    }
    x.path.push_str(path);
    match query_at
        .map(|q| &target[q + 1..end])
        .filter(|q| !q.is_empty())
    {
        Some(q) => x.set_query(q),
        None => x.query = None,
    }
    Ok(())
}

/// `host:port` → `host`; `[::1]:80` → `::1`; a bare IPv6 stays whole.
pub(crate) fn strip_port(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match hostport.rfind(':') {
        Some(i) if hostport[..i].find(':').is_none() => &hostport[..i],
        _ => hostport,
    }
}

/// The originating client of a comma-separated address chain (the
/// X-Forwarded-For convention: client first), without a port.
pub(crate) fn first_client(list: &[u8]) -> Option<String> {
    first_client_bytes(list).map(text)
}

/// [`first_client`] without allocating.
pub(crate) fn first_client_bytes(list: &[u8]) -> Option<&[u8]> {
    let first = match memchr::memchr(b',', list) {
        Some(i) => &list[..i],
        None => list,
    };
    let first = first.trim_ascii();
    let first = first.strip_prefix(b"\"").unwrap_or(first);
    let first = first.strip_suffix(b"\"").unwrap_or(first).trim_ascii();
    let first = strip_port_bytes(first);
    (!first.is_empty() && first != b"-").then_some(first)
}

fn strip_port_bytes(hostport: &[u8]) -> &[u8] {
    if let Some(rest) = hostport.strip_prefix(b"[") {
        return match memchr::memchr(b']', rest) {
            Some(i) => &rest[..i],
            None => rest,
        };
    }
    match memchr::memrchr(b':', hostport) {
        Some(i) if memchr::memchr(b':', &hostport[..i]).is_none() => &hostport[..i],
        _ => hostport,
    }
}

/// Splits on spaces, keeping `"quoted strings"` (with `\"` escapes) whole,
/// their quotes removed. A quote only opens a field at its start.
pub(crate) fn tokens(line: &[u8]) -> smallvec::SmallVec<[&[u8]; 16]> {
    let mut out = smallvec::SmallVec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' {
            i += 1;
            continue;
        }
        if line[i] == b'"' {
            let start = i + 1;
            let end = closing_quote(line, start);
            out.push(&line[start..end]);
            i = end + 1;
        } else {
            let start = i;
            while i < line.len() && line[i] != b' ' {
                i += 1;
            }
            out.push(&line[start..i]);
        }
    }
    out
}

/// The index of the `"` closing a field that starts at `from` (or the end):
/// a quote not escaped by a backslash and followed by a space or the end.
pub(crate) fn closing_quote(line: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(off) = memchr::memchr(b'"', &line[i..]) {
        let q = i + off;
        let escaped = q > from && line[q - 1] == b'\\' && !(q > from + 1 && line[q - 2] == b'\\');
        if !escaped && (q + 1 == line.len() || line[q + 1] == b' ') {
            return q;
        }
        i = q + 1;
    }
    line.len()
}

pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

pub(crate) fn parse_status(b: &[u8]) -> Result<Option<u16>, &'static str> {
    match present(b) {
        None => Ok(None),
        Some(s) => match parse_u64(s) {
            // 0 is what some servers log for a request with no response.
            Some(0) => Ok(None),
            Some(n @ 100..=999) => Ok(Some(n as u16)),
            _ => Err("bad status code"),
        },
    }
}

/// For a server that writes a request's time when it has answered (nginx's
/// `$time_local`, IIS's and CloudFront's `time`, Caddy's `ts`): the time it
/// started, where the line says how long it took. Taken as the start, the
/// log time made think times short by the request's own duration (clamped
/// at 0 after slow requests) and moved arrivals late.
pub(crate) fn logged_at_end(x: &mut Exchange) {
    if let Some(d) = x.duration {
        x.time = x.time.saturating_sub(d);
    }
}

/// Seconds with a fraction (`0.123`) as a duration; negative (`-1`, ALB's
/// "no answer") and malformed values are `None`.
pub(crate) fn parse_secs(b: &[u8]) -> Option<std::time::Duration> {
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && (0.0..1e7).contains(&v)).then(|| std::time::Duration::from_secs_f64(v))
}

/// Percent-decodes for display values (user agents in CloudFront logs).
pub(crate) fn decode_percent(s: &[u8]) -> String {
    percent_encoding::percent_decode(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let mut x = Exchange::default();
        set_target(&mut x, b"http://www.Example.com:80/a/b?c=1#frag").unwrap();
        assert_eq!(x.host.as_deref(), Some("www.example.com"));
        assert_eq!(x.path, "/a/b");
        assert_eq!(x.query.as_deref(), Some("c=1"));
        let mut x = Exchange::default();
        set_target(&mut x, b"dolore/do").unwrap();
        assert_eq!(x.path, "/dolore/do");
        assert!(set_target(&mut x, b"/a\x01b").is_err());
    }

    #[test]
    fn request_lines() {
        assert!(split_request_line(b"GET / HTTP/1.1").is_ok());
        assert!(split_request_line(b"GET /").is_ok());
        assert_eq!(split_request_line(b"-"), Err("no request line"));
        assert!(split_request_line(b"hello").is_err());
        assert!(split_request_line(b"lv|'|'|VHJv HTTP/1.1").is_err());
        assert!(split_request_line(b"GET / HTTP/1.1 extra").is_err());
    }

    #[test]
    fn token_split() {
        let t = tokens(br#"a "b c" "d \" e" f"#);
        assert_eq!(t.to_vec(), vec![&b"a"[..], b"b c", br#"d \" e"#, b"f"]);
        assert_eq!(
            tokens(br#"x "unterminated"#).to_vec(),
            vec![&b"x"[..], b"unterminated"]
        );
    }

    #[test]
    fn clients() {
        assert_eq!(
            first_client(b"10.0.0.2, 10.0.0.1").as_deref(),
            Some("10.0.0.2")
        );
        assert_eq!(
            first_client(b"192.168.1.10:44740").as_deref(),
            Some("192.168.1.10")
        );
        assert_eq!(
            first_client(b"2a02:cf40::1").as_deref(),
            Some("2a02:cf40::1")
        );
        assert_eq!(first_client(b"[::1]:80").as_deref(), Some("::1"));
        assert_eq!(first_client(b"10.0.0.9").as_deref(), Some("10.0.0.9"));
        assert_eq!(first_client(b" 10.0.0.9\t").as_deref(), Some("10.0.0.9"));
        assert_eq!(first_client(b"\"10.0.0.9\"").as_deref(), Some("10.0.0.9"));
        assert_eq!(first_client(b"-"), None);
        assert_eq!(first_client(b""), None);
        assert_eq!(first_client(b" - "), None);
    }
}
