//! HAR (HTTP Archive) 1.1 and 1.2, as browsers and proxies really write it.
//!
//! The document is streamed: `log.entries` is walked element by element, each
//! entry captured as raw JSON and turned into an [`Exchange`] before the next
//! is read, so memory does not grow with the file. Each entry is first read
//! with the `har` crate's types; real exports often break that strict schema
//! (HAR 1.1, empty `httpVersion`, missing `cache`/`timings`/`cookies`, numbers
//! as strings, null where a string belongs), so an entry that fails is
//! normalised as JSON — missing fields filled, types coerced — and read
//! again. Only an entry that still makes no sense is skipped, and broken JSON
//! is an error naming the line and column.

mod scan;

use std::io::BufRead;
use std::time::Duration;

use base64::Engine;
use har::v1_2::{Entries, PostData};
use serde_json::{Map, Value, json};

use super::access_log::{is_method, set_target};
use super::{Body, CaptureError, Exchange, InputStats, Param};
use crate::model::Timestamp;
pub use scan::{Place, Scanner, syntax_error};

/// Reads a HAR document, handing each usable entry to `sink`.
pub fn read(
    path: &str,
    reader: &mut dyn BufRead,
    stats: &mut InputStats,
    sink: &mut dyn super::Sink,
) -> Result<(), CaptureError> {
    stats.place = "entry";
    let mut scanner = Scanner::new(reader, path);
    let mut clock = Clock::default();
    while let Some((raw, at)) = scanner.next_entry()? {
        stats.records += 1;
        match entry(raw, &mut clock) {
            Ok(x) => {
                stats.accepted += 1;
                *sink.slot() = x;
                sink.commit();
            }
            Err(Bad::Skip(reason)) => stats.skip(stats.records, reason),
            Err(Bad::Json(e)) => return Err(syntax_error(path, at, &e)),
        }
    }
    if !scanner.found_entries() {
        return Err(CaptureError::Invalid {
            path: path.into(),
            message: "not a HAR document: no log.entries array".into(),
        });
    }
    clock.warn(stats);
    Ok(())
}

/// Why an entry was not read.
pub enum Bad {
    /// Valid JSON that makes no sense as an entry: skipped, counted.
    Skip(&'static str),
    /// Broken JSON: the whole file is refused.
    Json(serde_json::Error),
}

/// Time for entries that lack `startedDateTime` (hand-made HARs): the end of
/// the previous entry, so the order and spacing survive.
#[derive(Default)]
pub struct Clock {
    next: Timestamp,
    untimed: u64,
}

impl Clock {
    pub fn warn(&self, stats: &mut InputStats) {
        if self.untimed > 0 {
            stats.warnings.push(format!(
                "{} entries had no startedDateTime; each was placed at the end of the entry before it",
                self.untimed
            ));
        }
    }
}

/// One entry's JSON → an exchange, strictly first, leniently second.
pub fn entry(raw: &[u8], clock: &mut Clock) -> Result<Exchange, Bad> {
    let e = match serde_json::from_slice::<Entries>(raw) {
        Ok(e) => e,
        Err(_) => {
            let mut v: Value = serde_json::from_slice(raw).map_err(Bad::Json)?;
            normalise(&mut v).map_err(Bad::Skip)?;
            serde_json::from_value::<Entries>(v).map_err(|_| Bad::Skip("entry does not fit HAR"))?
        }
    };
    let x = convert(e, clock).map_err(Bad::Skip)?;
    clock.next = x.time.saturating_add(x.duration.unwrap_or_default());
    Ok(x)
}

fn convert(e: Entries, clock: &mut Clock) -> Result<Exchange, &'static str> {
    let time = if e.started_date_time.trim().is_empty() {
        clock.untimed += 1;
        clock.next
    } else {
        Timestamp::parse_iso8601(&e.started_date_time).ok_or("bad startedDateTime")?
    };
    let method = e.request.method.trim().to_ascii_uppercase();
    if !is_method(method.as_bytes()) {
        return Err("bad method");
    }
    let mut x = Exchange {
        time,
        method,
        ..Exchange::default()
    };
    set_target(&mut x, e.request.url.trim().as_bytes()).map_err(|_| "bad url")?;
    let mut authority = None;
    for h in e.request.headers {
        let name = h.name.to_ascii_lowercase();
        if name == ":authority" {
            authority = Some(h.value);
        } else if !name.starts_with(':') {
            x.headers.push((name, h.value));
        }
    }
    // The Host the server saw beats the URL's host: a proxy in reverse mode
    // records the upstream address in the URL.
    let host = authority.or_else(|| x.header("host").map(str::to_string));
    if let Some(h) = host.filter(|h| !h.trim().is_empty()) {
        x.host = Some(super::access_log::strip_port(h.trim()).to_ascii_lowercase());
    }
    if x.header("cookie").is_none() && !e.request.cookies.is_empty() {
        let jar: Vec<String> = e
            .request
            .cookies
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        x.headers.push(("cookie".into(), jar.join("; ")));
    }
    // A HAR recorded by a proxy behind a load balancer or web server knows
    // the client from the forwarding headers.
    x.client = ["x-forwarded-for", "x-real-ip"]
        .iter()
        .find_map(|h| x.header(h))
        .and_then(|v| super::access_log::first_client(v.as_bytes()));
    x.body = e.request.post_data.and_then(body);
    x.status = u16::try_from(e.response.status)
        .ok()
        .filter(|s| (100..1000).contains(s));
    x.duration = millis(e.time);
    x.ttfb = millis(e.timings.wait);
    x.response_bytes = [e.response.content.size, e.response.body_size]
        .into_iter()
        .find(|n| *n >= 0)
        .map(|n| n as u64);
    x.response_type = e
        .response
        .content
        .mime_type
        .filter(|m| !m.is_empty())
        .or_else(|| {
            e.response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-type"))
                .map(|h| h.value.clone())
        });
    Ok(x)
}

