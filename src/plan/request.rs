//! A planned step → the request to send: the endpoint's template filled
//! with the tenant's recorded values, the tenant put where the target expects
//! it, headers and body from the model.

use std::borrow::Cow;
use std::fmt::Write;
use std::str::FromStr;

use rand::RngExt;
use rand::rngs::SmallRng;
use serde_json::Value;

use super::sample::Weighted;
use super::{Plan, SessionPlan, Step};
use crate::http::Header;
use crate::model::identity::TenantRule;
use crate::model::{BodyTemplate, SlotKind, Tenant};

/// Where a tenant's identity goes in its requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantPlace {
    /// Nothing to place (the default tenant).
    Nowhere,
    Header(String),
    Query(String),
    Cookie(String),
    /// A `{tenant}` slot of the path (the template has it).
    Path,
    /// The first label of the host: the target needs `{tenant}`.
    Host,
    /// A claim of the bearer token: needs auth to carry it.
    Token(String),
}

impl TenantPlace {
    /// From the rule that found the tenant at import.
    pub fn of(tenant: &Tenant) -> TenantPlace {
        match tenant.matched_by.as_deref().map(TenantRule::from_str) {
            Some(Ok(TenantRule::Header(h))) => TenantPlace::Header(h),
            Some(Ok(TenantRule::Query(q))) => TenantPlace::Query(q),
            Some(Ok(TenantRule::Cookie(c))) => TenantPlace::Cookie(c),
            Some(Ok(TenantRule::PathSegment(_))) => TenantPlace::Path,
            Some(Ok(TenantRule::HostSubdomain)) => TenantPlace::Host,
            Some(Ok(TenantRule::Jwt(c))) => TenantPlace::Token(c),
            _ => TenantPlace::Nowhere,
        }
    }
}

/// How requests are dressed beyond the model.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// `--tenant-header`: every tenant also as this header.
    pub tenant_header: Option<String>,
    /// `--header`: added, replacing recorded ones of the same name.
    pub headers: Vec<(String, String)>,
}

/// A request, ready for the transport. It borrows what the plan already
/// holds (method, recorded headers, user agent, `--header` values), so
/// filling a template allocates only the path and what is drawn or made up.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSpec<'a> {
    pub method: &'a str,
    /// `/path?query`, percent-encoded as recorded.
    pub path_and_query: String,
    /// Header names in lower case.
    pub headers: Vec<Header<'a>>,
    pub body: Option<Vec<u8>>,
    /// Endpoint index in the model, tenant index in the plan.
    pub endpoint: usize,
    pub tenant: usize,
}

/// A tenant's value pools, ready to be drawn from.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    pools: rustc_hash::FxHashMap<String, (Weighted, Vec<String>)>,
}

impl Pools {
    pub fn new(t: &Tenant) -> Pools {
        Pools {
            pools: t
                .pools
                .iter()
                .map(|(name, p)| {
                    let w = Weighted::new(p.values.iter().map(|(_, c)| *c as f64));
                    (
                        name.clone(),
                        (w, p.values.iter().map(|(v, _)| v.clone()).collect()),
                    )
                })
                .collect(),
        }
    }

    fn draw(&self, pool: &str, rng: &mut SmallRng) -> Option<&str> {
        let (w, values) = self.pools.get(pool)?;
        w.pick(rng).map(|i| values[i].as_str())
    }
}

/// A value of `kind` when the tenant recorded none.
fn made_up(kind: &SlotKind, rng: &mut SmallRng) -> String {
    let n: u32 = rng.random_range(1..100_000);
    match kind {
        SlotKind::Id => n.to_string(),
        SlotKind::Uuid => {
            let (a, b): (u64, u64) = (rng.random(), rng.random());
            format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                (b >> 48) & 0x3fff | 0x8000,
                b & 0xffff_ffff_ffff
            )
        }
        SlotKind::Hash => format!("{:016x}{:016x}", rng.random::<u64>(), rng.random::<u64>()),
        SlotKind::Hex => format!("{:08x}", rng.random::<u32>()),
        SlotKind::Email => format!("user{n}@example.com"),
        SlotKind::Date => "2024-01-01".to_string(),
        _ => format!("x{n}"),
    }
}

/// Percent-encodes what a path segment or query value cannot carry raw.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_encoded(&mut out, s);
    out
}

