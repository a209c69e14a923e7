//! One endpoint's tallies while importing.

use std::collections::BTreeMap;

use super::super::redact::{HeaderUse, Policy, Secrets};
use super::super::sketch::Reservoir;
use super::super::template::SlotKind;
use super::super::{BodyTemplate, Endpoint, PathSlot, QueryParam, time};
use super::body::PendingBody;
use crate::capture::Exchange;

/// Headers kept per endpoint.
const MAX_HEADERS: usize = 16;
/// Requests of an endpoint whose headers are looked at.
const HEADER_LOOKS: u64 = 1000;

pub(super) struct EndpointB {
    pub method: String,
    pub path: String,
    pub slots: Vec<PathSlot>,
    query: BTreeMap<String, (SlotKind, u64)>,
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
        if let Some(d) = x.duration {
            self.latency.add(d);
        }
        if let Some(d) = x.ttfb {
            self.ttfb.add(d);
        }
        for (name, kind, _) in query {
            let entry = match self.query.get_mut(*name) {
                Some(e) => e,
                None => self
                    .query
                    .entry(name.to_string())
                    .or_insert((kind.clone(), 0)),
            };
            entry.1 += 1;
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
}

/// The pool of a query parameter.
pub(super) fn query_pool(raw_name: &str) -> String {
    format!("query.{raw_name}")
}