fn millis(ms: f64) -> Option<Duration> {
    (ms.is_finite() && (0.0..1e10).contains(&ms)).then(|| Duration::from_secs_f64(ms / 1000.0))
}

fn body(p: PostData) -> Option<Body> {
    let mime = p.mime_type;
    let params: Vec<Param> = p
        .params
        .unwrap_or_default()
        .into_iter()
        .map(|q| Param {
            name: q.name,
            value: q.value.unwrap_or_default(),
            file_name: q.file_name,
            content_type: q.content_type,
        })
        .collect();
    match p.text {
        Some(text) if !text.is_empty() && params.is_empty() => Some(Body::Text { mime, text }),
        _ if !params.is_empty() => Some(Body::Params { mime, params }),
        _ => None,
    }
}

// ---- normalisation of entries the strict schema rejects ----

fn normalise(v: &mut Value) -> Result<(), &'static str> {
    let e = v.as_object_mut().ok_or("entry is not an object")?;
    // Entry fields misplaced into the request by some exporters.
    for k in ["startedDateTime", "time"] {
        if !e.contains_key(k)
            && let Some(v) = e
                .get_mut("request")
                .and_then(Value::as_object_mut)
                .and_then(|r| r.remove(k))
        {
            e.insert(k.into(), v);
        }
    }
    if !e.get("startedDateTime").is_some_and(Value::is_string) {
        // Placed by the clock in `convert`.
        e.insert("startedDateTime".into(), Value::String(String::new()));
    }
    // A time the entry does not give is unknown, not 0 ms: -1 (HAR's own
    // "not applicable") is read as no measurement.
    number(e, "time", -1.0);
    for k in ["pageref", "serverIPAddress", "connection", "comment"] {
        stringish_or_remove(e, k);
    }
    e.insert("cache".into(), json!({}));
    let timings = object(e, "timings");
    for k in ["send", "wait", "receive"] {
        number(timings, k, -1.0);
    }
    for k in ["blocked", "dns", "connect", "ssl"] {
        optional_number(timings, k);
    }
    stringish_or_remove(timings, "comment");

    let req = e
        .get_mut("request")
        .and_then(Value::as_object_mut)
        .ok_or("no request")?;
    hoist_misnested(req);
    for k in ["method", "url"] {
        if !req.get(k).is_some_and(Value::is_string) {
            return Err("request without method or url");
        }
    }
    message(req);
    number(req, "headersSize", -1.0);
    number(req, "bodySize", -1.0);
    query_string(req);
    post_data(req);

    let resp = object(e, "response");
    number(resp, "status", 0.0);
    string(resp, "statusText");
    message(resp);
    string(resp, "redirectURL");
    number(resp, "headersSize", -1.0);
    number(resp, "bodySize", -1.0);
    let content = object(resp, "content");
    number(content, "size", -1.0);
    optional_number(content, "compression");
    for k in ["mimeType", "text", "encoding", "comment"] {
        stringish_or_remove(content, k);
    }
    Ok(())
}

