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

mod body;
mod endpoint;
mod open;
mod prep;
mod scrub;
mod tenant;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::identity::{self, SessionKeyRule, TenantRule};
use super::redact::{Policy, Redactions, SecretIndex};
use super::sketch::{self, SeriesBuilder};
use super::template::{self, SlotKind, SlotRule};
use super::*;
use crate::capture::{Exchange, InputStats};
use body::{PendingBody, body_template};
use endpoint::{EndpointB, QueryValue, query_pool};
use open::OpenSessions;
pub use prep::{Prep, Preparer, filter_reason};
use tenant::{NO_NODE, TenantB};

/// How a model is built.
#[derive(Clone, Debug)]
pub struct ModelOptions {
    /// Tenant rules, first match wins; none puts everything in `default`.
    pub tenant_rules: Vec<TenantRule>,
    /// The rules were chosen by [`choose_tenant_rules`], not given.
    pub tenant_rules_automatic: bool,
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
            tenant_rules: Vec::new(),
            tenant_rules_automatic: false,
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

/// How many exchanges [`choose_tenant_rules`] looks at.
pub const SAMPLE: usize = 1000;
/// Longest session sequence tracked as a shape.
const MAX_SHAPE_STEPS: u32 = 100;
const MAX_HOSTS: usize = 1000;
/// Sweep idle sessions after this many exchanges at most.
const SWEEP_EVERY: u64 = 8192;

/// Tenant rules guessed from a sample of the traffic (the first exchanges of
/// each input), when the user gave none.
pub fn choose_tenant_rules(opts: &ModelOptions, sample: &[Exchange]) -> Vec<TenantRule> {
    let kept: Vec<Exchange> = sample
        .iter()
        .filter(|x| filter_reason(opts, x).is_none())
        .cloned()
        .collect();
    identity::auto_tenant_rules(&kept)
}

/// Builds a [`Model`] from a stream of exchanges.
pub struct Modeller {
    opts: Arc<ModelOptions>,
    /// For exchanges added unprepared.
    preparer: Preparer,
    prep: Prep,
    policy: Policy,
    endpoints: Vec<EndpointB>,
    /// `METHOD /templated/path` → endpoint id.
    endpoint_ids: FxHashMap<Box<str>, u32>,
    tenants: Vec<TenantB>,
    tenant_ids: FxHashMap<String, u32>,
    open: OpenSessions,
    watermark: Option<Timestamp>,
    swept_at: Option<Timestamp>,
    since_sweep: u64,
    span: Option<(Timestamp, Timestamp)>,
    /// Span of everything read, filtered requests included.
    seen: Option<(Timestamp, Timestamp)>,
    requests: SeriesBuilder,
    hosts: BTreeSet<String>,
    filtered: BTreeMap<usize, BTreeMap<&'static str, u64>>,
    /// What each input contributed, by input index.
    per_input: Vec<Tally>,
    redactions: Redactions,
    secret_index: SecretIndex,
    pool_buf: String,
}

#[derive(Clone, Debug, Default)]
struct Tally {
    requests: u64,
    sessions: u64,
    /// A bit per tenant id.
    tenants: Vec<u64>,
}

impl Tally {
    fn add_tenant(&mut self, tid: u32) {
        let (word, bit) = (tid as usize / 64, tid % 64);
        if self.tenants.len() <= word {
            self.tenants.resize(word + 1, 0);
        }
        self.tenants[word] |= 1 << bit;
    }

    fn tenant_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.tenants.iter().enumerate().flat_map(|(w, bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| (w * 64 + b) as u32)
        })
    }
}

/// What one input contributed, for the import report.
#[derive(Clone, Debug, Default)]
pub struct InputTally {
    pub requests: u64,
    /// Sessions whose first request came from this input.
    pub sessions: u64,
    pub tenants: BTreeSet<String>,
}

