//! What a session does: its endpoint sequence and think times.
//!
//! Recorded mode draws one of the tenant's recorded shapes by weight (the
//! sessions whose shape is not listed are walked on the transition model);
//! synth mode always walks the transition model. Think times come from the
//! recorded distribution of the transition (the tenant's overall one when the
//! transition has none), scaled.

use std::collections::HashMap;
use std::time::Duration;

use rand::RngExt;
use rand::rngs::SmallRng;

use super::sample::Weighted;
use super::{Arrival, SessionMode};
use crate::model::{Distribution, Model, Tenant};

/// Longest session a walk of the transition model makes.
const MAX_STEPS: usize = 1000;

/// A planned session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionPlan<'a> {
    pub index: u64,
    /// Index in the plan's tenants.
    pub tenant: usize,
    pub steps: Vec<Step>,
    /// The user agent this session sends, drawn from the tenant's clients.
    pub agent: Option<&'a str>,
}

/// One request of a session.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Endpoint index in the model.
    pub endpoint: usize,
    /// Think time before this request (after the previous response).
    pub think: Duration,
}

impl Step {
    /// A step to `endpoint`, its think time still to be drawn.
    fn to(endpoint: usize) -> Step {
        Step {
            endpoint,
            think: Duration::ZERO,
        }
    }
}

/// Outgoing transitions of one state (an endpoint, or the session start).
#[derive(Debug)]
struct Outgoing {
    pick: Weighted,
    /// `to` (None: the session ends) and its think-time distribution.
    to: Vec<(Option<usize>, Option<Distribution>)>,
}

/// A tenant's sessions, ready to be drawn.
#[derive(Debug)]
pub(crate) struct TenantBook {
    mode: SessionMode,
    /// Recorded shapes by weight; the last choice is "another shape": walk.
    shapes: Weighted,
    /// Shape steps (allowed endpoints only) and whether the shape was cut.
    shape_steps: Vec<(Vec<usize>, bool)>,
    transitions: HashMap<Option<usize>, Outgoing>,
    think: Option<Distribution>,
    think_factor: f64,
    agents: Weighted,
    agent_values: Vec<String>,
    /// Endpoints whose method is allowed.
    allowed: Vec<bool>,
    mean_steps: f64,
}

impl TenantBook {
    pub fn new(
        model: &Model,
        t: &Tenant,
        mode: SessionMode,
        think_factor: f64,
        methods: &[String],
    ) -> TenantBook {
        let allowed: Vec<bool> = model
            .endpoints
            .iter()
            .map(|e| {
                methods.is_empty() || methods.iter().any(|m| m.eq_ignore_ascii_case(&e.method))
            })
            .collect();
        let keep = |e: &usize| allowed.get(*e).copied().unwrap_or(false);
        let shape_steps: Vec<(Vec<usize>, bool)> = t
            .shapes
            .iter()
            .map(|s| (s.steps.iter().copied().filter(keep).collect(), s.truncated))
            .collect();
        let shapes = Weighted::new(
            t.shapes
                .iter()
                .map(|s| s.sessions as f64)
                .chain([t.other_shape_sessions as f64]),
        );
        // From endpoint → (to endpoint, count, think time) of each transition.
        type Edges = Vec<(Option<usize>, u64, Option<Distribution>)>;
        let mut grouped: HashMap<Option<usize>, Edges> = HashMap::new();
        for tr in &t.transitions {
            grouped
                .entry(tr.from)
                .or_default()
                .push((tr.to, tr.count, tr.think_ms.clone()));
        }
        let transitions = grouped
            .into_iter()
            .map(|(from, out)| {
                let pick = Weighted::new(out.iter().map(|(_, c, _)| *c as f64));
                let to = out.into_iter().map(|(to, _, d)| (to, d)).collect();
                (from, Outgoing { pick, to })
            })
            .collect();
        let (agent_values, agent_weights): (Vec<String>, Vec<f64>) = t
            .pools
            .get("header.user-agent")
            .map(|p| p.values.iter().map(|(v, c)| (v.clone(), *c as f64)).unzip())
            .unwrap_or_default();
        let n: f64 = t.session_lengths.values().map(|&c| c as f64).sum();
        let mean_steps = if n > 0.0 {
            t.session_lengths
                .iter()
                .map(|(&l, &c)| l as f64 * c as f64)
                .sum::<f64>()
                / n
        } else {
            1.0
        };
        // With --methods, the share of the tenant's requests that are kept
        // (the forecast's requests per session; the shapes drop the rest).
        let recorded: u64 = t.endpoints.values().sum();
        let kept: u64 = t
            .endpoints
            .iter()
            .filter(|(e, _)| keep(e))
            .map(|(_, n)| n)
            .sum();
        let mean_steps = if methods.is_empty() || recorded == 0 {
            mean_steps
        } else {
            mean_steps * kept as f64 / recorded as f64
        };
        TenantBook {
            mode,
            shapes,
            shape_steps,
            transitions,
            think: t.think_ms.clone(),
            think_factor,
            agents: Weighted::new(agent_weights),
            agent_values,
            allowed,
            mean_steps,
        }
    }

    /// Mean requests per session (as recorded).
    pub fn mean_steps(&self) -> f64 {
        self.mean_steps
    }

    pub fn session<'a>(
        &'a self,
        _model: &Model,
        arrival: &Arrival,
        rng: &mut SmallRng,
    ) -> SessionPlan<'a> {
        let agent = self.agents.pick(rng).map(|i| self.agent_values[i].as_str());
        // The endpoints first, then the think times between them (the
        // order the draws have always been made in), in the one vector.
        let mut steps: Vec<Step> = Vec::new();
        let mut walk_on = true;
        if self.mode == SessionMode::Recorded
            && let Some(i) = self.shapes.pick(rng)
            && let Some((recorded, truncated)) = self.shape_steps.get(i)
        {
            steps.reserve_exact(recorded.len());
            steps.extend(recorded.iter().map(|&e| Step::to(e)));
            walk_on = *truncated;
        }
        if walk_on {
            self.walk(&mut steps, rng);
        }
        for i in 1..steps.len() {
            steps[i].think = self.think(steps[i - 1].endpoint, steps[i].endpoint, rng);
        }
        SessionPlan {
            index: arrival.index,
            tenant: arrival.tenant,
            steps,
            agent,
        }
    }

    /// Continues `path` (from its last endpoint, or the start) along the
    /// transition model until the session ends.
    fn walk(&self, path: &mut Vec<Step>, rng: &mut SmallRng) {
        let mut at = path.last().map(|s| s.endpoint);
        while path.len() < MAX_STEPS {
            let Some(out) = self.transitions.get(&at) else {
                return;
            };
            let Some(i) = out.pick.pick(rng) else { return };
            match out.to[i].0 {
                None => return,
                Some(e) => {
                    if self.allowed.get(e).copied().unwrap_or(false) {
                        path.push(Step::to(e));
                    }
                    at = Some(e);
                }
            }
        }
    }

    fn think(&self, from: usize, to: usize, rng: &mut SmallRng) -> Duration {
        let recorded = self
            .transitions
            .get(&Some(from))
            .and_then(|o| o.to.iter().find(|(t, _)| *t == Some(to)))
            .and_then(|(_, d)| d.as_ref())
            .or(self.think.as_ref());
        let u: f64 = rng.random();
        recorded.map_or(Duration::ZERO, |d| {
            d.sample_duration(u).mul_f64(self.think_factor)
        })
    }
}
