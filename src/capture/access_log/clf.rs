//! Common and Combined Log Format, and the variants servers actually write.
//!
//! The layout is found by anchoring on the bracketed time, not by counting
//! fields: what stands before it is `[vhost] client... ident user` (the client
//! may be an X-Forwarded-For chain with spaces, or quoted), what follows is
//! `"request" status bytes ["referer" "user-agent"] [extras]`. Extras that
//! carry timing are understood: `0.123` (nginx `$request_time`, seconds),
//! `12ms` (Traefik), and a lone trailing integer (Apache `%D`, microseconds).
//! nginx logs a request when it has answered, so with `$request_time` the
//! start is the logged time less the duration; Apache's and Traefik's time
//! is already the start. A quoted address list right after the user agent
//! (nginx's `main` format's `$http_x_forwarded_for`) names the originating
//! client.

use std::time::Duration;

use super::{
    LineParser, Parsed, closing_quote, first_client, first_client_bytes, parse_secs, parse_status,
    parse_u64, present, set_target_str, split_request_line, str_of, strip_port, text, tokens,
};
use crate::capture::Exchange;
use crate::model::Timestamp;
use crate::model::time::ClfDay;

/// The combined-log parser; it remembers the last day it parsed.
#[derive(Default)]
pub struct Clf(ClfDay);

impl LineParser for Clf {
    fn parse(&mut self, line: &[u8], x: &mut Exchange) -> Parsed {
        match parse_line(line, x, &mut self.0) {
            Ok(()) => Parsed::Exchange,
            Err(reason) => Parsed::Skip(reason),
        }
    }
}

fn parse_line(line: &[u8], x: &mut Exchange, day: &mut ClfDay) -> Result<(), &'static str> {
    // Validate once; fields are then slices of text, not re-checked.
    // `simdutf8` checks a typical line in a fraction of the instructions
    // `std::str::from_utf8` takes (2% of an import's, in callgrind).
    match simdutf8::basic::from_utf8(line) {
        Ok(s) => parse_str(s, x, day),
        Err(_) => parse_str(&String::from_utf8_lossy(line), x, day),
    }
}

/// The first position at or after `from` where `c` is, or the end.
fn find(b: &[u8], from: usize, c: u8) -> usize {
    b[from.min(b.len())..]
        .iter()
        .position(|&x| x == c)
        .map_or(b.len(), |p| from + p)
}

fn parse_str(s: &str, x: &mut Exchange, day: &mut ClfDay) -> Result<(), &'static str> {
    if fast(s, x, day) {
        return Ok(());
    }
    general(s, x, day)
}

/// Bytes that end or complicate a request target in [`fast`]: a space or
/// control byte, DEL, a quote or backslash (escapes), `?` and `#`.
const TARGET_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c <= b' ' as usize
            || c == 0x7f
            || c == b'"' as usize
            || c == b'\\' as usize
            || c == b'?' as usize
            || c == b'#' as usize;
        c += 1;
    }
    t
};

/// Bytes that end a client, ident or user word on the fast path: spaces
/// and control bytes, and the commas, quotes and brackets of forms the
/// general parser takes (a table: the chain of comparisons it replaces
/// cost twice the instructions per byte).
const WORD_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c <= b' ' as usize
            || c == b',' as usize
            || c == b'"' as usize
            || c == b'[' as usize
            || c == b']' as usize;
        c += 1;
    }
    t
};

