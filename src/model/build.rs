//! Exchanges in, model out.
//!
//! One pass, in time order, with memory bounded by the model: per exchange
//! the tenant and session identity are resolved, the path is templated, the
//! endpoint and tenant tallies updated, and the request appended to its open
//! session. A session holds only its last step and a node in its tenant's
//! shape trie (shared prefixes of endpoint sequences), not its requests;
//! sessions idle for longer than the gap are closed in sweeps as time moves
//! on. Closing order is sorted, so the model is the same whatever the hash
//! seeds or thread timing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;
use regex::Regex;
use serde_json::Value;

use super::identity::{self, SessionKeyRule, TenantRule, decode, query_pairs};
use super::redact::{
    self, HeaderUse, Redactions, SecretIndex, Secrets, header_use, is_secret_name,
};
use super::sketch::{self, Reservoir, SeriesBuilder, ValueCounter};
use super::template::{self, SlotKind, SlotRule, Templated};
use super::*;
use crate::capture::{Body, Exchange, InputStats};

/// How a model is built.
#[derive(Clone, Debug)]
pub struct ModelOptions {
    /// `None`: choose rules from the traffic.
    pub tenant_rules: Option<Vec<TenantRule>>,
    pub session_rules: Vec<SessionKeyRule>,
    pub session_gap: Duration,
    pub keep_assets: bool,
    pub slot_rules: Vec<SlotRule>,
    /// Lower-case header names opted in.
    pub keep_headers: Vec<String>,
    pub include: Option<Regex>,
    pub exclude: Option<Regex>,
    /// Upper-case methods to keep; empty keeps all.
    pub methods: Vec<String>,
    pub max_endpoints: usize,
    pub max_pool_values: usize,
    pub max_shapes: usize,
    pub max_tenants: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            tenant_rules: None,
            session_rules: identity::default_session_rules(),
            session_gap: Duration::from_secs(30 * 60),
            keep_assets: false,
            slot_rules: Vec::new(),
            keep_headers: Vec::new(),
            include: None,
            exclude: None,
            methods: Vec::new(),
            max_endpoints: 2000,
            max_pool_values: 1000,
            max_shapes: 100,
            max_tenants: 1000,
        }
    }
}

/// Exchanges buffered to choose tenant rules automatically.
const SAMPLE: usize = 1000;
/// Longest session sequence tracked as a shape.
const MAX_SHAPE_STEPS: u32 = 100;
/// Trie nodes per tenant before new shapes stop being tracked.
const MAX_TRIE_NODES: usize = 200_000;
/// Headers kept per endpoint.
const MAX_HEADERS: usize = 16;
/// Bodies larger than this are not kept as templates.
const MAX_BODY: usize = 64 * 1024;
const MAX_HOSTS: usize = 1000;
/// Sweep idle sessions after this many exchanges at most.
const SWEEP_EVERY: u64 = 8192;

const START: u32 = u32::MAX;
const END: u32 = u32::MAX - 1;
const NO_NODE: u32 = u32::MAX;

/// Builds a [`Model`] from a stream of exchanges.
pub struct Modeller {
    opts: ModelOptions,
    rules: Option<Vec<TenantRule>>,
    sample: Vec<(usize, Exchange)>,
    endpoints: Vec<EndpointB>,
    endpoint_ids: HashMap<(String, String), u32>,
    tenants: Vec<TenantB>,
    tenant_ids: HashMap<String, u32>,
    open: HashMap<(u32, u64), Open>,
    watermark: Option<Timestamp>,
    swept_at: Option<Timestamp>,
    since_sweep: u64,
    span: Option<(Timestamp, Timestamp)>,
    /// Span of everything read, filtered requests included.
    seen: Option<(Timestamp, Timestamp)>,
    requests: SeriesBuilder,
    hosts: BTreeSet<String>,
    filtered: BTreeMap<usize, BTreeMap<&'static str, u64>>,
    per_input: BTreeMap<usize, InputTally>,
    redactions: Redactions,
    secret_index: SecretIndex,
}

/// What one input contributed, for the import report.
#[derive(Clone, Debug, Default)]
pub struct InputTally {
    pub requests: u64,
    /// Sessions whose first request came from this input.
    pub sessions: u64,
    pub tenants: BTreeSet<String>,
}

struct EndpointB {
    method: String,
    path: String,
    slots: Vec<PathSlot>,
    query: BTreeMap<String, (SlotKind, u64)>,
    headers: BTreeMap<String, String>,
    /// The first body, templated when the model is written (when the pools
    /// and the secrets of the whole capture are known).
    body: Option<PendingBody>,
    requests: u64,
    status: BTreeMap<u16, u64>,
    latency: Reservoir,
    ttfb: Reservoir,
}

