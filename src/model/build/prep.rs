//! The stateless half of modelling, run on the reader threads: for each
//! exchange, whether it is filtered, its tenant, its templated endpoint key
//! and slot values, its query parameters, its secrets and its session
//! identity. The modeller then only updates shared tallies.

use std::sync::Arc;

use smallvec::SmallVec;

use super::super::identity::{self, TenantRule, decode, query_pairs};
use super::super::redact::{Policy, Secrets};
use super::super::template::{self, SlotKind, SlotValue};
use super::ModelOptions;
use crate::capture::{Exchange, Refill, prefetch};

/// What was worked out for one exchange. Reused from exchange to exchange.
#[derive(Default)]
pub struct Prep {
    /// Why the exchange is left out, if it is.
    pub filter: Option<&'static str>,
    pub tenant: String,
    /// Index of the tenant rule that found the tenant.
    pub rule: Option<usize>,
    /// `METHOD /templated/path`.
    pub key: String,
    pub method_len: usize,
    pub slots: Vec<PrepSlot>,
    pub query: Vec<PrepQuery>,
    pub secrets: Secrets,
    /// What the exchange carried that must not be stored: (kind, name).
    pub redactions: Vec<(&'static str, String)>,
    /// Session identity, and the client's own when different.
    pub session: u64,
    pub client: Option<u64>,
    /// The modeller's id for `tenant`, when it looked it up ahead of time
    /// (see `Modeller::warm`): cleared by `prepare`, set by the merging
    /// thread.
    pub tenant_id: std::cell::Cell<Option<u32>>,
}

/// A path slot: its segment, kind, and value as a byte range of the path.
pub struct PrepSlot {
    pub segment: usize,
    pub kind: SlotKind,
    pub value: (usize, usize),
}

/// A query parameter: name and value as byte ranges of the query.
pub struct PrepQuery {
    pub name: (usize, usize),
    pub kind: SlotKind,
    pub value: (usize, usize),
}

impl Prep {
    pub fn slot_value<'a>(&self, x: &'a Exchange, s: &PrepSlot) -> &'a str {
        &x.path[s.value.0..s.value.1]
    }

    /// (raw name, kind, raw value) of each query parameter.
    pub fn query_values<'a>(
        &'a self,
        x: &'a Exchange,
    ) -> impl Iterator<Item = (&'a str, &'a SlotKind, &'a str)> {
        let q = x.query.as_deref().unwrap_or("");
        self.query
            .iter()
            .map(move |p| (&q[p.name.0..p.name.1], &p.kind, &q[p.value.0..p.value.1]))
    }

    /// Asks the CPU to fetch the heap memory the modeller reads of this
    /// exchange and its preparation. They were filled on another thread,
    /// so each string and list was a cache miss on the merging thread
    /// (about a third of its time, in `perf`); fetched a few exchanges
    /// ahead, they arrive while earlier ones are modelled.
    pub fn warm(&self, x: &Exchange) {
        prefetch(x.path.as_ptr());
        if let Some(q) = &x.query {
            prefetch(q.as_ptr());
        }
        self.warm_buffers();
    }

    /// The endpoint key's method and path.
    pub fn method_and_path(&self) -> (&str, &str) {
        (
            &self.key[..self.method_len],
            &self.key[self.method_len + 1..],
        )
    }
}

impl Refill for Prep {
    /// The preparation's own buffers: read by the modeller on another
    /// thread, and written again when a reader thread reuses the item.
    fn warm_buffers(&self) {
        prefetch(self.key.as_ptr());
        prefetch(self.tenant.as_ptr());
        // Two slots take more than a line.
        prefetch(self.slots.as_ptr().cast());
        prefetch(self.slots.as_ptr().wrapping_add(1).cast());
        prefetch(self.query.as_ptr().cast());
    }
}