/// The shape nearly every line has, in one pass:
/// `client ident user [time] "METHOD /target HTTP/x" status bytes` and
/// optionally `"referer" "user-agent" [extras]`, single spaces, an origin-form
/// target, nothing escaped. Anything else returns false with `x` untouched
/// and is parsed by [`general`], which gives the same result for these lines
/// (a test holds the two to that). The general parser's separate scans,
/// token vectors and short `memchr` calls were a third of an import's
/// instructions.
fn fast(s: &str, x: &mut Exchange, day: &mut ClfDay) -> bool {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = 0;
    // client, ident, user: no commas, quotes or brackets (chains, quoted
    // lists and vhosts go the general way), and no tabs or other control
    // bytes (the general parser trims them off a client).
    let mut words = [(0, 0); 3];
    for w in &mut words {
        let start = i;
        while i < n && !WORD_STOP[b[i] as usize] {
            i += 1;
        }
        if i == start || i == n || b[i] != b' ' {
            return false;
        }
        *w = (start, i);
        i += 1;
    }
    if b.get(i) != Some(&b'[') {
        return false;
    }
    let open = i + 1;
    let Some(close) = b[open..].iter().position(|&c| c == b']').map(|p| open + p) else {
        return false;
    };
    let Some(time) = Timestamp::parse_clf_cached(&b[open..close], day) else {
        return false;
    };
    i = close + 1;
    if !b[i..].starts_with(b" \"") {
        return false;
    }
    i += 2;
    // The request line: method, origin-form target, protocol.
    let method = i;
    while i < n
        && (b[i].is_ascii_uppercase() || b[i].is_ascii_digit() || b[i] == b'-' || b[i] == b'_')
    {
        i += 1;
    }
    let method = (method, i);
    if !(1..=24).contains(&(method.1 - method.0))
        || !b[method.0].is_ascii_uppercase()
        || b.get(i) != Some(&b' ')
        || b.get(i + 1) != Some(&b'/')
    {
        return false;
    }
    i += 1;
    let target = i;
    let (mut query, mut fragment) = (None, None);
    loop {
        while i < n && !TARGET_STOP[b[i] as usize] {
            i += 1;
        }
        match b.get(i) {
            Some(b'?') => {
                if query.is_none() && fragment.is_none() {
                    query = Some(i);
                }
            }
            Some(b'#') => {
                fragment = fragment.or(Some(i));
            }
            Some(b' ') => break,
            _ => return false,
        }
        i += 1;
    }
    let target = (target, i);
    i += 1;
    if !b[i..].starts_with(b"HTTP/") {
        return false;
    }
    while i < n && b[i] > b' ' && b[i] != b'"' && b[i] != b'\\' {
        i += 1;
    }
    if !b[i..].starts_with(b"\" ") {
        return false;
    }
    i += 2;
    // Status: three digits, the first 1 to 9 (0 and `-` go the general way).
    let Some(&[s0, s1, s2, b' ']) = b.get(i..i + 4) else {
        return false;
    };
    if !(b'1'..=b'9').contains(&s0) || !s1.is_ascii_digit() || !s2.is_ascii_digit() {
        return false;
    }
    let status = u16::from(s0 - b'0') * 100 + u16::from(s1 - b'0') * 10 + u16::from(s2 - b'0');
    i += 4;
    // The byte count, summed as its digits are found (at most 19 fit).
    let bytes_at = i;
    let mut count = 0u64;
    while i < n && b[i].is_ascii_digit() {
        count = count.wrapping_mul(10).wrapping_add(u64::from(b[i] - b'0'));
        i += 1;
    }
    let bytes = match i - bytes_at {
        0 if b.get(i) == Some(&b'-') => {
            i += 1;
            None
        }
        1..=19 => Some(count),
        _ => return false,
    };
    // Then the end (Common), or `"referer" "user-agent"`.
    let mut ua = None;
    if i < n {
        if !b[i..].starts_with(b" \"") {
            return false;
        }
        let referer_end = match memchr::memchr2(b'"', b'\\', &b[i + 2..]) {
            Some(p) if b[i + 2 + p] == b'"' => i + 2 + p,
            _ => return false,
        };
        i = referer_end + 1;
        if !b[i..].starts_with(b" \"") {
            return false;
        }
        let ua_start = i + 2;
        let ua_end = match memchr::memchr2(b'"', b'\\', &b[ua_start..]) {
            Some(p) if b[ua_start + p] == b'"' => ua_start + p,
            _ => return false,
        };
        i = ua_end + 1;
        if i < n && b[i] != b' ' {
            return false;
        }
        ua = Some((ua_start, ua_end));
    }
    // Everything is known to fit: fill the exchange.
    x.time = time;
    let field = |(a, z): (usize, usize)| &s[a..z];
    // Words are non-empty here, so only `-` means "not recorded".
    let present = |v: &str| v != "-";
    let user = field(words[2]);
    if present(user) {
        x.set_user(user);
    }
    // The words hold no spaces, commas, quotes or brackets, so only a port
    // can need cutting: `first_client_bytes` for every line cost 170
    // instructions more (callgrind), for nothing to cut.
    let client = field(words[0]);
    if client.contains(':') {
        match first_client_bytes(client.as_bytes()) {
            Some(c) => x.set_client(&str_of(c)),
            None => x.client = None,
        }
    } else if present(client) {
        x.set_client(client);
    }
    x.method.push_str(field(method));
    let path_end = query.or(fragment).unwrap_or(target.1);
    x.path.clear();
    x.path.push_str(&s[target.0..path_end]);
    match query {
        Some(q) if q + 1 < fragment.unwrap_or(target.1) => {
            x.set_query(&s[q + 1..fragment.unwrap_or(target.1)]);
        }
        _ => x.query = None,
    }
    x.status = Some(status);
    x.response_bytes = bytes;
    if let Some(ua) = ua.map(field)
        && !ua.is_empty()
        && present(ua)
    {
        x.push_header("user-agent", ua);
    }
    if i < n {
        extras_into(&quoted_tokens(&b[i..]), x);
    }
    true
}

