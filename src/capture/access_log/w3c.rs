//! W3C extended log format (IIS, Microsoft HTTP API, and others) and Amazon
//! CloudFront standard logs, which are W3C with tabs.
//!
//! The `#Fields:` directive names the columns; it may change mid-file (IIS
//! restarts) and is followed. CloudFront files without the header get
//! CloudFront's documented field list. IIS writes spaces in values as `+`;
//! CloudFront percent-encodes them. `time-taken` is milliseconds in IIS and
//! seconds (with a fraction) in CloudFront: a value with a `.` is read as
//! seconds. Both write the time a request ended (CloudFront documents it;
//! IIS's entries show it), so the start is that time less `time-taken`.

use std::time::Duration;

use super::{
    LineParser, Parsed, decode_percent, first_client, parse_secs, parse_status, parse_u64, present,
    text,
};
use crate::capture::Exchange;
use crate::model::Timestamp;

/// CloudFront's standard log fields, in order, for files without `#Fields`.
const CLOUDFRONT_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
    cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type \
    x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol \
    ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields \
    c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len \
    sc-range-start sc-range-end";

#[derive(Default)]
pub struct W3c {
    fields: Vec<Field>,
    cloudfront: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Field {
    Date,
    Time,
    ClientIp,
    Method,
    UriStem,
    UriQuery,
    Status,
    TimeTaken,
    TimeTakenMs,
    Ttfb,
    Username,
    Host,
    ServerBytes,
    ContentType,
    Header(String),
    Other,
}

impl Field {
    fn from_name(name: &str) -> Field {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "date" | "date-local" => Field::Date,
            "time" | "time-local" => Field::Time,
            "c-ip" => Field::ClientIp,
            "cs-method" => Field::Method,
            "cs-uri-stem" => Field::UriStem,
            "cs-uri-query" => Field::UriQuery,
            "sc-status" => Field::Status,
            "time-taken" => Field::TimeTaken,
            "timetakenms" => Field::TimeTakenMs,
            "time-to-first-byte" => Field::Ttfb,
            "cs-username" => Field::Username,
            "x-host-header" | "cs-host" => Field::Host,
            "sc-bytes" => Field::ServerBytes,
            "sc-content-type" => Field::ContentType,
            _ => match lower.strip_prefix("cs(").and_then(|h| h.strip_suffix(')')) {
                Some("host") => Field::Host,
                Some(h) => Field::Header(h.to_string()),
                None => Field::Other,
            },
        }
    }
}

impl W3c {
    pub fn cloudfront() -> W3c {
        W3c {
            fields: Vec::new(),
            cloudfront: true,
        }
    }

    fn set_fields(&mut self, names: &str) {
        // Directive lines may carry a trailing `// comment`.
        let names = names.split("//").next().unwrap_or_default();
        self.fields = names.split_whitespace().map(Field::from_name).collect();
    }

    fn values<'a>(&self, line: &'a [u8]) -> Vec<&'a [u8]> {
        if self.cloudfront || line.contains(&b'\t') {
            line.split(|&b| b == b'\t').collect()
        } else {
            split_w3c(line)
        }
    }
}

impl LineParser for W3c {
    fn parse(&mut self, line: &[u8], out: &mut Exchange) -> Parsed {
        if let Some(directive) = line.strip_prefix(b"#") {
            if let Some(names) = directive.strip_prefix(b"Fields:") {
                self.set_fields(&text(names));
            }
            return Parsed::Ignore;
        }
        if self.fields.is_empty() {
            if !self.cloudfront {
                return Parsed::Skip("data before any #Fields directive");
            }
            self.set_fields(CLOUDFRONT_FIELDS);
        }
        let values = self.values(line);
        if values.len() != self.fields.len() && !(self.cloudfront && values.len() > 20) {
            return Parsed::Skip("not a record of the #Fields layout (field count differs)");
        }
        match self.exchange(&values) {
            Ok(x) => {
                *out = x;
                Parsed::Exchange
            }
            Err(r) => Parsed::Skip(r),
        }
    }
}