impl Modeller {
    pub fn new(opts: ModelOptions) -> Modeller {
        let opts = Arc::new(opts);
        Modeller {
            preparer: Preparer::new(opts.clone()),
            prep: Prep::default(),
            policy: Policy::new(opts.keep_headers.clone()),
            opts,
            endpoints: Vec::new(),
            endpoint_ids: FxHashMap::default(),
            tenants: Vec::new(),
            tenant_ids: FxHashMap::default(),
            open: OpenSessions::default(),
            watermark: None,
            swept_at: None,
            since_sweep: 0,
            span: None,
            seen: None,
            requests: SeriesBuilder::default(),
            hosts: BTreeSet::new(),
            filtered: BTreeMap::new(),
            per_input: Vec::new(),
            redactions: Redactions::default(),
            secret_index: SecretIndex::default(),
            pool_buf: String::with_capacity(64),
        }
    }

    /// The options, shared with the preparers of the reader threads.
    pub fn options(&self) -> Arc<ModelOptions> {
        self.opts.clone()
    }

    /// Adds one exchange from input number `input`, preparing it here.
    pub fn add(&mut self, input: usize, x: &Exchange) {
        let mut p = std::mem::take(&mut self.prep);
        self.preparer.prepare(input, x, &mut p);
        self.add_prepared(input, x, &p);
        self.prep = p;
    }

    /// Adds one exchange that a [`Preparer`] has prepared.
    pub fn add_prepared(&mut self, input: usize, x: &Exchange, p: &Prep) {
        self.seen = Some(
            self.seen
                .map_or((x.time, x.time), |(a, b)| (a.min(x.time), b.max(x.time))),
        );
        if let Some(reason) = p.filter {
            self.filter(input, reason);
            return;
        }
        if !p.secrets.is_empty() {
            self.secret_index.add(&p.secrets);
        }
        let Some(eid) = self.endpoint(p) else {
            self.filter(input, "endpoint limit reached");
            return;
        };
        // Looked up already when the exchange was warmed: a name, once
        // known, keeps its id.
        let tid = match p.tenant_id.get() {
            Some(tid) => tid,
            None => self.tenant(&p.tenant, p.rule),
        };
        let tally = self.tally_mut(input);
        tally.requests += 1;
        tally.add_tenant(tid);
        for (kind, name) in &p.redactions {
            self.redactions.count(kind, name);
        }
        let query: SmallVec<[QueryValue; 4]> = p
            .query_values(x)
            .map(|(n, k, v)| (n, k.clone(), v))
            .collect();
        self.record_endpoint(eid, tid, x, p, &query);
        self.record_tenant(tid, eid, x, p, &query);
        self.record_time(x);
        let end = x.time.saturating_add(x.duration.unwrap_or_default());
        if let Some(c) = p.client {
            self.adopt(tid, c, p.session, x.time);
        }
        if self.step(tid, p.session, eid, x, end) {
            self.tally_mut(input).sessions += 1;
        }
        self.maybe_sweep();
    }

    /// Asks the CPU to fetch the open sessions a prepared exchange will
    /// look up, a few exchanges before it is added.
    pub fn warm(&self, p: &Prep) {
        if p.filter.is_some() {
            return;
        }
        // The tenant's id is found as `add_prepared` will find it (a new
        // tenant has no sessions to fetch).
        if let Some(&tid) = self.tenant_ids.get(p.tenant.as_str()) {
            p.tenant_id.set(Some(tid));
            self.open.prefetch((tid, p.session));
            if let Some(c) = p.client {
                self.open.prefetch((tid, c));
            }
        }
    }

    fn tally_mut(&mut self, input: usize) -> &mut Tally {
        if self.per_input.len() <= input {
            self.per_input.resize_with(input + 1, Tally::default);
        }
        &mut self.per_input[input]
    }

    fn filter(&mut self, input: usize, reason: &'static str) {
        *self
            .filtered
            .entry(input)
            .or_default()
            .entry(reason)
            .or_default() += 1;
    }

