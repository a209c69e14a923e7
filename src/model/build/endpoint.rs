//! One endpoint's tallies while importing.

use std::collections::BTreeMap;

use super::super::redact::{HeaderUse, Policy, Secrets};
use super::super::sketch::Reservoir;
use super::super::template::SlotKind;
use super::super::{BodyTemplate, Endpoint, PathSlot, QueryParam, QueryShape, time};
use super::body::PendingBody;
use crate::capture::Exchange;

/// Headers kept per endpoint.
const MAX_HEADERS: usize = 16;
/// Query combinations tallied per endpoint (later new ones are not), and
/// written to the model (the most common).
const MAX_SHAPES_SEEN: usize = 256;
const MAX_SHAPES: usize = 32;
/// Requests of an endpoint whose headers are looked at.
const HEADER_LOOKS: u64 = 1000;

pub(super) struct EndpointB {
    pub method: String,
    pub path: String,
    pub slots: Vec<PathSlot>,
    query: BTreeMap<String, (SlotKind, u64)>,
    /// Which parameters requests carried together, in order: by a hash
    /// of the names (no allocation per request), with the names.
    shapes: rustc_hash::FxHashMap<u64, (Vec<String>, u64)>,
    headers: BTreeMap<String, String>,
    /// The first body, templated when the model is written.
    pub body: Option<PendingBody>,
    requests: u64,
    status: BTreeMap<u16, u64>,
    latency: Reservoir,
    ttfb: Reservoir,
}

/// A query parameter of one request: raw name, kind, raw value.
pub(super) type QueryValue<'a> = (&'a str, SlotKind, &'a str);

impl EndpointB {
    pub fn new(method: &str, path: &str, slots: Vec<PathSlot>) -> EndpointB {
        EndpointB {
            method: method.to_string(),
            path: path.to_string(),
            slots,
            query: BTreeMap::new(),
            shapes: Default::default(),
            headers: BTreeMap::new(),
            body: None,
            requests: 0,
            status: BTreeMap::new(),
            latency: Reservoir::default(),
            ttfb: Reservoir::default(),
        }
    }

    /// Tallies one request. `tenant_header` is the header the tenant came
    /// from (replay sets it, so it is not kept as a recorded header).
    pub fn record(
        &mut self,
        x: &Exchange,
        query: &[QueryValue],
        secrets: &Secrets,
        policy: &Policy,
        tenant_header: Option<&str>,
    ) {
        self.requests += 1;
        if let Some(s) = x.status {
            *self.status.entry(s).or_default() += 1;
        }
        // A duration no model holds (a damaged capture's clock jumping by
        // decades) is no latency to keep: the model would not read back.
        let kept =
            |d: &std::time::Duration| d.as_secs_f64() * 1000.0 <= crate::model::MAX_RECORDED_MS;
        if let Some(d) = x.duration.filter(kept) {
            self.latency.add(d);
        }
        if let Some(d) = x.ttfb.filter(kept) {
            self.ttfb.add(d);
        }
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = rustc_hash::FxHasher::default();
            for (n, _, _) in query {
                n.hash(&mut h);
            }
            h.finish()
        };
        let same = |names: &[String]| {
            names
                .iter()
                .map(String::as_str)
                .eq(query.iter().map(|q| q.0))
        };
        let room = self.shapes.len() < MAX_SHAPES_SEEN;
        match self.shapes.get_mut(&key) {
            Some((names, n)) if same(names) => *n += 1,
            // Another combination with the same hash: not tallied.
            Some(_) => {}
            None if room => {
                let names = query.iter().map(|(n, _, _)| n.to_string()).collect();
                self.shapes.insert(key, (names, 1));
            }
            None => {}
        }
        for (i, (name, kind, _)) in query.iter().enumerate() {
            let entry = match self.query.get_mut(*name) {
                Some(e) => e,
                None => self
                    .query
                    .entry(name.to_string())
                    .or_insert((kind.clone(), 0)),
            };
            // Presence is a share of requests: `?tag=a&tag=b` is one.
            if !query[..i].iter().any(|q| q.0 == *name) {
                entry.1 += 1;
            }
            if entry.0 != *kind && entry.0 != SlotKind::Tenant {
                entry.0 = SlotKind::Text;
            }
        }
        // Headers are the first values seen; an endpoint's first thousand
        // requests show which it sends.
        if self.headers.len() < MAX_HEADERS && self.requests <= HEADER_LOOKS {
            for (name, value) in &x.headers {
                if self.headers.len() >= MAX_HEADERS
                    || Some(name.as_str()) == tenant_header
                    || policy.header(name) != HeaderUse::Keep
                    || self.headers.contains_key(name)
                    || secrets.taints(value)
                {
                    continue;
                }
                self.headers.insert(name.clone(), value.clone());
            }
        }
    }

    pub fn to_model(&self, body: Option<BodyTemplate>) -> Endpoint {
        Endpoint {
            method: self.method.clone(),
            path: self.path.clone(),
            slots: self.slots.clone(),
            query: self
                .query
                .iter()
                .map(|(name, (kind, n))| QueryParam {
                    name: name.clone(),
                    kind: kind.clone(),
                    pool: query_pool(name),
                    presence: time::round3(*n as f64 / self.requests.max(1) as f64),
                })
                .collect(),
            query_shapes: self.query_shapes(),
            headers: self.headers.clone(),
            body,
            requests: self.requests,
            status: self
                .status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            latency_ms: self.latency.distribution(),
            ttfb_ms: self.ttfb.distribution(),
        }
    }

    /// The most common query combinations, none when no request had a
    /// query (the request without one is a shape too when others had).
    fn query_shapes(&self) -> Vec<QueryShape> {
        if self.query.is_empty() {
            return Vec::new();
        }
        let mut shapes: Vec<QueryShape> = self
            .shapes
            .values()
            .map(|(params, count)| QueryShape {
                params: params.clone(),
                count: *count,
            })
            .collect();
        shapes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.params.cmp(&b.params)));
        shapes.truncate(MAX_SHAPES);
        shapes
    }
}

/// The pool of a query parameter.
pub(super) fn query_pool(raw_name: &str) -> String {
    format!("query.{raw_name}")
}