struct PendingBody {
    body: Body,
    secrets: Secrets,
    /// This request's own slot values → pool.
    known: HashMap<String, String>,
    tenant: u32,
}

struct TenantB {
    name: String,
    matched_by: Option<String>,
    sessions: u64,
    requests: u64,
    arrivals: SeriesBuilder,
    think: Histogram<u64>,
    lengths: BTreeMap<u32, u64>,
    /// Trie of endpoint sequences: node → (parent, endpoint).
    nodes: Vec<(u32, u32)>,
    children: HashMap<(u32, u32), u32>,
    ends: HashMap<u32, u64>,
    truncated: BTreeSet<u32>,
    untracked: u64,
    transitions: HashMap<(u32, u32), (u64, Reservoir)>,
    endpoints: HashMap<u32, u64>,
    pools: HashMap<String, (SlotKind, ValueCounter)>,
    /// Pool values seen, for recognising them in bodies.
    pool_of: HashMap<String, String>,
}

struct Open {
    last_start: Timestamp,
    last_end: Timestamp,
    last_endpoint: u32,
    node: u32,
    steps: u32,
    truncated: bool,
}

impl Modeller {
    pub fn new(opts: ModelOptions) -> Modeller {
        Modeller {
            rules: opts.tenant_rules.clone(),
            opts,
            sample: Vec::new(),
            endpoints: Vec::new(),
            endpoint_ids: HashMap::new(),
            tenants: Vec::new(),
            tenant_ids: HashMap::new(),
            open: HashMap::new(),
            watermark: None,
            swept_at: None,
            since_sweep: 0,
            span: None,
            seen: None,
            requests: SeriesBuilder::default(),
            hosts: BTreeSet::new(),
            filtered: BTreeMap::new(),
            per_input: BTreeMap::new(),
            redactions: Redactions::default(),
            secret_index: SecretIndex::default(),
        }
    }

    /// The tenant rules in force (after the automatic choice, if any).
    pub fn tenant_rules(&self) -> Option<&[TenantRule]> {
        self.rules.as_deref()
    }

    /// Adds one exchange from input number `input`.
    pub fn add(&mut self, input: usize, x: Exchange) {
        if self.rules.is_none() {
            self.sample.push((input, x));
            if self.sample.len() >= SAMPLE {
                self.choose_rules();
            }
            return;
        }
        self.process(input, x);
    }

    fn choose_rules(&mut self) {
        let sample = std::mem::take(&mut self.sample);
        let xs: Vec<Exchange> = sample
            .iter()
            .filter(|(_, x)| self.filter_reason(x).is_none())
            .map(|(_, x)| x.clone())
            .collect();
        self.rules = Some(identity::auto_tenant_rules(&xs));
        for (i, x) in sample {
            self.process(i, x);
        }
    }

    fn filter(&mut self, input: usize, reason: &'static str) {
        *self
            .filtered
            .entry(input)
            .or_default()
            .entry(reason)
            .or_default() += 1;
    }

