//! JSON-lines access logs: Caddy, Traefik and Envoy shapes built in, any
//! other through a `--json-fields` mapping.
//!
//! The shape is recognised from the first record's keys and kept for the
//! file. A field map names, for each part of an exchange, a dotted path into
//! the record (`request.headers`), with a unit for durations.

use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use super::{LineParser, Parsed, first_client, set_target, split_request_line, strip_port};
use crate::capture::Exchange;
use crate::model::Timestamp;

/// Where each part of an exchange is found in a JSON record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldMap {
    time: Vec<String>,
    /// The time is when the request was logged, after it ended (Caddy's
    /// `ts`; `time=PATH:end` in a mapping): the start is that less the
    /// duration.
    time_at_end: bool,
    method: Vec<String>,
    /// Path with query.
    uri: Vec<String>,
    /// A whole request line (`GET /x HTTP/1.1`).
    request: Vec<String>,
    query: Vec<String>,
    host: Vec<String>,
    client: Vec<String>,
    status: Vec<String>,
    duration: Vec<String>,
    duration_unit: Unit,
    user: Vec<String>,
    user_agent: Vec<String>,
    bytes: Vec<String>,
    /// An object of headers (`{"Name": ["v"]}` or `{"Name": "v"}`).
    headers: Vec<String>,
    /// Top-level keys with this prefix are headers (Traefik's `request_X`).
    header_prefix: Option<String>,
    /// Single headers: (header name, path).
    header: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Unit {
    #[default]
    Secs,
    Millis,
    Micros,
    Nanos,
}

impl Unit {
    fn duration(self, v: f64) -> Option<Duration> {
        let secs = match self {
            Unit::Secs => v,
            Unit::Millis => v / 1e3,
            Unit::Micros => v / 1e6,
            Unit::Nanos => v / 1e9,
        };
        (secs.is_finite() && (0.0..1e7).contains(&secs)).then(|| Duration::from_secs_f64(secs))
    }
}

fn paths(s: &str) -> Vec<String> {
    s.split('|').map(str::to_string).collect()
}

impl FieldMap {
    pub fn caddy() -> FieldMap {
        FieldMap {
            time: paths("ts"),
            time_at_end: true,
            method: paths("request.method"),
            uri: paths("request.uri"),
            host: paths("request.host"),
            client: paths("request.client_ip|request.remote_ip|request.remote_addr"),
            status: paths("status"),
            duration: paths("duration"),
            duration_unit: Unit::Secs,
            user: paths("user_id"),
            bytes: paths("size"),
            headers: paths("request.headers"),
            ..FieldMap::default()
        }
    }

    pub fn traefik() -> FieldMap {
        FieldMap {
            time: paths("StartUTC|StartLocal|time"),
            method: paths("RequestMethod"),
            uri: paths("RequestPath"),
            host: paths("RequestHost|RequestAddr"),
            client: paths("ClientHost|ClientAddr"),
            status: paths("DownstreamStatus|OriginStatus"),
            duration: paths("Duration"),
            duration_unit: Unit::Nanos,
            user: paths("ClientUsername"),
            bytes: paths("DownstreamContentSize"),
            header_prefix: Some("request_".into()),
            ..FieldMap::default()
        }
    }

    pub fn envoy() -> FieldMap {
        FieldMap {
            time: paths("start_time|timestamp"),
            method: paths("method|request_method"),
            uri: paths("path|x-envoy-original-path|request_path"),
            host: paths("authority|host"),
            client: paths("x_forwarded_for|downstream_remote_address|client_ip"),
            status: paths("response_code|status"),
            duration: paths("duration|duration_ms"),
            duration_unit: Unit::Millis,
            user_agent: paths("user_agent|user-agent"),
            bytes: paths("bytes_sent"),
            ..FieldMap::default()
        }
    }

