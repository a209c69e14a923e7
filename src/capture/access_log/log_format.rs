//! User-given log formats: an nginx `log_format` string (`$remote_addr -
//! $remote_user [$time_local] "$request" ...`) or an Apache `LogFormat` string
//! (`%h %l %u %t \"%r\" %>s %b`).
//!
//! The string is compiled once into literals and fields. A line is matched
//! left to right: each field runs up to the next literal, the last one to the
//! end of the line. nginx escapes `"` inside values as `\x22`, so quoted fields
//! cannot end early.

use std::fmt;
use std::time::Duration;

use super::{
    LineParser, Parsed, first_client, parse_secs, parse_status, parse_u64, present, set_target,
    split_request_line, strip_port, text,
};
use crate::capture::Exchange;
use crate::model::Timestamp;

pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// A compiled log format.
#[derive(Clone, Debug, PartialEq)]
pub struct LogFormat {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Literal(Vec<u8>),
    Field(Field),
}

#[derive(Clone, Debug, PartialEq)]
enum Field {
    RemoteAddr,
    ForwardedFor,
    RemoteUser,
    /// nginx's `$time_local`, `$time_iso8601` and `$msec`: when the request
    /// was logged, that is when it ended.
    TimeLocal,
    TimeIso,
    Msec,
    /// Apache's `%t`: when the request was received.
    Received,
    Request,
    Method,
    RequestUri,
    Path,
    Args,
    Status,
    Bytes,
    RequestTimeSecs,
    Micros,
    WholeSecs,
    Host,
    Scheme,
    Header(String),
    Cookie(String),
    Ignored,
}

/// A `--log-format` string that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--log-format: {message} (at character {position})")]
pub struct LogFormatError {
    pub message: String,
    pub position: usize,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl LogFormat {
    /// Compiles an nginx (`$var`) or Apache (`%x`) format string.
    pub fn parse(source: &str) -> Result<LogFormat, LogFormatError> {
        let segments = if source.contains('$') {
            compile_nginx(source)?
        } else {
            compile_apache(source)?
        };
        let has = |want: &[Field]| {
            segments
                .iter()
                .any(|s| matches!(s, Segment::Field(f) if want.contains(f)))
        };
        let err = |message: &str| LogFormatError {
            message: message.to_string(),
            position: 0,
        };
        if !has(&[
            Field::TimeLocal,
            Field::TimeIso,
            Field::Msec,
            Field::Received,
        ]) {
            return Err(err(
                "no time field ($time_local, $time_iso8601, $msec or %t)",
            ));
        }
        if !(has(&[Field::Request])
            || (has(&[Field::Method]) && has(&[Field::RequestUri, Field::Path])))
        {
            return Err(err(
                "no request field ($request, or $request_method with $request_uri or $uri)",
            ));
        }
        // Two fields in a row cannot be told apart.
        for (i, w) in segments.windows(2).enumerate() {
            if matches!(w, [Segment::Field(_), Segment::Field(_)]) {
                return Err(LogFormatError {
                    message: "two fields with nothing between them".into(),
                    position: i,
                });
            }
        }
        Ok(LogFormat {
            source: source.to_string(),
            segments,
        })
    }

    fn fields<'a>(&self, line: &'a [u8]) -> Option<Vec<(&Field, &'a [u8])>> {
        let mut out = Vec::with_capacity(self.segments.len());
        let mut pos = 0;
        let mut segs = self.segments.iter().peekable();
        while let Some(seg) = segs.next() {
            match seg {
                Segment::Literal(l) => {
                    if !line[pos..].starts_with(l) {
                        return None;
                    }
                    pos += l.len();
                }
                Segment::Field(f) => {
                    let end = match segs.peek() {
                        Some(Segment::Literal(l)) => pos + memchr::memmem::find(&line[pos..], l)?,
                        _ => line.len(),
                    };
                    out.push((f, &line[pos..end]));
                    pos = end;
                }
            }
        }
        Some(out)
    }
}

impl LineParser for LogFormat {
    fn parse(&mut self, line: &[u8], out: &mut Exchange) -> Parsed {
        let Some(fields) = self.fields(line) else {
            return Parsed::Skip("line does not match the log format");
        };
        match exchange(&fields) {
            Ok(x) => {
                *out = x;
                Parsed::Exchange
            }
            Err(r) => Parsed::Skip(r),
        }
    }
}