    fn filter_reason(&self, x: &Exchange) -> Option<&'static str> {
        let upgrade = x
            .header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if upgrade || x.status == Some(101) {
            return Some("websocket");
        }
        if x.method == "CONNECT" {
            return Some("CONNECT tunnel");
        }
        if !self.opts.methods.is_empty() && !self.opts.methods.contains(&x.method) {
            return Some("method not selected");
        }
        if !self.opts.keep_assets && template::is_asset(&x.path, x.response_type.as_deref()) {
            return Some("static asset");
        }
        if self
            .opts
            .include
            .as_ref()
            .is_some_and(|r| !r.is_match(&x.path))
            || self
                .opts
                .exclude
                .as_ref()
                .is_some_and(|r| r.is_match(&x.path))
        {
            return Some("excluded by path filter");
        }
        None
    }

    fn process(&mut self, input: usize, x: Exchange) {
        self.seen = Some(
            self.seen
                .map_or((x.time, x.time), |(a, b)| (a.min(x.time), b.max(x.time))),
        );
        if let Some(reason) = self.filter_reason(&x) {
            self.filter(input, reason);
            return;
        }
        let (tenant_name, rule) = self.tenant_of(&x);
        let secrets = Secrets::of(&x, &self.opts.keep_headers);
        self.secret_index.add(&secrets);
        let tenant_segment = match rule.map(|r| &self.rules.as_ref().expect("decided")[r]) {
            Some(TenantRule::PathSegment(n)) => Some(*n),
            _ => None,
        };
        let templated = template::template_path(&x.path, tenant_segment, &self.opts.slot_rules);
        let Some(eid) = self.endpoint(&x.method, &templated) else {
            self.filter(input, "endpoint limit reached");
            return;
        };
        let tid = self.tenant(tenant_name, rule);
        let tally = self.per_input.entry(input).or_default();
        tally.requests += 1;
        if !tally.tenants.contains(&self.tenants[tid as usize].name) {
            tally
                .tenants
                .insert(self.tenants[tid as usize].name.clone());
        }
        let query = self.query_values(&x, &secrets, rule);
        self.count_redactions(&x);
        self.record_endpoint(eid, &x, &templated, &query, &secrets, tid, rule);
        self.record_tenant(tid, eid, &x, &templated, &query, &secrets);
        self.record_time(&x);
        let (key, client) = identity::session_keys(&x, &self.opts.session_rules, input);
        let end = x.time.saturating_add(x.duration.unwrap_or_default());
        if let Some(c) = client {
            self.adopt(tid, c, key, x.time);
        }
        if self.step(tid, key, eid, x.time, end) {
            self.per_input.entry(input).or_default().sessions += 1;
        }
        self.maybe_sweep();
    }

    fn tenant_of(&self, x: &Exchange) -> (String, Option<usize>) {
        let rules = self.rules.as_deref().unwrap_or_default();
        rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.extract(x).map(|t| (t, Some(i))))
            .unwrap_or_else(|| ("default".to_string(), None))
    }

    fn tenant(&mut self, name: String, rule: Option<usize>) -> u32 {
        let name = if !self.tenant_ids.contains_key(&name)
            && self.tenants.len() >= self.opts.max_tenants
        {
            "other".to_string()
        } else {
            name
        };
        if let Some(&id) = self.tenant_ids.get(&name) {
            return id;
        }
        let id = self.tenants.len() as u32;
        let matched_by = rule.map(|r| self.rules.as_ref().expect("decided")[r].to_string());
        self.tenants.push(TenantB::new(name.clone(), matched_by));
        self.tenant_ids.insert(name, id);
        id
    }

    fn endpoint(&mut self, method: &str, t: &Templated) -> Option<u32> {
        let key = (method.to_string(), t.path.clone());
        if let Some(&id) = self.endpoint_ids.get(&key) {
            return Some(id);
        }
        if self.endpoints.len() >= self.opts.max_endpoints {
            return None;
        }
        let id = self.endpoints.len() as u32;
        self.endpoints.push(EndpointB {
            method: method.to_string(),
            path: t.path.clone(),
            slots: t
                .slots
                .iter()
                .map(|s| PathSlot {
                    segment: s.segment,
                    kind: s.kind.clone(),
                    pool: s.pool.clone(),
                })
                .collect(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            body: None,
            requests: 0,
            status: BTreeMap::new(),
            latency: Reservoir::default(),
            ttfb: Reservoir::default(),
        });
        self.endpoint_ids.insert(key, id);
        Some(id)
    }

    /// Query parameters as (name, kind, raw value); secrets left out.
    fn query_values(
        &self,
        x: &Exchange,
        secrets: &Secrets,
        rule: Option<usize>,
    ) -> Vec<(String, SlotKind, String)> {
        let tenant_param = match rule.map(|r| &self.rules.as_ref().expect("decided")[r]) {
            Some(TenantRule::Query(q)) => Some(q.as_str()),
            _ => None,
        };
        let Some(q) = &x.query else { return Vec::new() };
        query_pairs(q)
            .filter(|(k, _)| !is_secret_name(&decode(k)))
            .map(|(k, v)| {
                let name = decode(k);
                let kind = if tenant_param == Some(name.as_str()) {
                    SlotKind::Tenant
                } else if secrets.taints(v) {
                    SlotKind::Secret
                } else {
                    template::classify(&decode(v), &self.opts.slot_rules).unwrap_or(SlotKind::Text)
                };
                (k.to_string(), kind, v.to_string())
            })
            .collect()
    }

    fn count_redactions(&mut self, x: &Exchange) {
        for (name, _) in &x.headers {
            if header_use(name, &self.opts.keep_headers) == HeaderUse::Redact {
                self.redactions.count("header", name);
            }
        }
        if let Some(q) = &x.query {
            for (k, _) in query_pairs(q).filter(|(k, _)| is_secret_name(&decode(k))) {
                self.redactions.count("query", &decode(k));
            }
        }
        if x.path.split('/').any(template::is_jwt) {
            self.redactions.count("path", "token");
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_endpoint(
        &mut self,
        eid: u32,
        x: &Exchange,
        t: &Templated,
        query: &[(String, SlotKind, String)],
        secrets: &Secrets,
        tid: u32,
        rule: Option<usize>,
    ) {
        let tenant_header = match rule.map(|r| &self.rules.as_ref().expect("decided")[r]) {
            Some(TenantRule::Header(h)) => Some(h.clone()),
            _ => None,
        };
        let keep = self.opts.keep_headers.clone();
        let e = &mut self.endpoints[eid as usize];
        e.requests += 1;
        if let Some(s) = x.status {
            *e.status.entry(s).or_default() += 1;
        }
        if let Some(d) = x.duration {
            e.latency.add(d);
        }
        if let Some(d) = x.ttfb {
            e.ttfb.add(d);
        }
        for (name, kind, _) in query {
            let entry = e.query.entry(name.clone()).or_insert((kind.clone(), 0));
            entry.1 += 1;
            if entry.0 != *kind && entry.0 != SlotKind::Tenant {
                entry.0 = SlotKind::Text;
            }
        }
        for (name, value) in &x.headers {
            if e.headers.len() >= MAX_HEADERS
                || e.headers.contains_key(name)
                || Some(name) == tenant_header.as_ref()
            {
                continue;
            }
            if header_use(name, &keep) == HeaderUse::Keep && !secrets.taints(value) {
                e.headers.insert(name.clone(), value.clone());
            }
        }
        if e.body.is_none()
            && let Some(body) = &x.body
        {
            e.body = Some(PendingBody {
                body: body.clone(),
                secrets: secrets.clone(),
                known: slot_values(t, query),
                tenant: tid,
            });
        }
    }

    fn record_tenant(
        &mut self,
        tid: u32,
        eid: u32,
        x: &Exchange,
        t: &Templated,
        query: &[(String, SlotKind, String)],
        secrets: &Secrets,
    ) {
        let cap = self.opts.max_pool_values;
        let tenant = &mut self.tenants[tid as usize];
        tenant.requests += 1;
        *tenant.endpoints.entry(eid).or_default() += 1;
        for s in &t.slots {
            tenant.pool_value(&s.pool, &s.kind, &s.value, secrets, cap);
        }
        for (name, kind, value) in query {
            tenant.pool_value(&format!("query.{name}"), kind, value, secrets, cap);
        }
        if let Some(ua) = x.header("user-agent") {
            tenant.pool_value("header.user-agent", &SlotKind::Text, ua, secrets, cap);
        }
    }

    fn record_time(&mut self, x: &Exchange) {
        self.span = Some(match self.span {
            None => (x.time, x.time),
            Some((a, b)) => (a.min(x.time), b.max(x.time)),
        });
        self.watermark = Some(self.watermark.map_or(x.time, |w| w.max(x.time)));
        self.requests.add(x.time);
        if let Some(h) = &x.host
            && self.hosts.len() < MAX_HOSTS
        {
            self.hosts.insert(h.clone());
        }
    }

    /// A client that starts sending credentials keeps the session it began
    /// anonymously (its login request belongs to the session it opens).
    fn adopt(&mut self, tid: u32, client: u64, key: u64, now: Timestamp) {
        if self.open.contains_key(&(tid, key)) {
            return;
        }
        let recent = self
            .open
            .get(&(tid, client))
            .is_some_and(|s| now.saturating_since(s.last_end) <= self.opts.session_gap);
        if recent {
            let s = self.open.remove(&(tid, client)).expect("present");
            self.open.insert((tid, key), s);
        }
    }

    /// Appends a request to its session; true if it started a new one.
    fn step(&mut self, tid: u32, key: u64, eid: u32, start: Timestamp, end: Timestamp) -> bool {
        let gap = self.opts.session_gap;
        let k = (tid, key);
        if let Some(s) = self.open.get(&k)
            && start.saturating_since(s.last_end) > gap
            && start.saturating_since(s.last_start) > gap
        {
            let s = self.open.remove(&k).expect("present");
            self.tenants[tid as usize].close(&s);
        }
        let tenant = &mut self.tenants[tid as usize];
        match self.open.get_mut(&k) {
            Some(s) => {
                let think = start.saturating_since(s.last_end);
                tenant.transition(s.last_endpoint, eid, Some(think));
                sketch::record(&mut tenant.think, think);
                s.steps += 1;
                if s.steps > MAX_SHAPE_STEPS {
                    s.truncated = true;
                } else if s.node != NO_NODE {
                    s.node = tenant.child(s.node, eid);
                }
                s.last_endpoint = eid;
                s.last_start = s.last_start.max(start);
                s.last_end = s.last_end.max(end);
                false
            }
            None => {
                tenant.sessions += 1;
                tenant.arrivals.add(start);
                tenant.transition(START, eid, None);
                let node = tenant.child(0, eid);
                self.open.insert(
                    k,
                    Open {
                        last_start: start,
                        last_end: end,
                        last_endpoint: eid,
                        node,
                        steps: 1,
                        truncated: false,
                    },
                );
                true
            }
        }
    }

    fn maybe_sweep(&mut self) {
        self.since_sweep += 1;
        let Some(w) = self.watermark else { return };
        let due = self
            .swept_at
            .is_none_or(|s| w.saturating_since(s) >= self.opts.session_gap / 8);
        if self.since_sweep < SWEEP_EVERY || !due {
            return;
        }
        self.since_sweep = 0;
        self.swept_at = Some(w);
        let gap = self.opts.session_gap;
        let mut idle: Vec<((u32, u64), Timestamp)> = self
            .open
            .iter()
            .filter(|(_, s)| {
                w.saturating_since(s.last_end) > gap && w.saturating_since(s.last_start) > gap
            })
            .map(|(k, s)| (*k, s.last_end))
            .collect();
        self.close_sorted(&mut idle);
    }

    fn close_sorted(&mut self, keys: &mut [((u32, u64), Timestamp)]) {
        keys.sort_by_key(|(k, t)| (*t, *k));
        for (k, _) in keys.iter() {
            if let Some(s) = self.open.remove(k) {
                self.tenants[k.0 as usize].close(&s);
            }
        }
    }

    /// Ends the input: decides tenant rules if still undecided and closes
    /// every open session. `finish` does it too; calling it first makes the
    /// per-input tallies complete.
    pub fn settle(&mut self) {
        if self.rules.is_none() {
            self.choose_rules();
        }
        let mut all: Vec<_> = self.open.iter().map(|(k, s)| (*k, s.last_end)).collect();
        self.close_sorted(&mut all);
    }

    /// Closes every session and assembles the model. `inputs` are the read
    /// statistics, in input order. `None` if no exchange was added at all.
    pub fn finish(mut self, inputs: &[InputStats]) -> Option<Model> {
        self.settle();
        let (start, end) = self.span.or(self.seen)?;
        let width = self
            .tenants
            .iter()
            .map(|t| t.arrivals.width_secs())
            .chain([self.requests.width_secs()])
            .max()
            .unwrap_or(1);
        let width = SeriesBuilder::grid_width(width, start, end);
        let series = |b: &SeriesBuilder| Series {
            start: Timestamp::from_micros(start.unix_secs().div_euclid(width) * width * 1_000_000),
            bucket_ms: width as u64 * 1000,
            counts: b.on_grid(width, start, end),
        };
        // Endpoints sorted by path then method; indices remapped everywhere.
        let mut order: Vec<u32> = (0..self.endpoints.len() as u32).collect();
        order.sort_by(|a, b| {
            let (ea, eb) = (&self.endpoints[*a as usize], &self.endpoints[*b as usize]);
            (&ea.path, &ea.method).cmp(&(&eb.path, &eb.method))
        });
        let mut remap = vec![0usize; order.len()];
        for (new, old) in order.iter().enumerate() {
            remap[*old as usize] = new;
        }
        let mut endpoints: Vec<Endpoint> = order
            .iter()
            .map(|&i| {
                let e = &self.endpoints[i as usize];
                let body = e.body.as_ref().and_then(|p| {
                    let tainted = |v: &str| p.secrets.taints(v) || self.secret_index.taints(v);
                    let pool_of = &self.tenants[p.tenant as usize].pool_of;
                    body_template(&p.body, &tainted, &p.known, pool_of, &mut self.redactions)
                });
                e.to_model(body)
            })
            .collect();
        for e in &mut endpoints {
            scrub_endpoint(e, &self.secret_index, &mut self.redactions);
        }
        let total_sessions: u64 = self.tenants.iter().map(|t| t.sessions).sum();
        let total_requests: u64 = self.tenants.iter().map(|t| t.requests).sum();
        let mut tenants: Vec<Tenant> = self
            .tenants
            .iter()
            .map(|t| {
                t.to_model(
                    &remap,
                    total_sessions,
                    total_requests,
                    series(&t.arrivals),
                    self.opts.max_shapes,
                )
            })
            .collect();
        for (i, t) in tenants.iter_mut().enumerate() {
            scrub_tenant(t, i, &self.secret_index, &mut self.redactions);
        }
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        let mut filtered: BTreeMap<String, u64> = BTreeMap::new();
        for m in self.filtered.values() {
            for (r, n) in m {
                *filtered.entry(r.to_string()).or_default() += n;
            }
        }
        Some(Model {
            version: MODEL_VERSION,
            capture: CaptureInfo {
                start,
                end,
                span: end.saturating_since(start),
                requests: total_requests,
                sessions: total_sessions,
                requests_series: series(&self.requests),
                hosts: self.hosts.into_iter().collect(),
                sources: inputs.iter().map(source_info).collect(),
                filtered,
            },
            settings: Settings {
                tenant_rules: self
                    .rules
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                tenant_rules_automatic: self.opts.tenant_rules.is_none(),
                session_key: self
                    .opts
                    .session_rules
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                session_gap: self.opts.session_gap,
                keep_assets: self.opts.keep_assets,
                slot_rules: self
                    .opts
                    .slot_rules
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                kept_headers: self.opts.keep_headers.clone(),
            },
            endpoints,
            tenants,
            redactions: self
                .redactions
                .0
                .into_iter()
                .map(|((kind, name), count)| Redaction { kind, name, count })
                .collect(),
        })
    }

    /// Requests left out, by reason, for input number `input`.
    pub fn filtered(&self, input: usize) -> Option<&BTreeMap<&'static str, u64>> {
        self.filtered.get(&input)
    }

    /// What input number `input` contributed.
    pub fn tally(&self, input: usize) -> InputTally {
        self.per_input.get(&input).cloned().unwrap_or_default()
    }
}

fn source_info(s: &InputStats) -> SourceInfo {
    SourceInfo {
        name: s.name.clone(),
        format: s.format.map_or("unknown", |f| f.name()).to_string(),
        records: s.records,
        accepted: s.accepted,
        skipped: s.skipped.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        first_skips: s
            .first_skips
            .iter()
            .map(|(n, r)| format!("{}: {r}", s.location(*n)))
            .collect(),
    }
}

impl EndpointB {
    fn to_model(&self, body: Option<BodyTemplate>) -> Endpoint {
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
                    pool: format!("query.{name}"),
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

impl TenantB {
    fn new(name: String, matched_by: Option<String>) -> TenantB {
        TenantB {
            name,
            matched_by,
            sessions: 0,
            requests: 0,
            arrivals: SeriesBuilder::default(),
            think: sketch::duration_histogram(),
            lengths: BTreeMap::new(),
            nodes: vec![(NO_NODE, START)],
            children: HashMap::new(),
            ends: HashMap::new(),
            truncated: BTreeSet::new(),
            untracked: 0,
            transitions: HashMap::new(),
            endpoints: HashMap::new(),
            pools: HashMap::new(),
            pool_of: HashMap::new(),
        }
    }

    fn child(&mut self, node: u32, eid: u32) -> u32 {
        if let Some(&c) = self.children.get(&(node, eid)) {
            return c;
        }
        if self.nodes.len() >= MAX_TRIE_NODES {
            return NO_NODE;
        }
        let c = self.nodes.len() as u32;
        self.nodes.push((node, eid));
        self.children.insert((node, eid), c);
        c
    }

    fn transition(&mut self, from: u32, to: u32, think: Option<Duration>) {
        let t = self.transitions.entry((from, to)).or_default();
        t.0 += 1;
        if let Some(d) = think {
            t.1.add(d);
        }
    }

    fn close(&mut self, s: &Open) {
        self.transition(s.last_endpoint, END, None);
        *self.lengths.entry(s.steps).or_default() += 1;
        if s.node == NO_NODE {
            self.untracked += 1;
        } else {
            *self.ends.entry(s.node).or_default() += 1;
            if s.truncated {
                self.truncated.insert(s.node);
            }
        }
    }

    fn pool_value(
        &mut self,
        pool: &str,
        kind: &SlotKind,
        value: &str,
        secrets: &Secrets,
        cap: usize,
    ) {
        if matches!(kind, SlotKind::Tenant | SlotKind::Secret) || secrets.taints(value) {
            return;
        }
        let entry = self
            .pools
            .entry(pool.to_string())
            .or_insert_with(|| (kind.clone(), ValueCounter::default()));
        if entry.0 != *kind && entry.0 != SlotKind::Text {
            entry.0 = SlotKind::Text;
        }
        let was = entry.1.contains(value);
        entry.1.add(value, cap);
        if !was && entry.1.contains(value) && !pool.starts_with("header.") {
            self.pool_of
                .entry(value.to_string())
                .or_insert_with(|| pool.to_string());
        }
    }

    fn sequence(&self, mut node: u32) -> Vec<u32> {
        let mut steps = Vec::new();
        while node != 0 {
            let (parent, eid) = self.nodes[node as usize];
            steps.push(eid);
            node = parent;
        }
        steps.reverse();
        steps
    }

    fn to_model(
        &self,
        remap: &[usize],
        sessions: u64,
        requests: u64,
        arrivals: Series,
        max_shapes: usize,
    ) -> Tenant {
        let ep = |e: u32| remap[e as usize];
        let mut shapes: Vec<Shape> = self
            .ends
            .iter()
            .map(|(&node, &n)| Shape {
                steps: self.sequence(node).into_iter().map(ep).collect(),
                sessions: n,
                truncated: self.truncated.contains(&node),
            })
            .collect();
        shapes.sort_by(|a, b| {
            b.sessions
                .cmp(&a.sessions)
                .then_with(|| a.steps.cmp(&b.steps))
        });
        let dropped: u64 = shapes.iter().skip(max_shapes).map(|s| s.sessions).sum();
        shapes.truncate(max_shapes);
        let opt = |e: u32| (e != START && e != END).then(|| ep(e));
        let mut transitions: Vec<Transition> = self
            .transitions
            .iter()
            .map(|(&(f, t), (n, think))| Transition {
                from: opt(f),
                to: opt(t),
                count: *n,
                think_ms: think.distribution(),
            })
            .collect();
        transitions.sort_by_key(|a| (a.from, a.to));
        let share = |n: u64, of: u64| time::round3(100.0 * n as f64 / of.max(1) as f64) / 100.0;
        Tenant {
            name: self.name.clone(),
            matched_by: self.matched_by.clone(),
            sessions: self.sessions,
            requests: self.requests,
            session_share: share(self.sessions, sessions),
            request_share: share(self.requests, requests),
            arrivals,
            session_lengths: self.lengths.clone(),
            think_ms: Distribution::from_hdr(&self.think),
            shapes,
            other_shape_sessions: dropped + self.untracked,
            transitions,
            endpoints: self.endpoints.iter().map(|(&e, &n)| (ep(e), n)).collect(),
            pools: self
                .pools
                .iter()
                .map(|(k, (kind, c))| {
                    (
                        k.clone(),
                        Pool {
                            kind: kind.clone(),
                            values: c.sorted(),
                            other: c.other,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The values of this exchange's slots, by value → pool.
fn slot_values(t: &Templated, query: &[(String, SlotKind, String)]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for s in &t.slots {
        m.insert(s.value.clone(), s.pool.clone());
    }
    for (name, kind, v) in query {
        if !matches!(kind, SlotKind::Text | SlotKind::Tenant | SlotKind::Secret) {
            m.insert(v.clone(), format!("query.{name}"));
        }
    }
    m
}

/// Whether a body value is an identifier worth drawing from a pool (not a
/// quantity like `1` or a flag like `true`).
fn identifier_like(v: &str) -> bool {
    match template::classify(v, &[]) {
        Some(SlotKind::Id) => v.len() >= 3,
        Some(SlotKind::Text | SlotKind::Secret) | None => false,
        Some(_) => true,
    }
}

fn body_template(
    body: &Body,
    tainted: &dyn Fn(&str) -> bool,
    known: &HashMap<String, String>,
    pool_of: &HashMap<String, String>,
    red: &mut Redactions,
) -> Option<BodyTemplate> {
    let pool_for = |v: &str| -> Option<String> {
        known.get(v).cloned().or_else(|| {
            identifier_like(v)
                .then(|| pool_of.get(v).cloned())
                .flatten()
        })
    };
    match body {
        Body::Text { mime, text } => {
            if text.len() > MAX_BODY {
                return None;
            }
            let trimmed = text.trim_start();
            let json_like = mime.to_ascii_lowercase().contains("json")
                || trimmed.starts_with('{')
                || trimmed.starts_with('[');
            if json_like && let Ok(mut value) = serde_json::from_str::<Value>(text) {
                let redacted = redact::redact_json(&mut value, tainted, red);
                let mut slots = Vec::new();
                json_slots(&value, String::new(), &pool_for, &mut slots);
                return Some(BodyTemplate::Json {
                    mime: mime.clone(),
                    value,
                    slots,
                    redacted,
                });
            }
            if mime.to_ascii_lowercase().contains("x-www-form-urlencoded") {
                let params = query_pairs(text)
                    .map(|(k, v)| crate::capture::Param {
                        name: decode(k),
                        value: decode(v),
                        file_name: None,
                        content_type: None,
                    })
                    .collect::<Vec<_>>();
                return Some(form_template(mime, &params, tainted, &pool_for, red));
            }
            let lower = text.to_ascii_lowercase();
            let suspicious = [
                "password",
                "passwd",
                "secret",
                "token",
                "apikey",
                "api_key",
                "authorization",
            ]
            .iter()
            .any(|w| lower.contains(w));
            if suspicious || tainted(text) {
                red.count("body", mime);
                return None;
            }
            Some(BodyTemplate::Text {
                mime: mime.clone(),
                text: text.clone(),
            })
        }
        Body::Params { mime, params } => Some(form_template(mime, params, tainted, &pool_for, red)),
    }
}

fn json_slots(
    v: &Value,
    ptr: String,
    pool_for: &dyn Fn(&str) -> Option<String>,
    out: &mut Vec<BodySlot>,
) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                json_slots(
                    c,
                    format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1")),
                    pool_for,
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                json_slots(c, format!("{ptr}/{i}"), pool_for, out);
            }
        }
        Value::String(s) => {
            if let Some(pool) = pool_for(s) {
                out.push(BodySlot { pointer: ptr, pool });
            }
        }
        Value::Number(n) => {
            if let Some(pool) = pool_for(&n.to_string()) {
                out.push(BodySlot { pointer: ptr, pool });
            }
        }
        _ => {}
    }
}

fn form_template(
    mime: &str,
    params: &[crate::capture::Param],
    tainted: &dyn Fn(&str) -> bool,
    pool_for: &dyn Fn(&str) -> Option<String>,
    red: &mut Redactions,
) -> BodyTemplate {
    let mut out = Vec::new();
    let mut slots = Vec::new();
    let mut redacted = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let secret = is_secret_name(&p.name) || tainted(&p.value);
        let value = if secret {
            red.count("form-field", &p.name);
            redacted.push(p.name.clone());
            String::new()
        } else if p.file_name.is_some() {
            // File contents are not kept; the replay sends a same-named
            // placeholder.
            String::new()
        } else {
            p.value.clone()
        };
        if !secret && let Some(pool) = pool_for(&value) {
            slots.push(BodySlot {
                pointer: format!("/{i}"),
                pool,
            });
        }
        out.push(FormParam {
            name: p.name.clone(),
            value,
            file_name: p.file_name.clone(),
            content_type: p.content_type.clone(),
        });
    }
    BodyTemplate::Form {
        mime: mime.to_string(),
        params: out,
        slots,
        redacted,
    }
}

/// Removes from an endpoint what turned out to be a secret only later in the
/// capture: header values, and literal path segments (made `{secret}` slots).
fn scrub_endpoint(e: &mut Endpoint, index: &SecretIndex, red: &mut Redactions) {
    e.headers.retain(|name, v| {
        let keep = !index.taints(v);
        if !keep {
            red.count("header", name);
        }
        keep
    });
    let mut changed = false;
    let parts: Vec<String> = e
        .path
        .split('/')
        .enumerate()
        .map(|(i, seg)| {
            if seg.starts_with('{') || !index.taints(seg) {
                return seg.to_string();
            }
            red.count("path", "secret");
            e.slots.push(PathSlot {
                segment: i,
                kind: SlotKind::Secret,
                pool: "secret".into(),
            });
            changed = true;
            "{secret}".to_string()
        })
        .collect();
    if changed {
        e.path = parts.join("/");
        e.slots.sort_by_key(|s| s.segment);
    }
}

/// Drops pool values (and renames a tenant) that are known secrets.
fn scrub_tenant(t: &mut Tenant, i: usize, index: &SecretIndex, red: &mut Redactions) {
    for (name, pool) in &mut t.pools {
        pool.values.retain(|(v, _)| {
            let keep = !index.taints(v);
            if !keep {
                red.count("pool-value", name);
            }
            keep
        });
    }
    if index.taints(&t.name) {
        red.count("tenant-name", "secret");
        t.name = format!("tenant-{}", i + 1);
    }
}