    /// Which built-in shape a record has.
    fn recognise(v: &Value) -> Option<FieldMap> {
        let has = |p: &str| lookup(v, p).is_some();
        if has("request.uri") && has("request.method") {
            Some(FieldMap::caddy())
        } else if has("RequestMethod") && has("RequestPath") {
            Some(FieldMap::traefik())
        } else if has("response_code") && (has("start_time") || has("timestamp")) {
            Some(FieldMap::envoy())
        } else {
            None
        }
    }
}

/// A bad `--json-fields` mapping.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--json-fields: {0}")]
pub struct FieldMapError(String);

impl FromStr for FieldMap {
    type Err = FieldMapError;

    /// `time=ts,method=req.method,uri=req.uri,status=code,duration=took:ms,
    /// client=ip,header.X-Tenant=tenant` (alternatives with `|`;
    /// `time=ts:end` when the time is written as the request ends).
    fn from_str(s: &str) -> Result<FieldMap, FieldMapError> {
        let mut m = FieldMap::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, path) = item
                .split_once('=')
                .ok_or_else(|| FieldMapError(format!("`{item}` is not key=path")))?;
            if path.is_empty() {
                return Err(FieldMapError(format!("`{key}` has an empty path")));
            }
            let p = paths(path);
            match key.trim() {
                "time" => {
                    let (path, at_end) = match path.rsplit_once(':') {
                        Some((p, "end")) => (p, true),
                        Some((p, "start")) => (p, false),
                        Some((_, s))
                            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()) =>
                        {
                            return Err(FieldMapError(format!(
                                "`time={path}`: `:{s}` is not `:end` or `:start`"
                            )));
                        }
                        _ => (path, false),
                    };
                    m.time = paths(path);
                    m.time_at_end = at_end;
                }
                "method" => m.method = p,
                "uri" => m.uri = p,
                "path" => m.uri = p,
                "request" => m.request = p,
                "query" => m.query = p,
                "host" => m.host = p,
                "client" => m.client = p,
                "status" => m.status = p,
                "duration" => {
                    let (path, unit) = match path.rsplit_once(':') {
                        Some((p, u)) => (p, parse_unit(u)?),
                        None => (path, Unit::Secs),
                    };
                    m.duration = paths(path);
                    m.duration_unit = unit;
                }
                "user" => m.user = p,
                "user_agent" => m.user_agent = p,
                "bytes" => m.bytes = p,
                "headers" => m.headers = p,
                k => match k.strip_prefix("header.") {
                    Some(h) if !h.is_empty() => {
                        m.header.push((h.to_ascii_lowercase(), path.into()))
                    }
                    _ => {
                        return Err(FieldMapError(format!(
                            "unknown key `{k}` (time, method, uri, path, request, query, host, client, status, duration, user, user_agent, bytes, headers, header.NAME)"
                        )));
                    }
                },
            }
        }
        if m.time.is_empty() {
            return Err(FieldMapError("a `time` path is required".into()));
        }
        if m.request.is_empty() && (m.method.is_empty() || m.uri.is_empty()) {
            return Err(FieldMapError(
                "`request`, or `method` and `uri`, are required".into(),
            ));
        }
        Ok(m)
    }
}

fn parse_unit(u: &str) -> Result<Unit, FieldMapError> {
    Ok(match u {
        "s" => Unit::Secs,
        "ms" => Unit::Millis,
        "us" | "µs" => Unit::Micros,
        "ns" => Unit::Nanos,
        _ => {
            return Err(FieldMapError(format!(
                "unknown duration unit `{u}` (s, ms, us, ns)"
            )));
        }
    })
}

pub struct JsonLines {
    map: Option<FieldMap>,
}

impl JsonLines {
    pub fn new(map: Option<FieldMap>) -> JsonLines {
        JsonLines { map }
    }
}