fn general(s: &str, x: &mut Exchange, day: &mut ClfDay) -> Result<(), &'static str> {
    let b = s.as_bytes();
    // The time: `[` after a space.
    let mut open = find(b, 1, b'[');
    while open < b.len() && b[open - 1] != b' ' {
        open = find(b, open + 1, b'[');
    }
    if open >= b.len() {
        return Err("not a common/combined log line");
    }
    let close = find(b, open + 1, b']');
    if close >= b.len() {
        return Err("not a common/combined log line");
    }
    x.time = Timestamp::parse_clf_cached(&b[open + 1..close], day)
        .ok_or("not a common/combined log line (bad time)")?;
    prefix(&b[..open - 1], x)?;
    if !b[close + 1..].starts_with(b" \"") {
        return Err("not a common/combined log line");
    }
    let req_start = close + 3;
    let req_end = closing_quote(b, req_start);
    let (method, target) = split_request_line(&b[req_start..req_end])?;
    let off = |part: &[u8]| part.as_ptr() as usize - b.as_ptr() as usize;
    x.method
        .push_str(&s[off(method)..off(method) + method.len()]);
    set_target_str(x, &s[off(target)..off(target) + target.len()])?;

    let after = b.get(req_end + 1..).unwrap_or_default();
    let fields = quoted_tokens(after);
    let status = fields.first().ok_or("no status")?;
    x.status = parse_status(status.0)?;
    x.response_bytes = match fields.get(1) {
        Some((f, _)) => present(f)
            .map(|f| parse_u64(f).ok_or("bad byte count"))
            .transpose()?,
        None => None,
    };
    let rest = fields.get(2..).unwrap_or_default();
    // Combined adds "referer" "user-agent": only quoted fields count as such.
    let combined = rest.len() >= 2 && rest[0].1 && rest[1].1;
    let extras = if combined { &rest[2..] } else { rest };
    // The referer is not kept: it names the recorded site, and nothing
    // downstream uses it.
    if combined && let Some(ua) = present(rest[1].0) {
        x.push_header("user-agent", &s[off(ua)..off(ua) + ua.len()]);
    }
    extras_into(extras, x);
    Ok(())
}