impl W3c {
    fn exchange(&self, values: &[&[u8]]) -> Result<Exchange, &'static str> {
        let mut x = Exchange::default();
        let (mut date, mut time) = (None, None);
        let (mut stem, mut query) = (None, None);
        for (field, &raw) in self.fields.iter().zip(values) {
            let Some(v) = present(raw) else { continue };
            match field {
                Field::Date => date = Some(text(v)),
                Field::Time => time = Some(text(v)),
                Field::ClientIp => x.client = first_client(v),
                Field::Method => x.method = text(v),
                Field::UriStem => stem = Some(v),
                Field::UriQuery => query = Some(text(v)),
                Field::Status => x.status = parse_status(v)?,
                Field::TimeTaken => x.duration = time_taken(v),
                Field::TimeTakenMs => x.duration = parse_u64(v).map(Duration::from_millis),
                Field::Ttfb => x.ttfb = parse_secs(v),
                Field::Username => x.user = Some(self.value(v)),
                Field::Host => x.host = Some(self.value(v).to_ascii_lowercase()),
                Field::ServerBytes => x.response_bytes = parse_u64(v),
                Field::ContentType => x.response_type = Some(self.value(v)),
                Field::Header(name) => x.headers.push((name.clone(), self.value(v))),
                Field::Other => {}
            }
        }
        x.time = match (date, time) {
            (Some(d), Some(t)) => Timestamp::parse_w3c(&d, &t).ok_or("bad timestamp")?,
            _ => return Err("no date/time"),
        };
        // IIS and CloudFront write the time a request ended.
        super::logged_at_end(&mut x);
        if !super::is_method(x.method.as_bytes()) {
            return Err("bad or missing method");
        }
        let stem = stem.ok_or("no cs-uri-stem")?;
        super::set_target(&mut x, stem)?;
        // A stem that carried its own query keeps it.
        if x.query.is_none() {
            x.query = query;
        }
        Ok(x)
    }

    /// Header-like values: IIS writes spaces as `+`, CloudFront
    /// percent-encodes.
    fn value(&self, v: &[u8]) -> String {
        if self.cloudfront {
            // CloudFront encodes twice in places (`%2520`); once is enough to read.
            decode_percent(v)
        } else {
            text(v).replace('+', " ")
        }
    }
}

fn time_taken(v: &[u8]) -> Option<Duration> {
    if v.contains(&b'.') {
        parse_secs(v)
    } else {
        parse_u64(v).map(Duration::from_millis)
    }
}

/// Splits on runs of spaces; `"quoted values"` (with `""` for a quote) stay
/// whole.
fn split_w3c(line: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(24);
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' {
            i += 1;
            continue;
        }
        if line[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            loop {
                match memchr::memchr(b'"', &line[j..]) {
                    Some(off) if line.get(j + off + 1) == Some(&b'"') => j += off + 2,
                    Some(off) => {
                        j += off;
                        break;
                    }
                    None => {
                        j = line.len();
                        break;
                    }
                }
            }
            out.push(&line[start..j]);
            i = j + 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iis_line() {
        let mut p = W3c::default();
        assert!(matches!(
            super::super::parse_one(&mut p, b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken"),
            Err(Parsed::Ignore)
        ));
        let x = super::super::parse_one(
            &mut p,
            b"2019-03-06 18:43:17 10.0.140.107 GET /health-monitoring id=3 80 bob 10.0.140.2 Mozilla/4.0+(compatible) 200 0 0 15",
        )
        .unwrap();
        assert_eq!(x.path, "/health-monitoring");
        assert_eq!(x.query.as_deref(), Some("id=3"));
        assert_eq!(x.user.as_deref(), Some("bob"));
        assert_eq!(x.header("user-agent"), Some("Mozilla/4.0 (compatible)"));
        assert_eq!(x.duration, Some(Duration::from_millis(15)));
        // IIS writes the time the request ended.
        assert_eq!(x.time.to_rfc3339(), "2019-03-06T18:43:16.985000Z");
    }

    #[test]
    fn quoted_values() {
        let v = split_w3c(br#"a "b c" " ""x"" y " d"#);
        assert_eq!(v, vec![&b"a"[..], b"b c", br#" ""x"" y "#, b"d"]);
    }

    #[test]
    fn cloudfront_without_header() {
        let line = b"2024-03-12\t15:22:28\tCDG50-P2\t703\t1.2.3.4\tGET\td6r.cloudfront.net\t/testseb\t400\t-\tcurl/7.81.0\tquery_param=42\t-\tError\t375W==\thub-cdn.crowdsec.net\thttps\t62\t0.113\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tError\tHTTP/2.0\t-\t-\t51754\t0.113\tError\ttext/plain;%20charset=utf-8\t20\t-\t-";
        let x = super::super::parse_one(&mut W3c::cloudfront(), line).unwrap();
        assert_eq!(x.host.as_deref(), Some("hub-cdn.crowdsec.net"));
        assert_eq!(x.query.as_deref(), Some("query_param=42"));
        assert_eq!(x.duration, Some(Duration::from_millis(113)));
        // CloudFront's time is when it finished responding.
        assert_eq!(x.time.to_rfc3339(), "2024-03-12T15:22:27.887000Z");
        assert_eq!(
            x.response_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
    }
}