impl LineParser for JsonLines {
    fn parse(&mut self, line: &[u8], out: &mut Exchange) -> Parsed {
        let v: Value = match serde_json::from_slice(line) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Parsed::Skip("not a JSON object"),
            Err(_) => return Parsed::Skip("invalid JSON"),
        };
        if self.map.is_none() {
            self.map = FieldMap::recognise(&v);
        }
        let Some(map) = &self.map else {
            return Parsed::Skip("unknown JSON log shape (give --json-fields)");
        };
        match exchange(map, &v) {
            Ok(x) => {
                *out = x;
                Parsed::Exchange
            }
            Err(r) => Parsed::Skip(r),
        }
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(x) = v.get(path) {
        return Some(x);
    }
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn first<'a>(v: &'a Value, paths: &[String]) -> Option<&'a Value> {
    paths
        .iter()
        .filter_map(|p| lookup(v, p))
        .find(|x| !x.is_null() && x.as_str().is_none_or(|s| !s.is_empty() && s != "-"))
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => a.first().and_then(string),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim_end_matches("ms").parse().ok(),
        _ => None,
    }
}

fn time(v: &Value) -> Option<Timestamp> {
    match v {
        // Epoch seconds, or milli/micro/nanoseconds by magnitude.
        Value::Number(n) => {
            let x = n.as_f64()?;
            let secs = if x > 1e17 {
                x / 1e9
            } else if x > 1e14 {
                x / 1e6
            } else if x > 1e11 {
                x / 1e3
            } else {
                x
            };
            Timestamp::from_secs_f64(secs)
        }
        Value::String(s) => Timestamp::parse_iso8601(s)
            .or_else(|| Timestamp::parse_clf(s.as_bytes()))
            .or_else(|| s.parse::<f64>().ok().and_then(Timestamp::from_secs_f64)),
        _ => None,
    }
}

fn exchange(m: &FieldMap, v: &Value) -> Result<Exchange, &'static str> {
    let mut x = Exchange {
        time: first(v, &m.time)
            .and_then(time)
            .ok_or("bad or missing time")?,
        ..Exchange::default()
    };
    let (method, target) = if let Some(r) = first(v, &m.request).and_then(string) {
        let (meth, tgt) = split_request_line(r.as_bytes())?;
        (
            String::from_utf8_lossy(meth).into_owned(),
            String::from_utf8_lossy(tgt).into_owned(),
        )
    } else {
        let method = first(v, &m.method)
            .and_then(string)
            .ok_or("not an access-log record (no method)")?;
        let uri = first(v, &m.uri).and_then(string).ok_or("no uri")?;
        (method, uri)
    };
    if !super::is_method(method.as_bytes()) {
        return Err("bad method");
    }
    x.method = method;
    set_target(&mut x, target.as_bytes())?;
    if x.query.is_none() {
        x.query = first(v, &m.query)
            .and_then(string)
            .map(|q| q.trim_start_matches('?').to_string());
    }
    if let Some(h) = first(v, &m.host).and_then(string) {
        x.host = Some(strip_port(&h).to_ascii_lowercase());
    }
    x.client = first(v, &m.client)
        .and_then(string)
        .and_then(|c| first_client(c.as_bytes()));
    x.status = match first(v, &m.status).and_then(number) {
        None => None,
        Some(0.0) => None,
        Some(s) if (100.0..1000.0).contains(&s) => Some(s as u16),
        Some(_) => return Err("bad status code"),
    };
    x.duration = first(v, &m.duration)
        .and_then(number)
        .and_then(|d| m.duration_unit.duration(d));
    if m.time_at_end {
        super::logged_at_end(&mut x);
    }
    x.user = first(v, &m.user).and_then(string);
    x.response_bytes = first(v, &m.bytes)
        .and_then(number)
        .map(|b| b.max(0.0) as u64);
    headers(m, v, &mut x);
    Ok(x)
}