/// Space-separated fields, `"quoted"` ones whole and marked as quoted.
fn quoted_tokens(line: &[u8]) -> smallvec::SmallVec<[(&[u8], bool); 8]> {
    let mut out = smallvec::SmallVec::new();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'"' => {
                let end = closing_quote(line, i + 1);
                out.push((&line[i + 1..end], true));
                i = end + 1;
            }
            _ => {
                let end = find(line, i, b' ');
                out.push((&line[i..end], false));
                i = end;
            }
        }
    }
    out
}

/// `[vhost] client-or-chain... ident user` before the time.
fn prefix(p: &[u8], x: &mut Exchange) -> Result<(), &'static str> {
    let groups = prefix_groups(p);
    if groups.len() < 3 {
        return Err("not a common/combined log line");
    }
    let (addrs, id) = groups.split_at(groups.len() - 2);
    if let Some(user) = present(id[1]) {
        x.set_user(&str_of(user));
    }
    let client = match addrs {
        [first, rest @ ..]
            if addrs.len() > 2 || (addrs.len() == 2 && !looks_like_address(first)) =>
        {
            x.set_host(&strip_port(&text(first)).to_ascii_lowercase());
            rest[0]
        }
        [first, ..] => first,
        [] => unreachable!("at least three groups"),
    };
    match first_client_bytes(client) {
        Some(c) => x.set_client(&str_of(c)),
        None => x.client = None,
    }
    Ok(())
}

/// Space-separated groups, where `a, b, c` (a comma chain) and `"..."` are one.
fn prefix_groups(p: &[u8]) -> smallvec::SmallVec<[&[u8]; 8]> {
    let toks = tokens(p);
    let mut out: smallvec::SmallVec<[&[u8]; 8]> = smallvec::SmallVec::new();
    let mut i = 0;
    while i < toks.len() {
        let start = toks[i];
        let mut j = i;
        while toks[j].ends_with(b",") && j + 1 < toks.len() {
            j += 1;
        }
        if j == i {
            out.push(start);
        } else {
            // Re-slice the original bytes from the first token to the last.
            let begin = start.as_ptr() as usize - p.as_ptr() as usize;
            let last = toks[j];
            let end = last.as_ptr() as usize - p.as_ptr() as usize + last.len();
            out.push(&p[begin..end]);
        }
        i = j + 1;
    }
    out
}

/// An IP address, an address chain, `localhost` or `unix:`: things a client
/// field holds and a virtual host does not.
fn looks_like_address(t: &[u8]) -> bool {
    t.contains(&b',')
        || t == b"unix:"
        || t == b"localhost"
        || text(t).parse::<std::net::IpAddr>().is_ok()
}