    fn tenant(&mut self, name: &str, rule: Option<usize>) -> u32 {
        if let Some(&id) = self.tenant_ids.get(name) {
            return id;
        }
        let name = if self.tenants.len() >= self.opts.max_tenants {
            "other"
        } else {
            name
        };
        if let Some(&id) = self.tenant_ids.get(name) {
            return id;
        }
        let id = self.tenants.len() as u32;
        let matched_by = self.rule(rule).map(ToString::to_string);
        self.tenants
            .push(TenantB::new(name.to_string(), matched_by));
        self.tenant_ids.insert(name.to_string(), id);
        id
    }

    fn rule(&self, i: Option<usize>) -> Option<&TenantRule> {
        i.and_then(|i| self.opts.tenant_rules.get(i))
    }

    /// The endpoint of the prepared key (`METHOD /template`), created on
    /// first sight unless the limit is reached.
    fn endpoint(&mut self, p: &Prep) -> Option<u32> {
        if let Some(&id) = self.endpoint_ids.get(p.key.as_str()) {
            return Some(id);
        }
        if self.endpoints.len() >= self.opts.max_endpoints {
            return None;
        }
        let id = self.endpoints.len() as u32;
        let (method, path) = p.method_and_path();
        let kinds: Vec<(usize, &SlotKind)> = p.slots.iter().map(|s| (s.segment, &s.kind)).collect();
        let pools = template::pool_names(path, &kinds);
        let slots = p
            .slots
            .iter()
            .zip(pools)
            .map(|(s, pool)| PathSlot {
                segment: s.segment,
                kind: s.kind.clone(),
                pool,
            })
            .collect();
        self.endpoints.push(EndpointB::new(method, path, slots));
        self.endpoint_ids.insert(p.key.as_str().into(), id);
        Some(id)
    }

    fn record_endpoint(
        &mut self,
        eid: u32,
        tid: u32,
        x: &Exchange,
        p: &Prep,
        query: &[QueryValue],
    ) {
        let tenant_header = match p.rule.and_then(|i| self.opts.tenant_rules.get(i)) {
            Some(TenantRule::Header(h)) => Some(h.as_str()),
            _ => None,
        };
        let e = &mut self.endpoints[eid as usize];
        e.record(x, query, &p.secrets, &self.policy, tenant_header);
        if e.body.is_none()
            && let Some(body) = &x.body
        {
            let mut known = FxHashMap::default();
            for (s, slot) in p.slots.iter().zip(&e.slots) {
                known.insert(
                    p.slot_value(x, s).to_string(),
                    (slot.pool.clone(), Some(slot.segment)),
                );
            }
            for (name, kind, v) in query {
                if !matches!(kind, SlotKind::Text | SlotKind::Tenant | SlotKind::Secret) {
                    known
                        .entry(v.to_string())
                        .or_insert_with(|| (query_pool(name), None));
                }
            }
            e.body = Some(PendingBody {
                body: body.clone(),
                secrets: p.secrets.clone(),
                known,
                tenant: tid,
            });
        }
    }