/// Some exporters nest the request's own fields inside `postData`; bring
/// back the ones the request lacks.
fn hoist_misnested(req: &mut Map<String, Value>) {
    const OWN: [&str; 6] = [
        "method",
        "url",
        "httpVersion",
        "headers",
        "cookies",
        "queryString",
    ];
    if req.get("url").is_some() {
        return;
    }
    let Some(Value::Object(pd)) = req.get_mut("postData") else {
        return;
    };
    let moved: Vec<(String, Value)> = OWN
        .iter()
        .filter_map(|k| pd.remove(*k).map(|v| (k.to_string(), v)))
        .collect();
    for (k, v) in moved {
        req.entry(k).or_insert(v);
    }
}

/// Fields requests and responses share: httpVersion, cookies, headers.
fn message(m: &mut Map<String, Value>) {
    string(m, "httpVersion");
    stringish_or_remove(m, "comment");
    let headers = list(m, "headers");
    headers.retain_mut(|h| name_value(h, true));
    let cookies = list(m, "cookies");
    cookies.retain_mut(|c| {
        let ok = name_value(c, true);
        if let Some(c) = c.as_object_mut() {
            for k in ["path", "domain", "expires"] {
                stringish_or_remove(c, k);
            }
            for k in ["httpOnly", "secure"] {
                if !c.get(k).is_some_and(Value::is_boolean) {
                    c.remove(k);
                }
            }
        }
        ok
    });
}

fn query_string(req: &mut Map<String, Value>) {
    list(req, "queryString").retain_mut(|q| name_value(q, true));
}

fn post_data(req: &mut Map<String, Value>) {
    let Some(pd) = req.get_mut("postData") else {
        return;
    };
    let Some(p) = pd.as_object_mut() else {
        req.remove("postData");
        return;
    };
    string(p, "mimeType");
    stringish_or_remove(p, "comment");
    if p.get("encoding").and_then(Value::as_str) == Some("base64")
        && let Some(t) = p.get("text").and_then(Value::as_str)
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(t.trim())
    {
        p.insert(
            "text".into(),
            Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        );
    }
    stringish_or_remove(p, "text");
    if let Some(params) = p.get_mut("params") {
        match params.as_array_mut() {
            Some(a) => a.retain_mut(|q| {
                let ok = name_value(q, false);
                if let Some(q) = q.as_object_mut() {
                    for k in ["fileName", "contentType", "comment"] {
                        stringish_or_remove(q, k);
                    }
                }
                ok
            }),
            None => {
                p.remove("params");
            }
        }
    }
}

/// A `{name, value}` object: name must be text, value is coerced to text.
fn name_value(v: &mut Value, value_required: bool) -> bool {
    let Some(o) = v.as_object_mut() else {
        return false;
    };
    if !o.get("name").is_some_and(Value::is_string) {
        return false;
    }
    stringish_or_remove(o, "comment");
    match o.get("value").map(as_text) {
        Some(Some(s)) => {
            o.insert("value".into(), Value::String(s));
        }
        _ if value_required => {
            o.insert("value".into(), Value::String(String::new()));
        }
        _ => {
            o.remove("value");
        }
    }
    true
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn object<'a>(m: &'a mut Map<String, Value>, k: &str) -> &'a mut Map<String, Value> {
    if !m.get(k).is_some_and(Value::is_object) {
        m.insert(k.into(), json!({}));
    }
    m.get_mut(k)
        .and_then(Value::as_object_mut)
        .expect("just made")
}

