//! One tenant's tallies while importing: sessions as a trie of endpoint
//! sequences, transitions with think times, arrivals, value pools.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::super::redact::Secrets;
use super::super::sketch::{self, Reservoir, SeriesBuilder, ValueCounter};
use super::super::{
    Distribution, Pool, Series, Shape, SlotKind, Tenant, Timestamp, Transition, time,
};

pub(super) const START: u32 = u32::MAX;
pub(super) const END: u32 = u32::MAX - 1;
pub(super) const NO_NODE: u32 = u32::MAX;
/// Children of a trie node kept in the node itself.
const FEW: usize = 4;

/// Trie nodes per tenant before new shapes stop being tracked.
const MAX_TRIE_NODES: usize = 50_000;

/// An open session: its last step and where its sequence is in the trie.
pub(super) struct Open {
    pub last_start: Timestamp,
    pub last_end: Timestamp,
    pub last_endpoint: u32,
    pub node: u32,
    pub steps: u32,
    pub truncated: bool,
}

pub(super) struct PoolB {
    kind: SlotKind,
    values: ValueCounter,
}

pub(super) struct TenantB {
    pub name: String,
    pub matched_by: Option<String>,
    pub sessions: u64,
    pub requests: u64,
    pub arrivals: SeriesBuilder,
    pub think: Histogram<u64>,
    lengths: BTreeMap<u32, u64>,
    /// Trie of endpoint sequences: node → (parent, endpoint).
    nodes: Vec<(u32, u32)>,
    /// Per node, its first [`FEW`] children as (endpoint, child): one
    /// look at the node's entry finds most steps. A hash map for every
    /// child missed the cache on each step (11% of the merging thread).
    kids: Vec<SmallVec<[(u32, u32); FEW]>>,
    /// Children past the first [`FEW`] of a node, by (node, endpoint).
    more_kids: FxHashMap<(u32, u32), u32>,
    ends: FxHashMap<u32, u64>,
    truncated: BTreeSet<u32>,
    untracked: u64,
    transitions: FxHashMap<(u32, u32), (u64, Reservoir)>,
    pub endpoints: FxHashMap<u32, u64>,
    pools: FxHashMap<String, PoolB>,
    /// Pool values seen, for recognising them in bodies.
    pub pool_of: FxHashMap<String, String>,
}

impl TenantB {
    pub fn new(name: String, matched_by: Option<String>) -> TenantB {
        TenantB {
            name,
            matched_by,
            sessions: 0,
            requests: 0,
            arrivals: SeriesBuilder::default(),
            think: sketch::duration_histogram(),
            lengths: BTreeMap::new(),
            nodes: vec![(NO_NODE, START)],
            kids: vec![SmallVec::new()],
            more_kids: FxHashMap::default(),
            ends: FxHashMap::default(),
            truncated: BTreeSet::new(),
            untracked: 0,
            transitions: FxHashMap::default(),
            endpoints: FxHashMap::default(),
            pools: FxHashMap::default(),
            pool_of: FxHashMap::default(),
        }
    }

    /// The trie node after `node` when the next step is `eid`.
    pub fn child(&mut self, node: u32, eid: u32) -> u32 {
        let kids = &self.kids[node as usize];
        if let Some(&(_, c)) = kids.iter().find(|(e, _)| *e == eid) {
            return c;
        }
        let full = kids.len() == FEW;
        if full && let Some(&c) = self.more_kids.get(&(node, eid)) {
            return c;
        }
        if self.nodes.len() >= MAX_TRIE_NODES {
            return NO_NODE;
        }
        let c = self.nodes.len() as u32;
        self.nodes.push((node, eid));
        self.kids.push(SmallVec::new());
        if full {
            self.more_kids.insert((node, eid), c);
        } else {
            self.kids[node as usize].push((eid, c));
        }
        c
    }

    pub fn transition(&mut self, from: u32, to: u32, think: Option<Duration>) {
        let t = self.transitions.entry((from, to)).or_default();
        t.0 += 1;
        if let Some(d) = think {
            t.1.add(d);
        }
    }