fn exchange(fields: &[(&Field, &[u8])]) -> Result<Exchange, &'static str> {
    let mut x = Exchange::default();
    let mut time = None;
    let mut logged_at_end = false;
    let (mut request, mut method, mut uri, mut args) = (None, None, None, None);
    let mut forwarded = None;
    let mut cookies = Vec::new();
    for &(field, raw) in fields {
        let Some(v) = present(raw) else { continue };
        match field {
            Field::RemoteAddr => x.client = first_client(v),
            Field::ForwardedFor => forwarded = first_client(v),
            Field::RemoteUser => x.user = Some(text(v)),
            Field::TimeLocal => {
                time = Timestamp::parse_clf(v);
                logged_at_end = true;
            }
            Field::Received => time = Timestamp::parse_clf(v),
            Field::TimeIso => {
                time = Timestamp::parse_iso8601(&text(v));
                logged_at_end = true;
            }
            Field::Msec => {
                // Seconds since the epoch: not a duration (parse_secs
                // stops at 1e7 s, which refused every real $msec).
                time = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .and_then(Timestamp::from_secs_f64);
                logged_at_end = true;
            }
            Field::Request => request = Some(v),
            Field::Method => method = Some(v),
            Field::RequestUri | Field::Path => uri = Some(v),
            Field::Args => args = Some(v.strip_prefix(b"?").unwrap_or(v)),
            Field::Status => x.status = parse_status(v)?,
            Field::Bytes => x.response_bytes = parse_u64(v),
            Field::RequestTimeSecs => x.duration = parse_secs(v),
            Field::Micros => x.duration = parse_u64(v).map(Duration::from_micros),
            Field::WholeSecs => x.duration = x.duration.or(parse_u64(v).map(Duration::from_secs)),
            Field::Host => x.host = Some(strip_port(&text(v)).to_ascii_lowercase()),
            Field::Scheme => x.scheme = Some(text(v)),
            Field::Header(h) => x.headers.push((h.clone(), text(v))),
            Field::Cookie(c) => cookies.push(format!("{c}={}", text(v))),
            Field::Ignored => {}
        }
    }
    x.time = time.ok_or("bad timestamp")?;
    if logged_at_end {
        super::logged_at_end(&mut x);
    }
    if let Some(f) = forwarded {
        x.client = Some(f);
    }
    if !cookies.is_empty() {
        x.headers.push(("cookie".into(), cookies.join("; ")));
    }
    let (m, target) = match (request, method, uri) {
        (Some(r), _, _) => split_request_line(r)?,
        (None, Some(m), Some(u)) if super::is_method(m) => (m, u),
        _ => return Err("no request"),
    };
    x.method = text(m);
    set_target(&mut x, target)?;
    if let Some(a) = args.filter(|a| !a.is_empty())
        && x.query.is_none()
    {
        x.query = Some(text(a));
    }
    Ok(x)
}

fn nginx_field(name: &str) -> Field {
    match name {
        "remote_addr" | "realip_remote_addr" => Field::RemoteAddr,
        "http_x_forwarded_for" | "proxy_add_x_forwarded_for" => Field::ForwardedFor,
        "remote_user" => Field::RemoteUser,
        "time_local" => Field::TimeLocal,
        "time_iso8601" => Field::TimeIso,
        "msec" => Field::Msec,
        "request" => Field::Request,
        "request_method" => Field::Method,
        "request_uri" => Field::RequestUri,
        "uri" | "document_uri" => Field::Path,
        "args" | "query_string" => Field::Args,
        "status" => Field::Status,
        "body_bytes_sent" | "bytes_sent" => Field::Bytes,
        "request_time" => Field::RequestTimeSecs,
        "host" | "http_host" | "server_name" => Field::Host,
        "scheme" => Field::Scheme,
        _ => {
            if let Some(h) = name.strip_prefix("http_") {
                Field::Header(h.replace('_', "-"))
            } else if let Some(c) = name.strip_prefix("cookie_") {
                Field::Cookie(c.to_string())
            } else {
                Field::Ignored
            }
        }
    }
}

fn compile_nginx(src: &str) -> Result<Vec<Segment>, LogFormatError> {
    let b = src.as_bytes();
    let mut segs = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            lit.push(b[i]);
            i += 1;
            continue;
        }
        let (name, next) = if b.get(i + 1) == Some(&b'{') {
            let end = src[i + 2..].find('}').ok_or(LogFormatError {
                message: "unclosed ${".into(),
                position: i,
            })?;
            (&src[i + 2..i + 2 + end], i + 3 + end)
        } else {
            let len = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            (&src[i + 1..i + 1 + len], i + 1 + len)
        };
        if name.is_empty() {
            return Err(LogFormatError {
                message: "`$` without a variable name".into(),
                position: i,
            });
        }
        if !lit.is_empty() {
            segs.push(Segment::Literal(std::mem::take(&mut lit)));
        }
        segs.push(Segment::Field(nginx_field(&name.to_ascii_lowercase())));
        i = next;
    }
    if !lit.is_empty() {
        segs.push(Segment::Literal(lit));
    }
    Ok(segs)
}