/// Why an exchange is left out of the model, if it is.
pub fn filter_reason(opts: &ModelOptions, x: &Exchange) -> Option<&'static str> {
    if x.status == Some(101)
        || x.header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
    {
        return Some("websocket");
    }
    if x.method == "CONNECT" {
        return Some("CONNECT tunnel");
    }
    if x.path.len() > crate::model::MAX_VALUE_LEN {
        // A model holds no longer path (replay could not send it either:
        // servers refuse request lines far shorter).
        return Some("path longer than 64 KiB");
    }
    if !opts.methods.is_empty() && !opts.methods.contains(&x.method) {
        return Some("method not selected");
    }
    if !opts.keep_assets && template::is_asset(&x.path, x.response_type.as_deref()) {
        return Some("static asset");
    }
    let excluded = opts.include.as_ref().is_some_and(|r| !r.is_match(&x.path))
        || opts.exclude.as_ref().is_some_and(|r| r.is_match(&x.path));
    excluded.then_some("excluded by path filter")
}

/// Where `part`, a slice of `whole`, lies in it.
fn offset(whole: &str, part: &str) -> (usize, usize) {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize);
    match start {
        Some(s) if s + part.len() <= whole.len() => (s, s + part.len()),
        _ => {
            debug_assert!(false, "a slot value that is not part of its text");
            (0, 0)
        }
    }
}

/// Prepares exchanges; one per reader thread (it caches policy answers).
pub struct Preparer {
    opts: Arc<ModelOptions>,
    policy: Policy,
}

impl Preparer {
    pub fn new(opts: Arc<ModelOptions>) -> Preparer {
        Preparer {
            policy: Policy::new(opts.keep_headers.clone()),
            opts,
        }
    }

    fn rule(&self, i: Option<usize>) -> Option<&TenantRule> {
        i.and_then(|i| self.opts.tenant_rules.get(i))
    }

    /// Works out `p` for exchange `x` of input number `input`.
    pub fn prepare(&mut self, input: usize, x: &Exchange, p: &mut Prep) {
        p.tenant_id.set(None);
        p.filter = filter_reason(&self.opts, x);
        if p.filter.is_some() {
            return;
        }
        let found = self
            .opts
            .tenant_rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.extract(x).map(|t| (t, i)));
        p.tenant.clear();
        match found {
            Some((t, i)) => {
                p.tenant.push_str(&t);
                p.rule = Some(i);
            }
            None => {
                p.tenant.push_str("default");
                p.rule = None;
            }
        }
        p.redactions.clear();
        let redactions = &mut p.redactions;
        p.secrets = Secrets::gather(x, &self.policy, &mut |kind, name| {
            redactions.push((kind, name.to_string()))
        });
        self.template(x, p);
        // A token in the path: templating made every such segment a slot,
        // so only the slots are looked at (searching the whole path for
        // `/eyJ` cost 3% of the import's instructions).
        if p.slots.iter().any(|s| template::is_jwt(p.slot_value(x, s))) {
            p.redactions.push(("path", "token".into()));
        }
        self.query(x, p);
        let (session, client) = identity::session_keys(x, &self.opts.session_rules, input);
        p.session = session;
        p.client = client;
    }

    fn template(&self, x: &Exchange, p: &mut Prep) {
        let tenant_segment = match self.rule(p.rule) {
            Some(TenantRule::PathSegment(n)) => Some(*n),
            _ => None,
        };
        p.key.clear();
        p.key.push_str(&x.method);
        p.key.push(' ');
        p.method_len = x.method.len();
        let mut values: SmallVec<[SlotValue; 6]> = SmallVec::new();
        template::template_into(
            &x.path,
            tenant_segment,
            &self.opts.slot_rules,
            &mut p.key,
            &mut values,
        );
        p.slots.clear();
        p.slots.extend(values.into_iter().map(|v| PrepSlot {
            segment: v.segment,
            kind: v.kind,
            value: offset(&x.path, v.value),
        }));
    }

    fn query(&self, x: &Exchange, p: &mut Prep) {
        p.query.clear();
        let Some(q) = x.query.as_deref() else { return };
        let tenant_param = match self.rule(p.rule) {
            Some(TenantRule::Query(name)) => Some(name.as_str()),
            _ => None,
        };
        for (k, v) in query_pairs(q) {
            if self.policy.secret_param(k) {
                continue;
            }
            let kind = if tenant_param.is_some_and(|t| decode(k) == t) {
                SlotKind::Tenant
            } else if p.secrets.taints(v) {
                SlotKind::Secret
            } else {
                template::classify(&decode(v), &self.opts.slot_rules).unwrap_or(SlotKind::Text)
            };
            p.query.push(PrepQuery {
                name: offset(q, k),
                kind,
                value: offset(q, v),
            });
        }
    }
}