fn headers(m: &FieldMap, v: &Value, x: &mut Exchange) {
    if let Some(Value::Object(h)) = first(v, &m.headers) {
        for (name, val) in h {
            if let Some(s) = string(val) {
                x.headers.push((name.to_ascii_lowercase(), s));
            }
        }
    }
    if let (Some(prefix), Value::Object(obj)) = (&m.header_prefix, v) {
        for (k, val) in obj {
            if let (Some(name), Some(s)) = (k.strip_prefix(prefix.as_str()), string(val)) {
                x.headers.push((name.to_ascii_lowercase(), s));
            }
        }
    }
    if let Some(ua) = first(v, &m.user_agent).and_then(string) {
        x.headers.push(("user-agent".into(), ua));
    }
    for (name, path) in &m.header {
        if let Some(s) = lookup(v, path).and_then(string) {
            x.headers.push((name.clone(), s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(p: &mut JsonLines, line: &str) -> Exchange {
        super::super::parse_one(p, line.as_bytes()).unwrap_or_else(|p| panic!("{p:?}"))
    }

    #[test]
    fn caddy() {
        let mut p = JsonLines::new(None);
        let x = one(
            &mut p,
            r#"{"ts":1693840791.75,"request":{"client_ip":"127.0.0.1","method":"GET","host":"h:8080","uri":"/a?b=1","headers":{"User-Agent":["curl"]}},"duration":0.5,"status":200}"#,
        );
        assert_eq!(x.path, "/a");
        assert_eq!(x.host.as_deref(), Some("h"));
        assert_eq!(x.header("user-agent"), Some("curl"));
        assert_eq!(x.duration, Some(Duration::from_millis(500)));
        // Caddy's ts is when it logged the request, after answering.
        assert_eq!(x.time.to_rfc3339(), "2023-09-04T15:19:51.250000Z");
    }

    #[test]
    fn traefik() {
        let mut p = JsonLines::new(None);
        let x = one(
            &mut p,
            r#"{"ClientHost":"172.17.0.1","DownstreamStatus":404,"Duration":215563,"RequestHost":"t.local","RequestMethod":"GET","RequestPath":"/x.dtd","StartUTC":"2021-12-08T14:02:43.464763557Z","request_User-Agent":"Nikto"}"#,
        );
        assert_eq!(x.status, Some(404));
        assert_eq!(x.header("user-agent"), Some("Nikto"));
        assert_eq!(x.duration, Some(Duration::from_nanos(215563)));
        assert_eq!(x.time.to_rfc3339(), "2021-12-08T14:02:43.464763Z");
    }

    #[test]
    fn custom_map() {
        let m: FieldMap = "time=t,method=m,uri=u,status=s,duration=d:ms,header.X-Tenant=ten"
            .parse()
            .unwrap();
        let mut p = JsonLines::new(Some(m));
        let x = one(
            &mut p,
            r#"{"t":"2024-01-01T00:00:00Z","m":"PUT","u":"/z","s":"204","d":12,"ten":"acme"}"#,
        );
        assert_eq!(x.status, Some(204));
        assert_eq!(x.header("x-tenant"), Some("acme"));
        assert_eq!(x.duration, Some(Duration::from_millis(12)));
        assert_eq!(x.time.to_rfc3339(), "2024-01-01T00:00:00Z");
        // `:end`: the time was written as the request ended.
        let m: FieldMap = "time=t:end,method=m,uri=u,duration=d:ms".parse().unwrap();
        let x = one(
            &mut JsonLines::new(Some(m)),
            r#"{"t":"2024-01-01T00:00:00Z","m":"PUT","u":"/z","d":12}"#,
        );
        assert_eq!(x.time.to_rfc3339(), "2023-12-31T23:59:59.988000Z");
        assert!("time=t:ned,method=m,uri=u".parse::<FieldMap>().is_err());
        assert!("method=m".parse::<FieldMap>().is_err());
        assert!(
            "time=t,uri=u,method=m,duration=d:fortnights"
                .parse::<FieldMap>()
                .is_err()
        );
    }
}