fn extras_into(extras: &[(&[u8], bool)], x: &mut Exchange) {
    if extras.is_empty() {
        return;
    }
    if let Some((first, true)) = extras.first()
        && looks_like_address(first.split(|&b| b == b',').next().unwrap_or_default())
    {
        x.client = first_client(first).or(x.client.take());
    }
    let ms = extras.iter().find_map(|(t, _)| {
        let n = t.strip_suffix(b"ms")?;
        parse_secs(n).map(|d| d / 1000)
    });
    let secs = || {
        extras
            .iter()
            .filter(|(t, _)| t.contains(&b'.'))
            .find_map(|(t, _)| parse_secs(t))
    };
    let micros = || match extras {
        [(only, false)] => parse_u64(only).map(Duration::from_micros),
        _ => None,
    };
    // nginx (`$request_time`) and gunicorn write the time a request ended;
    // Apache's `%t` (with `%D`) and Traefik's are when it was received.
    x.duration = ms;
    if x.duration.is_none() {
        x.duration = secs();
        if x.duration.is_some() {
            super::logged_at_end(x);
        } else {
            x.duration = micros();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Exchange {
        let mut x = Exchange::default();
        parse_line(line.as_bytes(), &mut x, &mut ClfDay::default())
            .unwrap_or_else(|e| panic!("{e}: {line}"));
        x
    }

    fn fails(line: &[u8]) -> bool {
        parse_line(line, &mut Exchange::default(), &mut ClfDay::default()).is_err()
    }

    #[test]
    fn combined() {
        let x = p(
            r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/x.png?a=1 HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (X)""#,
        );
        assert_eq!(x.method, "GET");
        assert_eq!(x.path, "/presentations/x.png");
        assert_eq!(x.query.as_deref(), Some("a=1"));
        assert_eq!(x.status, Some(200));
        assert_eq!(x.response_bytes, Some(203023));
        assert_eq!(x.client.as_deref(), Some("83.149.9.216"));
        assert_eq!(x.header("user-agent"), Some("Mozilla/5.0 (X)"));
        assert_eq!(x.time.to_rfc3339(), "2015-05-17T10:05:03Z");
    }

    #[test]
    fn common_with_dash_bytes() {
        let x = p(r#"::1 - - [26/Dec/2016:16:16:29 +0200] "GET /favicon.ico HTTP/1.1" 404 -"#);
        assert_eq!(x.client.as_deref(), Some("::1"));
        assert_eq!(x.response_bytes, None);
        assert!(fails(br#"::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 -"#));
    }

    #[test]
    fn vhost_and_chains() {
        let x = p(
            r#"example.com 10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "UA""#,
        );
        assert_eq!(x.host.as_deref(), Some("example.com"));
        assert_eq!(x.client.as_deref(), Some("10.0.0.2"));
        let x = p(
            r#"example.com:80 "10.5.102.222, 175.16.199.1, 204.246.1.1" 10.2.1.185 - - [22/Jan/2016:13:18:29 +0000] "GET /assets/xxxx?q=100 HTTP/1.1" 200 25507 "-" "Amazon CloudFront""#,
        );
        assert_eq!(x.host.as_deref(), Some("example.com"));
        assert_eq!(x.client.as_deref(), Some("10.5.102.222"));
        let x = p(
            r#"localhost:443 178.20.184.42 1j0vhgd jsmith [26/Jul/2023:00:01:26 -0700] "GET /secure/R.jspa?x=1 HTTP/2.0" 200 17163 "-" "Mozilla/5.0" 116075"#,
        );
        assert_eq!(x.host.as_deref(), Some("localhost"));
        assert_eq!(x.user.as_deref(), Some("jsmith"));
        assert_eq!(x.duration, Some(Duration::from_micros(116075)));
        // Apache's %t is when the request was received.
        assert_eq!(x.time.to_rfc3339(), "2023-07-26T07:01:26Z");
    }

    #[test]
    fn trailing_timings() {
        let x = p(
            r#"1.2.3.4 - - [10/Oct/2023:08:32:31 +0000] "GET / HTTP/1.1" 200 10 "-" "UA" 0.250 0.240"#,
        );
        assert_eq!(x.duration, Some(Duration::from_millis(250)));
        // nginx logs when it has answered: the request started 250 ms
        // before the logged time.
        assert_eq!(x.time.to_rfc3339(), "2023-10-10T08:32:30.750000Z");
        let x = p(
            r#"172.17.0.1 - - [08/Dec/2021:09:16:05 +0000] "GET /a HTTP/1.1" 200 414 "-" "-" 500 "test@docker" "http://172.17.0.3:80" 7ms"#,
        );
        assert_eq!(x.duration, Some(Duration::from_millis(7)));
        // Traefik's time is when the request started.
        assert_eq!(x.time.to_rfc3339(), "2021-12-08T09:16:05Z");
        let x = p(
            r#"10.0.0.9 - - [10/Oct/2023:08:32:31 +0000] "GET / HTTP/1.1" 200 10 "-" "UA" "203.0.113.7, 10.0.0.1""#,
        );
        assert_eq!(x.client.as_deref(), Some("203.0.113.7"));
    }

    /// Every line the fast path takes, the general parser reads the same
    /// way; a line it does not take leaves the exchange untouched.
    #[test]
    fn fast_path_agrees_with_general() {
        let clients = [
            "1.2.3.4",
            "::1",
            "10.0.0.1:5678",
            "-",
            "[::1]:80",
            "1.2.3.4,",
            "h 1.2.3.4",
            "1.2.3.4\t",
            "\x0c",
        ];
        let users = ["-", "jsmith", "a\"b", ""];
        let times = [
            "[10/Oct/2000:13:55:36 -0700]",
            "[10/Oct/2000:13:55:36]",
            "[10/Oct/2000:13:55:36 +0000 ]",
            "[bad]",
        ];
        let requests = [
            "GET /a HTTP/1.1",
            "GET /a/b;c=1?b=1&c HTTP/1.1",
            "GET /a? HTTP/1.1",
            "GET /a?#f HTTP/1.0",
            "GET /a#f?x HTTP/1.1",
            "GET /a?b#f HTTP/2.0",
            "GET /caf\u{e9}/\u{1F600}?q=\u{e9} HTTP/1.1",
            r#"POST /x\"y HTTP/1.1"#,
            "get /a HTTP/1.1",
            "GET http://h:80/a?x HTTP/1.1",
            "GET a HTTP/1.1",
            "GET /a",
            "GET  /a HTTP/1.1",
            "GET /a HTTP/1.1 x",
            "GET /a\x01 HTTP/1.1",
            "-",
            "",
        ];
        let tails = [
            "200 12",
            "200 -",
            "200 -x",
            r#"404 0 "-" "-""#,
            r#"200 5 "http://r/" "UA/1 (x)""#,
            r#"200 5 "-" """#,
            r#"200 5 "-" "UA \"q\"""#,
            r#"200 5 "-" "UA" 0.250 0.1"#,
            r#"200 5 "-" "UA" "203.0.113.7, 10.0.0.1""#,
            r#"200 5 "-" "UA" 7ms"#,
            r#"200 5 "-" "UA"x"#,
            r#"200 5 "a"b" "c""#,
            r#"200 5 "-""#,
            "000 5",
            "099 5",
            "- -",
            "abc 1",
            "200 12 0.5",
            "200 99999999999999999999",
            "200 9999999999999999999",
        ];
        let (mut taken, mut all) = (0, 0);
        for c in clients {
            for u in users {
                for t in times {
                    for r in requests {
                        for tail in tails {
                            let line = format!(r#"{c} - {u} {t} "{r}" {tail}"#);
                            let mut g = Exchange::default();
                            let general = general(&line, &mut g, &mut ClfDay::default());
                            let mut f = Exchange::default();
                            all += 1;
                            if fast(&line, &mut f, &mut ClfDay::default()) {
                                taken += 1;
                                assert_eq!(general, Ok(()), "{line}");
                                assert_eq!(f, g, "{line}");
                            } else {
                                assert_eq!(f, Exchange::default(), "{line}");
                            }
                        }
                    }
                }
            }
        }
        // 4 clients × 2 users × 2 times × 7 requests × 9 tails are plain.
        assert_eq!(taken, 1008, "the fast path took {taken} of {all} lines");
    }

    #[test]
    fn junk_is_skipped() {
        for l in [
            &b"hello"[..],
            br#"1.2.3.4 - - [29/Jul/2023:10:26:06 -0700] "Gh0st\xAD\x00" 400 157 "-" "-""#,
            br#"1.2.3.4 - - [29/Jul/2023:10:26:06 -0700] "" 400 0 "-" "-""#,
            br#"1.2.3.4 - - [bad time] "GET / HTTP/1.1" 200 1"#,
            br#"1.2.3.4 - - [29/Jul/2023:10:26:06 -0700] "GET / HTTP/1.1" abc 1"#,
        ] {
            assert!(fails(l), "{}", String::from_utf8_lossy(l));
        }
    }
}