fn list<'a>(m: &'a mut Map<String, Value>, k: &str) -> &'a mut Vec<Value> {
    if !m.get(k).is_some_and(Value::is_array) {
        m.insert(k.into(), json!([]));
    }
    m.get_mut(k)
        .and_then(Value::as_array_mut)
        .expect("just made")
}

fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn number(m: &mut Map<String, Value>, k: &str, default: f64) {
    let n = m.get(k).and_then(to_number).unwrap_or(default);
    m.insert(k.into(), number_value(n));
}

fn optional_number(m: &mut Map<String, Value>, k: &str) {
    match m.get(k).and_then(to_number) {
        Some(n) => m.insert(k.into(), number_value(n)),
        None => m.remove(k),
    };
}

/// Integers stay integers (the crate's size fields are `i64`).
fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

fn string(m: &mut Map<String, Value>, k: &str) {
    let s = m.get(k).and_then(as_text).unwrap_or_default();
    m.insert(k.into(), Value::String(s));
}

fn stringish_or_remove(m: &mut Map<String, Value>, k: &str) {
    match m.get(k).and_then(as_text) {
        Some(s) => m.insert(k.into(), Value::String(s)),
        None => m.remove(k),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(s: &str) -> Result<(Vec<Exchange>, InputStats), CaptureError> {
        let mut out = Vec::new();
        let mut stats = InputStats::new("t.har");
        read(
            "t.har",
            &mut s.as_bytes(),
            &mut stats,
            &mut super::super::Emit::new(|x| out.push(x)),
        )?;
        Ok((out, stats))
    }

    #[test]
    fn minimal_entries_are_accepted() {
        let (xs, stats) = read_str(
            r#"{"log":{"entries":[{"startedDateTime":"2024-01-01T00:00:00Z","request":{"method":"post","url":"https://a.example/api/x?q=1","postData":{"mimeType":"application/json","text":"{\"a\":1}"}},"response":{"status":201}}]}}"#,
        )
        .unwrap();
        assert_eq!(stats.accepted, 1);
        assert_eq!(xs[0].method, "POST");
        assert_eq!(xs[0].host.as_deref(), Some("a.example"));
        assert!(matches!(&xs[0].body, Some(Body::Text { text, .. }) if text == "{\"a\":1}"));
        // No `time`, no `timings`: no latency measured, not one of 0 ms.
        assert_eq!((xs[0].duration, xs[0].ttfb), (None, None));
    }

    #[test]
    fn untimed_entries_follow_each_other() {
        let (xs, stats) = read_str(
            r#"{"log":{"entries":[{"time":250,"request":{"method":"GET","url":"/a"},"response":{"status":200}},{"request":{"method":"GET","url":"/b"}}]}}"#,
        )
        .unwrap();
        assert_eq!(xs.len(), 2);
        assert_eq!(xs[1].time.as_micros() - xs[0].time.as_micros(), 250_000);
        assert_eq!(stats.warnings.len(), 1);
    }

    #[test]
    fn broken_json_names_the_place() {
        let err = read_str("{\"log\": {\"entries\": [\n  {\"x\": }\n]}}").unwrap_err();
        match err {
            CaptureError::Syntax { line, column, .. } => assert_eq!((line, column), (2, 9)),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn entries_without_sense_are_skipped() {
        let (_, stats) = read_str(
            r#"{"log":{"entries":[{"request":{}},{"startedDateTime":"x","request":{"method":"GET","url":"/"}}, 3]}}"#,
        )
        .unwrap();
        assert_eq!(stats.records, 3);
        assert_eq!(stats.accepted, 0);
        assert_eq!(stats.skipped.get("request without method or url"), Some(&1));
        assert_eq!(stats.skipped.get("entry is not an object"), Some(&1));
        assert_eq!(stats.skipped.get("bad startedDateTime"), Some(&1));
    }
}
