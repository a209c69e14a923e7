//! Common and Combined Log Format, and the variants servers actually write.
//!
//! The layout is found by anchoring on the bracketed time, not by counting
//! fields: what stands before it is `[vhost] client... ident user` (the client
//! may be an X-Forwarded-For chain with spaces, or quoted), what follows is
//! `"request" status bytes ["referer" "user-agent"] [extras]`. Extras that
//! carry timing are understood: `0.123` (nginx `$request_time`, seconds),
//! `12ms` (Traefik), and a lone trailing integer (Apache `%D`, microseconds);
//! a quoted address list right after the user agent (nginx's `main` format's
//! `$http_x_forwarded_for`) names the originating client.

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
    match std::str::from_utf8(line) {
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
    x.duration = ms.or_else(secs).or_else(micros);
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
    }

    #[test]
    fn trailing_timings() {
        let x = p(
            r#"1.2.3.4 - - [10/Oct/2023:08:32:31 +0000] "GET / HTTP/1.1" 200 10 "-" "UA" 0.250 0.240"#,
        );
        assert_eq!(x.duration, Some(Duration::from_millis(250)));
        let x = p(
            r#"172.17.0.1 - - [08/Dec/2021:09:16:05 +0000] "GET /a HTTP/1.1" 200 414 "-" "-" 500 "test@docker" "http://172.17.0.3:80" 7ms"#,
        );
        assert_eq!(x.duration, Some(Duration::from_millis(7)));
        let x = p(
            r#"10.0.0.9 - - [10/Oct/2023:08:32:31 +0000] "GET / HTTP/1.1" 200 10 "-" "UA" "203.0.113.7, 10.0.0.1""#,
        );
        assert_eq!(x.client.as_deref(), Some("203.0.113.7"));
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