    /// A new session of this tenant starting with endpoint `eid`; its user
    /// agent is pooled once per session (replay picks one per session).
    pub fn open_session(
        &mut self,
        start: Timestamp,
        end: Timestamp,
        eid: u32,
        agent: Option<&str>,
        cap: usize,
    ) -> Open {
        self.sessions += 1;
        self.arrivals.add(start);
        if let Some(ua) = agent {
            self.pool_value(
                "header.user-agent",
                &SlotKind::Text,
                ua,
                &Secrets::default(),
                cap,
            );
        }
        self.transition(START, eid, None);
        Open {
            last_start: start,
            last_end: end,
            last_endpoint: eid,
            node: self.child(0, eid),
            steps: 1,
            truncated: false,
        }
    }

    pub fn close(&mut self, s: &Open) {
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

    /// Records a slot value in a pool, unless it is the tenant itself or a
    /// secret.
    pub fn pool_value(
        &mut self,
        pool: &str,
        kind: &SlotKind,
        value: &str,
        secrets: &Secrets,
        cap: usize,
    ) {
        // A value past what a model may hold (a 100 KB GraphQL query) is
        // not replayable as a pool draw anyway.
        if matches!(kind, SlotKind::Tenant | SlotKind::Secret)
            || value.len() > crate::model::MAX_VALUE_LEN
            || secrets.taints(value)
        {
            return;
        }
        let entry = match self.pools.get_mut(pool) {
            Some(p) => p,
            None => self.pools.entry(pool.to_string()).or_insert(PoolB {
                kind: kind.clone(),
                values: ValueCounter::default(),
            }),
        };
        if entry.kind != *kind && entry.kind != SlotKind::Text {
            entry.kind = SlotKind::Text;
        }
        if entry.values.add(value, cap)
            && !pool.starts_with("header.")
            && !pool.starts_with(super::body::FIELD_POOL)
            && !self.pool_of.contains_key(value)
        {
            self.pool_of.insert(value.to_string(), pool.to_string());
        }
    }

    /// The values kept in `pool` (none if there is no such pool).
    pub fn pool_values(&self, pool: &str) -> impl Iterator<Item = &str> {
        self.pools
            .get(pool)
            .into_iter()
            .flat_map(|p| p.values.keys())
    }

    /// Every pool's name.
    pub fn pool_names(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(String::as_str)
    }

    /// Drops the pools `keep` says no to.
    pub fn retain_pools(&mut self, keep: impl Fn(&str) -> bool) {
        self.pools.retain(|k, _| keep(k));
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

    /// The model's view of this tenant. `remap` maps endpoint ids to their
    /// final indices; shares are of `sessions` and `requests` in all.
    pub fn to_model(
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
                .map(|(k, p)| {
                    (
                        k.clone(),
                        Pool {
                            kind: p.kind.clone(),
                            values: p.values.sorted(),
                            other: p.values.other,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's children are found again whether they live in the node or
    /// past its first few, and each path leads back to its steps.
    #[test]
    fn trie_children_are_stable_past_the_first_few() {
        let mut t = TenantB::new("a".into(), None);
        let mut seen = std::collections::HashMap::new();
        for round in 0..3 {
            for first in 0..(FEW as u32 + 5) {
                let a = t.child(0, first);
                for second in 0..(FEW as u32 + 3) {
                    let b = t.child(a, second);
                    let before = *seen.entry((a, second)).or_insert(b);
                    assert_eq!(b, before, "round {round}");
                    assert_eq!(t.sequence(b), vec![first, second]);
                }
            }
        }
        let distinct: std::collections::HashSet<u32> = seen.values().copied().collect();
        assert_eq!(distinct.len(), seen.len());
        assert_eq!(t.nodes.len(), 1 + (FEW + 5) + (FEW + 5) * (FEW + 3));
    }

    #[test]
    fn the_trie_stops_growing_at_its_cap() {
        let mut t = TenantB::new("a".into(), None);
        let mut node = 0;
        for step in 0..MAX_TRIE_NODES as u32 + 10 {
            node = match t.child(node, step % 7) {
                NO_NODE => break,
                c => c,
            };
        }
        assert_eq!(t.nodes.len(), MAX_TRIE_NODES);
        assert_eq!(t.child(node, 99), NO_NODE);
        assert_eq!(t.child(0, 0), 1, "existing children are still found");
    }
}