fn compile_apache(src: &str) -> Result<Vec<Segment>, LogFormatError> {
    let b = src.as_bytes();
    let mut segs = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    let flush = |lit: &mut Vec<u8>, segs: &mut Vec<Segment>| {
        if !lit.is_empty() {
            segs.push(Segment::Literal(std::mem::take(lit)));
        }
    };
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => {
                lit.push(match b[i + 1] {
                    b't' => b'\t',
                    b'n' => b'\n',
                    c => c,
                });
                i += 2;
            }
            b'%' if b.get(i + 1) == Some(&b'%') => {
                lit.push(b'%');
                i += 2;
            }
            b'%' => {
                let start = i;
                i += 1;
                // Modifiers: `>`/`<`, status conditions like `!200,304`.
                while i < b.len() && matches!(b[i], b'<' | b'>' | b'!' | b',' | b'0'..=b'9') {
                    i += 1;
                }
                let mut arg = None;
                if b.get(i) == Some(&b'{') {
                    let end = src[i..].find('}').ok_or(LogFormatError {
                        message: "unclosed %{".into(),
                        position: start,
                    })?;
                    arg = Some(src[i + 1..i + end].to_ascii_lowercase());
                    i += end + 1;
                }
                let Some(&d) = b.get(i) else {
                    return Err(LogFormatError {
                        message: "`%` at the end".into(),
                        position: start,
                    });
                };
                i += 1;
                if d == b't' && arg.is_none() {
                    // %t is the bracketed CLF time.
                    lit.push(b'[');
                    flush(&mut lit, &mut segs);
                    segs.push(Segment::Field(Field::Received));
                    lit.push(b']');
                    continue;
                }
                flush(&mut lit, &mut segs);
                segs.push(Segment::Field(apache_field(d, arg.as_deref(), start)?));
            }
            c => {
                lit.push(c);
                i += 1;
            }
        }
    }
    flush(&mut lit, &mut segs);
    Ok(segs)
}

fn apache_field(d: u8, arg: Option<&str>, position: usize) -> Result<Field, LogFormatError> {
    Ok(match (d, arg) {
        (b'h' | b'a', _) => Field::RemoteAddr,
        (b'u', _) => Field::RemoteUser,
        (b'r', _) => Field::Request,
        (b'm', _) => Field::Method,
        (b'U', _) => Field::Path,
        (b'q', _) => Field::Args,
        (b's', _) => Field::Status,
        (b'b' | b'B' | b'O', _) => Field::Bytes,
        (b'D', _) => Field::Micros,
        (b'T', None) => Field::WholeSecs,
        (b'v' | b'V', _) => Field::Host,
        (b'i', Some("x-forwarded-for")) => Field::ForwardedFor,
        (b'i', Some(h)) => Field::Header(h.to_string()),
        (b'C', Some(c)) => Field::Cookie(c.to_string()),
        (
            b'l' | b'p' | b'P' | b'H' | b'X' | b'I' | b'S' | b'k' | b'L' | b'R' | b'e' | b'n'
            | b'o' | b'f' | b'A' | b'T',
            _,
        ) => Field::Ignored,
        (c, _) => {
            return Err(LogFormatError {
                message: format!("unknown directive %{}", c as char),
                position,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(fmt: &str, line: &str) -> Exchange {
        let mut f = LogFormat::parse(fmt).unwrap();
        super::super::parse_one(&mut f, line.as_bytes()).unwrap_or_else(|p| panic!("{p:?}"))
    }

    #[test]
    fn nginx_custom() {
        let x = parse(
            r#"$remote_addr [$time_iso8601] $request_method $request_uri $status $request_time "$http_x_tenant_id" $cookie_sid"#,
            r#"10.1.2.3 [2024-01-02T03:04:05+00:00] POST /api/orders?x=1 201 0.042 "acme" abc"#,
        );
        assert_eq!(x.method, "POST");
        assert_eq!(x.path, "/api/orders");
        assert_eq!(x.header("x-tenant-id"), Some("acme"));
        assert_eq!(x.header("cookie"), Some("sid=abc"));
        assert_eq!(x.duration, Some(Duration::from_millis(42)));
        // nginx's time is when it logged the request, after answering.
        assert_eq!(x.time.to_rfc3339(), "2024-01-02T03:04:04.958000Z");
    }

    #[test]
    fn apache_combined() {
        let x = parse(
            r#"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\" %D"#,
            r#"1.2.3.4 - bob [10/Oct/2000:13:55:36 -0700] "GET /a.html HTTP/1.0" 200 2326 "-" "curl" 1500"#,
        );
        assert_eq!(x.user.as_deref(), Some("bob"));
        assert_eq!(x.header("user-agent"), Some("curl"));
        assert_eq!(x.duration, Some(Duration::from_micros(1500)));
        // Apache's %t is when the request was received.
        assert_eq!(x.time.to_rfc3339(), "2000-10-10T20:55:36Z");
    }

    #[test]
    fn bad_formats() {
        assert!(LogFormat::parse("$remote_addr $status").is_err());
        assert!(LogFormat::parse("$time_local$request").is_err());
        assert!(LogFormat::parse("%t %r %Z").is_err());
        assert!(LogFormat::parse("[$time_local] \"$request\" ${unclosed").is_err());
    }

    #[test]
    fn mismatch_is_skipped() {
        let mut f = LogFormat::parse(COMBINED).unwrap();
        assert!(matches!(
            super::super::parse_one(&mut f, b"nonsense"),
            Err(Parsed::Skip(_))
        ));
    }
}