    fn record_tenant(&mut self, tid: u32, eid: u32, x: &Exchange, p: &Prep, query: &[QueryValue]) {
        let cap = self.opts.max_pool_values;
        let tenant = &mut self.tenants[tid as usize];
        tenant.requests += 1;
        *tenant.endpoints.entry(eid).or_default() += 1;
        for (s, slot) in p.slots.iter().zip(&self.endpoints[eid as usize].slots) {
            tenant.pool_value(&slot.pool, &s.kind, p.slot_value(x, s), &p.secrets, cap);
        }
        for (name, kind, value) in query {
            self.pool_buf.clear();
            self.pool_buf.push_str("query.");
            self.pool_buf.push_str(name);
            tenant.pool_value(&self.pool_buf, kind, value, &p.secrets, cap);
        }
        // Every body's text fields, by tenant: those whose values vary
        // become slots when the model is written.
        if let Some(b) = &x.body {
            let e = &self.endpoints[eid as usize];
            let endpoint = format!("{} {}", e.method, e.path);
            body::body_fields(b, |field, value| {
                let kind = match template::classify(value, &[]) {
                    Some(SlotKind::Token | SlotKind::Secret | SlotKind::Tenant) => return,
                    Some(k) => k,
                    None => SlotKind::Text,
                };
                let pool = body::field_pool(&endpoint, field);
                tenant.pool_value(&pool, &kind, value, &p.secrets, cap);
            });
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
            && !self.hosts.contains(h)
        {
            self.hosts.insert(h.clone());
        }
    }

    /// A client that starts sending credentials keeps the session it began
    /// anonymously (its login request belongs to the session it opens).
    fn adopt(&mut self, tid: u32, client: u64, key: u64, now: Timestamp) {
        if self.open.contains_key((tid, key)) {
            return;
        }
        let recent = self
            .open
            .get((tid, client))
            .is_some_and(|s| now.saturating_since(s.last_end) <= self.opts.session_gap);
        if recent {
            let s = self.open.remove((tid, client)).expect("present");
            self.open.insert((tid, key), s);
        }
    }

    /// Appends a request to its session; true if it started a new one. The
    /// user agent is pooled once per session (replay picks one per session).
    /// The agent is looked up only then: finding it on every request
    /// touched the exchange's header strings, cache misses on this thread.
    fn step(&mut self, tid: u32, key: u64, eid: u32, x: &Exchange, end: Timestamp) -> bool {
        let start = x.time;
        let agent = || x.header("user-agent");
        let gap = self.opts.session_gap;
        let k = (tid, key);
        let tenant = &mut self.tenants[tid as usize];
        match self.open.get_mut(k) {
            // Idle for longer than the gap: the old session ends here and a
            // new one takes its place.
            Some(s)
                if start.saturating_since(s.last_end) > gap
                    && start.saturating_since(s.last_start) > gap =>
            {
                tenant.close(s);
                *s = tenant.open_session(start, end, eid, agent(), self.opts.max_pool_values);
                true
            }
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
                let open = tenant.open_session(start, end, eid, agent(), self.opts.max_pool_values);
                self.open.insert(k, open);
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
            if let Some(s) = self.open.remove(*k) {
                self.tenants[k.0 as usize].close(&s);
            }
        }
    }

    /// Ends the input: closes every open session. `finish` does it too;
    /// calling it first makes the per-input tallies complete.
    pub fn settle(&mut self) {
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
        // Body fields whose recorded values differ (within a tenant or from
        // one tenant to the next).
        let mut field_values: FxHashMap<&str, Option<&str>> = FxHashMap::default();
        let mut varying: BTreeSet<String> = BTreeSet::new();
        for t in &self.tenants {
            for pool in t.pool_names().filter(|n| n.starts_with(body::FIELD_POOL)) {
                for v in t.pool_values(pool) {
                    match field_values.entry(pool).or_insert(Some(v)) {
                        Some(first) if *first != v => {
                            varying.insert(pool.to_string());
                        }
                        _ => {}
                    }
                }
            }
        }
        drop(field_values);
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut endpoints: Vec<Endpoint> = order
            .iter()
            .map(|&i| {
                let e = &self.endpoints[i as usize];
                let endpoint = format!("{} {}", e.method, e.path);
                let body = e.body.as_ref().and_then(|p| {
                    let tainted = |v: &str| p.secrets.taints(v) || self.secret_index.taints(v);
                    let pool_of = &self.tenants[p.tenant as usize].pool_of;
                    let vary = |field: &str| {
                        let pool = body::field_pool(&endpoint, field);
                        varying.contains(&pool).then_some(pool)
                    };
                    body_template(
                        &p.body,
                        &tainted,
                        &p.known,
                        pool_of,
                        &vary,
                        &mut self.redactions,
                    )
                });
                if let Some(BodyTemplate::Json { slots, .. } | BodyTemplate::Form { slots, .. }) =
                    &body
                {
                    used.extend(slots.iter().map(|s| s.pool.clone()));
                }
                e.to_model(body)
            })
            .collect();
        // The other body pools were only candidates.
        for t in &mut self.tenants {
            t.retain_pools(|name| !name.starts_with(body::FIELD_POOL) || used.contains(name));
        }
        for e in &mut endpoints {
            scrub::endpoint(e, &self.secret_index, &mut self.redactions);
        }
        let total_sessions: u64 = self.tenants.iter().map(|t| t.sessions).sum();
        let total_requests: u64 = self.tenants.iter().map(|t| t.requests).sum();
        let max_shapes = self.opts.max_shapes;
        let mut tenants: Vec<Tenant> = self
            .tenants
            .iter()
            .map(|t| {
                t.to_model(
                    &remap,
                    total_sessions,
                    total_requests,
                    series(&t.arrivals),
                    max_shapes,
                )
            })
            .collect();
        for (i, t) in tenants.iter_mut().enumerate() {
            scrub::tenant(t, i, &self.secret_index, &mut self.redactions);
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
                tenant_rules: strings(&self.opts.tenant_rules),
                tenant_rules_automatic: self.opts.tenant_rules_automatic,
                session_key: self
                    .opts
                    .session_rules
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                session_gap: self.opts.session_gap,
                keep_assets: self.opts.keep_assets,
                slot_rules: strings(&self.opts.slot_rules),
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
        let t = self.per_input.get(input).cloned().unwrap_or_default();
        InputTally {
            requests: t.requests,
            sessions: t.sessions,
            tenants: t
                .tenant_ids()
                .map(|i| self.tenants[i as usize].name.clone())
                .collect(),
        }
    }
}

fn strings<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The import loop warms each exchange a few places before adding it,
    /// and `add_prepared` then uses the tenant id found while warming. The
    /// model must come out the same as from adding the exchanges one by
    /// one, also past `max_tenants`, where names fold into `other` and are
    /// never found while warming.
    #[test]
    fn warming_ahead_changes_nothing() {
        let opts = ModelOptions {
            tenant_rules: vec![TenantRule::PathSegment(2)],
            max_tenants: 3,
            ..ModelOptions::default()
        };
        let xs: Vec<Exchange> = (0..4000i64)
            .map(|i| Exchange {
                time: Timestamp::from_micros(1_700_000_000_000_000 + i * 350_000),
                method: "GET".into(),
                path: format!("/t/tenant{}/orders/{}", i % 7, i % 97),
                client: Some(format!("10.0.0.{}", i % 41)),
                status: Some(200),
                ..Exchange::default()
            })
            .collect();
        let mut one_by_one = Modeller::new(opts.clone());
        for x in &xs {
            one_by_one.add(0, x);
        }
        let mut warmed = Modeller::new(opts);
        let mut preparer = Preparer::new(warmed.options());
        let preps: Vec<Prep> = xs
            .iter()
            .map(|x| {
                let mut p = Prep::default();
                preparer.prepare(0, x, &mut p);
                p
            })
            .collect();
        let mut found = 0;
        for (i, x) in xs.iter().enumerate() {
            if let Some(ahead) = preps.get(i + 6) {
                warmed.warm(ahead);
            }
            found += usize::from(preps[i].tenant_id.get().is_some());
            warmed.add_prepared(0, x, &preps[i]);
        }
        assert!(found > 1000 && found < 3500, "ids found ahead: {found}");
        let stats = [InputStats::new("log")];
        let want = one_by_one.finish(&stats).unwrap().to_json();
        let got = warmed.finish(&stats).unwrap().to_json();
        assert!(want.contains("\"other\""), "tenants folded into other");
        assert!(got == want, "the same model");
    }

    /// Body text fields that vary become per-tenant slots, for JSON and for
    /// urlencoded text (as pcaps and HAR postData.text carry forms); repeated
    /// form names are fields of their own; a path pool that happens to be
    /// called `body.id` is left alone; secrets reach no pool.
    #[test]
    fn varying_body_fields_become_per_tenant_slots() {
        use crate::capture::Body;
        let opts = ModelOptions {
            tenant_rules: vec![TenantRule::PathSegment(2)],
            ..ModelOptions::default()
        };
        let mut m = Modeller::new(opts);
        let mut at = 1_700_000_000_000_000i64;
        let mut add = |m: &mut Modeller, tenant: &str, path: &str, body: Option<Body>| {
            at += 400_000;
            m.add(
                0,
                &Exchange {
                    time: Timestamp::from_micros(at),
                    method: if body.is_some() { "POST" } else { "GET" }.into(),
                    path: format!("/t/{tenant}{path}"),
                    client: Some(format!("10.0.0.{}", at % 50)),
                    status: Some(200),
                    body,
                    ..Exchange::default()
                },
            );
        };
        let form = |text: String| Body::Text {
            mime: "application/x-www-form-urlencoded".into(),
            text,
        };
        for i in 0..20 {
            for tenant in ["acme", "globex"] {
                add(
                    &mut m,
                    tenant,
                    "/login",
                    Some(form(format!(
                        "user=u{i}%40{tenant}.example&pass=hunter{i}&tags=a&tags=b{i}&plan=gold"
                    ))),
                );
                add(
                    &mut m,
                    tenant,
                    "/signup",
                    Some(Body::Text {
                        mime: "application/json".into(),
                        text: format!(
                            r#"{{"email":"n{i}@{tenant}.example","password":"pw{i}","lang":"en"}}"#
                        ),
                    }),
                );
                add(&mut m, tenant, &format!("/body/{}", 100 + i), None);
            }
        }
        let model = m.finish(&[InputStats::new("log")]).unwrap();
        let slots = |path: &str| -> Vec<(String, String)> {
            let e = model.endpoints.iter().find(|e| e.path == path).expect(path);
            match e.body.as_ref().expect("a body") {
                BodyTemplate::Json { slots, .. } | BodyTemplate::Form { slots, .. } => slots
                    .iter()
                    .map(|s| (s.pointer.clone(), s.pool.clone()))
                    .collect(),
                BodyTemplate::Text { .. } => vec![],
            }
        };
        let p = |e: &str, f: &str| format!("body#POST /t/{{tenant}}/{e}#{f}");
        // user (index 0) and the second `tags` (index 3) vary; the first
        // `tags`, `plan` and the password do not become slots.
        assert_eq!(
            slots("/t/{tenant}/login"),
            vec![
                ("/0".into(), p("login", "/user")),
                ("/3".into(), p("login", "/tags#2"))
            ]
        );
        assert_eq!(
            slots("/t/{tenant}/signup"),
            vec![("/email".into(), p("signup", "/email"))]
        );
        for t in &model.tenants {
            let users = &t.pools[&p("login", "/user")].values;
            assert_eq!(users.len(), 20, "{}", t.name);
            assert!(
                users
                    .iter()
                    .all(|(v, _)| v.ends_with(&format!("@{}.example", t.name)))
            );
            assert!(
                t.pools.contains_key("body.id"),
                "the path pool of /body/{{id}}"
            );
            assert!(
                !t.pools
                    .keys()
                    .any(|k| k.contains("pass") || k.ends_with("/lang")),
                "{:?}",
                t.pools.keys()
            );
            let json = serde_json::to_string(&t.pools).unwrap();
            assert!(
                !json.contains("hunter") && !json.contains("\"pw1"),
                "{json}"
            );
        }
    }
}