/// A recorded value (percent-encoded as it was recorded) onto the end of a
/// path: as it is, but for what cannot stand on a request line at all —
/// spaces and control characters (a CR LF in a hand-edited pool would
/// start a header, or a second request, on the wire).
fn push_recorded(out: &mut String, v: &str) {
    if !v.bytes().any(|b| b <= b' ' || b == 0x7f) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        if c <= ' ' || c == '\x7f' {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

/// `encode` onto the end of `out`.
fn push_encoded(out: &mut String, s: &str) {
    out.extend(percent_encoding::utf8_percent_encode(
        s,
        percent_encoding::NON_ALPHANUMERIC,
    ));
}

impl Plan {
    /// The request for `step` of `session`. Draws from `rng` (the session's
    /// own), so a session is the same wherever it runs.
    pub fn request<'a>(
        &'a self,
        session: &SessionPlan<'a>,
        step: &Step,
        placement: &'a Placement,
        rng: &mut SmallRng,
    ) -> RequestSpec<'a> {
        let tp = &self.tenants[session.tenant];
        let model_tenant = &self.model.tenants[tp.index];
        let e = &self.model.endpoints[step.endpoint];
        let place = &tp.place;
        let tenant = model_tenant.name.as_str();

        let mut path = String::with_capacity(e.path.len() + 32);
        let mut slots = e.slots.iter().peekable();
        // Where each slot's value went in `path` (segment, start, end), for
        // body fields that carried the same value.
        let mut drawn: smallvec::SmallVec<[(usize, usize, usize); 4]> = smallvec::SmallVec::new();
        for (i, part) in e.path.split('/').enumerate() {
            if i > 0 {
                path.push('/');
            }
            match slots.peek() {
                Some(slot) if slot.segment == i => {
                    let start = path.len();
                    match &slot.kind {
                        SlotKind::Tenant => push_encoded(&mut path, tenant),
                        SlotKind::Secret => path.push_str(&made_up(&SlotKind::Token, rng)),
                        kind => match tp.pools.draw(&slot.pool, rng) {
                            Some(v) => push_recorded(&mut path, v),
                            None => path.push_str(&made_up(kind, rng)),
                        },
                    }
                    drawn.push((i, start, path.len()));
                    slots.next();
                }
                _ => path.push_str(part),
            }
        }
        let mut first = true;
        let mut param = |path: &mut String, name: &str, value: &str| {
            path.push(if first { '?' } else { '&' });
            first = false;
            path.push_str(name);
            path.push('=');
            push_recorded(path, value);
        };
        let mut emit =
            |path: &mut String, q: &crate::model::QueryParam, rng: &mut SmallRng| match q.kind {
                SlotKind::Tenant => param(path, &q.name, &encode(tenant)),
                _ => {
                    if let Some(v) = tp.pools.draw(&q.pool, rng) {
                        param(path, &q.name, v);
                    }
                }
            };
        let total: u64 = e.query_shapes.iter().map(|s| s.count).sum();
        if total > 0 {
            // A combination the recording had, by weight: parameters sent
            // together stay together, and a repeated one is repeated.
            let mut pick = rng.random_range(0..total);
            let shape = e
                .query_shapes
                .iter()
                .find(|s| {
                    if pick < s.count {
                        return true;
                    }
                    pick -= s.count;
                    false
                })
                .unwrap_or(&e.query_shapes[0]);
            for name in &shape.params {
                if let Some(q) = e.query.iter().find(|q| &q.name == name) {
                    emit(&mut path, q, rng);
                }
            }
        } else {
            // A model without shapes: each parameter by its own presence.
            for q in &e.query {
                if rng.random::<f64>() < q.presence {
                    emit(&mut path, q, rng);
                }
            }
        }
        if let TenantPlace::Query(name) = place
            && !e.query.iter().any(|q| q.kind == SlotKind::Tenant)
        {
            param(&mut path, &encode(name), &encode(tenant));
        }

        let b = Cow::Borrowed;
        let extra = usize::from(session.agent.is_some()) + 1 + placement.headers.len();
        let mut headers: Vec<Header<'a>> = Vec::with_capacity(e.headers.len() + extra);
        // A recorded Host (the importer drops it; a hand-edited model may
        // not) is production's name: only `--header 'Host: …'` sets it.
        headers.extend(
            e.headers
                .iter()
                .filter(|(k, _)| *k != "host")
                .map(|(k, v)| (b(k.as_str()), b(v.as_str()))),
        );
        if let Some(ua) = session.agent {
            headers.push((b("user-agent"), b(ua)));
        }
        match place {
            TenantPlace::Header(h) => headers.push((b(h.as_str()), b(tenant))),
            TenantPlace::Cookie(c) => {
                headers.push((b("cookie"), Cow::Owned(format!("{c}={tenant}"))));
            }
            _ => {}
        }
        if let Some(h) = &placement.tenant_header
            && *place != TenantPlace::Nowhere
        {
            headers.retain(|(k, _)| k != h);
            headers.push((b(h.as_str()), b(tenant)));
        }
        for (k, v) in &placement.headers {
            headers.retain(|(name, _)| name != k);
            headers.push((b(k.as_str()), b(v.as_str())));
        }
        let segment = |i: usize| {
            drawn
                .iter()
                .find(|(s, _, _)| *s == i)
                .map(|&(_, a, b)| &path[a..b])
        };
        let body = e
            .body
            .as_ref()
            .map(|b| body(b, tp, rng, &mut headers, &segment));
        RequestSpec {
            method: e.method.as_str(),
            path_and_query: path,
            headers,
            body,
            endpoint: step.endpoint,
            tenant: session.tenant,
        }
    }
}

/// The `boundary` parameter of a multipart Content-Type, unquoted.
fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        (name.trim().eq_ignore_ascii_case("boundary"))
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// A body from its template, with its slots drawn from the tenant's pools.
fn body<'p>(
    b: &BodyTemplate,
    tp: &'p super::TenantPlan,
    rng: &mut SmallRng,
    headers: &mut Vec<Header<'_>>,
    segment: &dyn Fn(usize) -> Option<&'p str>,
) -> Vec<u8> {
    // A field recorded with the path's value sends the path's value (the
    // id of `PUT /posts/7` in `{"id": 7}`); the others draw their own.
    let value_for = |s: &crate::model::BodySlot, rng: &mut SmallRng| {
        s.path_segment
            .and_then(segment)
            .or_else(|| tp.pools.draw(&s.pool, rng))
    };
    let mut content_type = |mime: &str| {
        if !headers.iter().any(|(k, _)| k == "content-type") && !mime.is_empty() {
            headers.push((Cow::Borrowed("content-type"), Cow::Owned(mime.to_string())));
        }
    };
    match b {
        BodyTemplate::Json {
            mime, value, slots, ..
        } => {
            content_type(mime);
            let mut v = value.clone();
            for s in slots {
                if let (Some(target), Some(drawn)) = (v.pointer_mut(&s.pointer), value_for(s, rng))
                {
                    // Keep the recorded type: a number stays a number.
                    *target = match target {
                        Value::Number(_) => drawn
                            .parse::<serde_json::Number>()
                            .map_or_else(|_| Value::String(drawn.into()), Value::Number),
                        _ => Value::String(drawn.into()),
                    };
                }
            }
            serde_json::to_vec(&v).expect("a JSON value serialises")
        }
        BodyTemplate::Form {
            mime,
            params,
            slots,
            ..
        } => {
            let mut values: Vec<String> = params.iter().map(|p| p.value.clone()).collect();
            for s in slots {
                let i: Option<usize> = s.pointer.trim_start_matches('/').parse().ok();
                if let (Some(i), Some(drawn)) = (i, value_for(s, rng))
                    && i < values.len()
                {
                    values[i] = drawn.to_string();
                }
            }
            let lower = mime.to_ascii_lowercase();
            if lower.starts_with("multipart/") {
                // The body's delimiters must be the header's boundary: the
                // recorded Content-Type (or --header) keeps its own, and
                // only a header without one gets ours.
                let given = headers
                    .iter()
                    .find(|(k, _)| k == "content-type")
                    .and_then(|(_, v)| boundary_of(v));
                let boundary = match given {
                    Some(b) => b,
                    None => {
                        let made = format!("reprise{:016x}", rng.random::<u64>());
                        headers.retain(|(k, _)| k != "content-type");
                        let kind = lower.split(';').next().unwrap_or("multipart/form-data");
                        headers.push((
                            Cow::Borrowed("content-type"),
                            Cow::Owned(format!("{kind}; boundary={made}")),
                        ));
                        made
                    }
                };
                let mut out = String::new();
                for (p, v) in params.iter().zip(&values) {
                    let _ = write!(
                        out,
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                        p.name
                    );
                    if let Some(f) = &p.file_name {
                        let _ = write!(out, "; filename=\"{f}\"");
                    }
                    out.push_str("\r\n");
                    if let Some(t) = &p.content_type {
                        let _ = write!(out, "Content-Type: {t}\r\n");
                    }
                    let _ = write!(out, "\r\n{v}\r\n");
                }
                let _ = write!(out, "--{boundary}--\r\n");
                out.into_bytes()
            } else if lower.contains("json") {
                // Fields recorded for a JSON body (some HAR writers list a
                // JSON body's fields as params): sent as the JSON object
                // they came from, not as a form labelled JSON.
                content_type(mime);
                let object: serde_json::Map<String, Value> = params
                    .iter()
                    .zip(values)
                    .map(|(p, v)| (p.name.clone(), Value::String(v)))
                    .collect();
                serde_json::to_vec(&Value::Object(object)).expect("a JSON object serialises")
            } else {
                content_type("application/x-www-form-urlencoded");
                params
                    .iter()
                    .zip(&values)
                    .map(|(p, v)| format!("{}={}", encode(&p.name), encode(v)))
                    .collect::<Vec<_>>()
                    .join("&")
                    .into_bytes()
            }
        }
        BodyTemplate::Text { mime, text } => {
            content_type(mime);
            text.clone().into_bytes()
        }
    }
}
