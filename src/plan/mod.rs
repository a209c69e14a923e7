//! Model + profile → a schedule: when sessions arrive, whose they are, what
//! they do.
//!
//! Every way of driving a model — the recorded timeline compressed
//! (`--speed`), the recorded arrival rate multiplied (`--rate`), a profile of
//! stages — is an arrival intensity λ(τ) per tenant over plan time τ; one
//! generator turns it into arrivals (a non-homogeneous Poisson process by
//! thinning, or for `--speed` the recorded counts themselves), and one
//! executor runs them. Arrivals are numbered in time order with a seeded
//! generator, so every process of a segmented run sees the same sequence and
//! keeps its own share, and a session's contents depend only on the seed and
//! its number.

mod request;
mod sample;
mod session;

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use rand::rngs::SmallRng;

use crate::model::Model;
pub use request::{Placement, RequestSpec, TenantPlace};
pub use sample::{Weighted, mix, rng_for};
use session::TenantBook;
pub use session::{SessionPlan, Step};

/// How arrivals are driven.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// The recorded timeline, N× faster: recorded arrival counts, think
    /// times divided by N.
    Speed(f64),
    /// N× the recorded arrival rate, following its shape, with real think
    /// times.
    Rate(f64),
    /// A profile of stages.
    Stages(Profile),
}

/// What a profile's stage targets mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A multiplier of the recorded arrival rate (its shape kept).
    Multiplier,
    /// Sessions per second, all tenants together, shared by tenant weight.
    SessionsPerSec,
    /// Concurrent sessions in steady state: sessions/s = users ÷ the model's
    /// mean session duration (Little's law).
    Users,
}

/// k6-style stages: each ramps linearly from the previous target (or
/// `start`) to its own over its duration.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub unit: Unit,
    pub start: f64,
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

impl Profile {
    pub fn length(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The target at time `t` into the profile (linear within stages).
    pub fn at(&self, t: f64) -> f64 {
        let mut from = self.start;
        let mut at = 0.0;
        for s in &self.stages {
            let d = s.duration.as_secs_f64();
            if t < at + d && d > 0.0 {
                return from + (s.target - from) * (t - at) / d;
            }
            at += d;
            from = s.target;
        }
        from
    }

    /// Which stage (from 0) runs at time `t`; past the end, the last.
    pub fn stage_at(&self, t: f64) -> usize {
        let mut at = 0.0;
        for (i, s) in self.stages.iter().enumerate() {
            at += s.duration.as_secs_f64();
            if t < at {
                return i;
            }
        }
        self.stages.len().saturating_sub(1)
    }

    /// Where stages begin and end (seconds), for bounding the intensity.
    fn boundaries(&self) -> Vec<f64> {
        let mut at = 0.0;
        let mut out = vec![0.0];
        for s in &self.stages {
            at += s.duration.as_secs_f64();
            out.push(at);
        }
        out
    }
}

/// Recorded session shapes by weight, or walks of the transition model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    Recorded,
    Synth,
}

impl FromStr for SessionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<SessionMode, String> {
        match s.trim() {
            "recorded" => Ok(SessionMode::Recorded),
            "synth" => Ok(SessionMode::Synth),
            _ => Err(format!("`{s}`: expected recorded or synth")),
        }
    }
}

/// `I/N`: this process runs share I (from 1) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Segment {
    type Err = String;
    fn from_str(s: &str) -> Result<Segment, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected I/N, e.g. 2/4"))?;
        let parse = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{s}`: expected I/N with whole numbers"))
        };
        let (index, count) = (parse(i)?, parse(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(format!("`{s}`: I must be from 1 to N"));
        }
        Ok(Segment { index, count })
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Segment {
    /// Whether arrival `index` belongs to this segment.
    pub fn owns(&self, index: u64) -> bool {
        mix(index) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// Everything that shapes a plan.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    pub mode: Mode,
    /// Multiplies think times (after `--speed`'s division).
    pub think_scale: f64,
    /// Cut the run short (or, for `--rate` and `--loop`, how long it runs).
    pub duration: Option<Duration>,
    /// Repeat the recorded timeline (`--speed`) until `duration`.
    pub looped: bool,
    /// Per-tenant multipliers.
    pub tenant_mult: Vec<(String, f64)>,
    /// Only these tenants (all when empty).
    pub only_tenants: Vec<String>,
    pub sessions: SessionMode,
    pub seed: u64,
    pub segment: Option<Segment>,
    /// Only these methods (upper case; all when empty).
    pub methods: Vec<String>,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            mode: Mode::Rate(1.0),
            think_scale: 1.0,
            duration: None,
            looped: false,
            tenant_mult: Vec::new(),
            only_tenants: Vec::new(),
            sessions: SessionMode::Recorded,
            seed: 1,
            segment: None,
            methods: Vec::new(),
        }
    }
}

/// What a plan accepts: beyond these a number is a typo, not a test (and
/// would overflow the clock). Inclusive ranges.
pub mod limits {
    use std::time::Duration;

    pub const SPEED: (f64, f64) = (0.001, 1e6);
    pub const RATE: (f64, f64) = (1e-6, 1e6);
    pub const THINK_SCALE: (f64, f64) = (0.0, 1e4);
    pub const TENANT_MULT: (f64, f64) = (0.0, 1e6);
    /// Stage targets and the profile's start, in any unit.
    pub const STAGE_TARGET: (f64, f64) = (0.0, 1e9);
    /// The longest run (a soak test of a year is still a run).
    pub const LENGTH: Duration = Duration::from_secs(366 * 86_400);

    /// `Err` with what the value must be, when outside `range` (the caller
    /// names the value; an absurd one is not worth printing back).
    pub fn check(value: f64, (lo, hi): (f64, f64)) -> Result<(), String> {
        if value.is_finite() && (lo..=hi).contains(&value) {
            Ok(())
        } else {
            Err(format!("out of range: a number from {lo} to {hi}"))
        }
    }

    /// `Err` when a duration is longer than a run can be.
    pub fn check_length(d: Duration) -> Result<(), String> {
        if d <= LENGTH {
            Ok(())
        } else {
            Err("longer than a run can be (at most 366 days)".into())
        }
    }
}

/// A plan that cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// The most sessions one run's plan may start (about a day at 10,000 a
/// second).
const MAX_SESSIONS: f64 = 1e9;

/// One tenant's part of a plan.
#[derive(Debug)]
pub struct TenantPlan {
    /// Index in the model's tenants.
    pub index: usize,
    pub name: String,
    pub mult: f64,
    /// Recorded sessions/s per bucket.
    rates: Vec<f64>,
    /// Share of sessions among the tenants in the plan.
    share: f64,
    pub(crate) book: TenantBook,
    pub(crate) pools: request::Pools,
    /// Where the tenant goes in its requests (from the import's rule).
    pub(crate) place: request::TenantPlace,
}

/// A session arrival: its number in the whole run, when, whose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrival {
    pub index: u64,
    /// Offset from the start of the run.
    pub due: Duration,
    /// Index in [`Plan::tenants`].
    pub tenant: usize,
}

/// A model prepared for driving.
#[derive(Debug)]
pub struct Plan {
    pub model: Arc<Model>,
    pub cfg: PlanConfig,
    pub tenants: Vec<TenantPlan>,
    length: Duration,
    /// The recorded arrival series: bucket width and count.
    bucket: f64,
    buckets: usize,
    /// Mean session duration of the model (for `users` stages).
    mean_session: Duration,
}

impl Plan {
    pub fn new(model: Arc<Model>, cfg: PlanConfig) -> Result<Plan, PlanError> {
        validate(&cfg)?;
        let included: Vec<usize> = (0..model.tenants.len())
            .filter(|&i| {
                let t = &model.tenants[i];
                t.sessions > 0
                    && (cfg.only_tenants.is_empty() || cfg.only_tenants.contains(&t.name))
            })
            .collect();
        for name in cfg
            .only_tenants
            .iter()
            .chain(cfg.tenant_mult.iter().map(|(n, _)| n))
        {
            if !model.tenants.iter().any(|t| &t.name == name) {
                let known: Vec<&str> = model.tenants.iter().map(|t| t.name.as_str()).collect();
                return Err(PlanError(format!(
                    "no tenant `{name}` in the model (it has: {})",
                    known.join(", ")
                )));
            }
        }
        if included.is_empty() {
            return Err(PlanError(
                "the model has no sessions to replay (for the selected tenants)".into(),
            ));
        }
        // A method the replayed tenants never used is a typo: it would
        // replay nothing at all.
        let mut recorded: Vec<&str> = included
            .iter()
            .flat_map(|&i| model.tenants[i].endpoints.keys())
            .filter_map(|&e| model.endpoints.get(e).map(|e| e.method.as_str()))
            .collect();
        recorded.sort_unstable();
        recorded.dedup();
        for m in &cfg.methods {
            if !recorded.iter().any(|r| r.eq_ignore_ascii_case(m)) {
                return Err(PlanError(format!(
                    "--methods {m}: no {m} request in the model{} (it has: {})",
                    if cfg.only_tenants.is_empty() {
                        ""
                    } else {
                        " for the selected tenants"
                    },
                    recorded.join(", ")
                )));
            }
        }
        let total_sessions: f64 = included
            .iter()
            .map(|&i| model.tenants[i].sessions as f64)
            .sum();
        let bucket = model.tenants[included[0]]
            .arrivals
            .bucket()
            .as_secs_f64()
            .max(1e-3);
        let buckets = model.tenants[included[0]].arrivals.counts.len().max(1);
        let speed = match cfg.mode {
            Mode::Speed(n) => n,
            _ => 1.0,
        };
        let think_factor = cfg.think_scale / speed;
        let tenants: Vec<TenantPlan> = included
            .iter()
            .map(|&i| {
                let t = &model.tenants[i];
                let mult = cfg
                    .tenant_mult
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == t.name)
                    .map_or(1.0, |(_, m)| *m);
                TenantPlan {
                    index: i,
                    name: t.name.clone(),
                    mult,
                    rates: t
                        .arrivals
                        .counts
                        .iter()
                        .map(|&c| c as f64 / bucket)
                        .collect(),
                    share: t.sessions as f64 / total_sessions,
                    book: TenantBook::new(&model, t, cfg.sessions, think_factor, &cfg.methods),
                    pools: request::Pools::new(t),
                    place: request::TenantPlace::of(t),
                }
            })
            .collect();
        let span = Duration::from_secs_f64(bucket * buckets as f64);
        if let Mode::Speed(n) = cfg.mode
            && cfg.duration.is_none()
            && span.as_secs_f64() / n > limits::LENGTH.as_secs_f64()
        {
            return Err(PlanError(format!(
                "at --speed {n} the recorded {} would take longer than a run can be (366 days): add --duration",
                humantime::format_duration(span)
            )));
        }
        let length = match &cfg.mode {
            Mode::Speed(_) if cfg.looped => cfg.duration.expect("validated"),
            Mode::Speed(n) => cfg
                .duration
                .map_or(span.div_f64(*n), |d| d.min(span.div_f64(*n))),
            Mode::Rate(_) => cfg.duration.unwrap_or(span),
            Mode::Stages(p) => cfg.duration.map_or(p.length(), |d| d.min(p.length())),
        };
        let mean_session = mean_session(&model, &included, cfg.think_scale);
        let plan = Plan {
            model,
            cfg,
            tenants,
            length,
            bucket,
            buckets,
            mean_session,
        };
        // Every arrival is drawn in turn (the plan's sessions per second
        // are counted before the run), so a plan of more than a billion
        // sessions could not even start: refused, not left to hang.
        let len = plan.length.as_secs_f64();
        let total: f64 = (0..plan.tenants.len())
            .map(|t| plan.integral(t, 0.0, len))
            .sum();
        if total.is_nan() || total > MAX_SESSIONS {
            return Err(PlanError(format!(
                "the plan starts about {} sessions, more than one run can ({}): lower the rate, or shorten the run",
                crate::output::thousands(total.min(1e30) as u64),
                crate::output::thousands(MAX_SESSIONS as u64)
            )));
        }
        Ok(plan)
    }

    /// How long the run lasts.
    pub fn length(&self) -> Duration {
        self.length
    }

    pub fn mean_session(&self) -> Duration {
        self.mean_session
    }

    /// Sessions per second of tenant `t` at plan time `tau` (seconds).
    pub fn intensity(&self, t: usize, tau: f64) -> f64 {
        let tp = &self.tenants[t];
        // Recorded time: `--speed N` walks the recording N× faster.
        let recorded_at = match self.cfg.mode {
            Mode::Speed(n) => tau * n,
            _ => tau,
        };
        let recorded = || {
            let b = ((recorded_at / self.bucket) as usize) % self.buckets;
            tp.rates.get(b).copied().unwrap_or(0.0)
        };
        tp.mult
            * match &self.cfg.mode {
                Mode::Speed(n) => n * recorded(),
                Mode::Rate(r) => r * recorded(),
                Mode::Stages(p) => {
                    let m = p.at(tau).max(0.0);
                    match p.unit {
                        Unit::Multiplier => m * recorded(),
                        Unit::SessionsPerSec => m * tp.share,
                        Unit::Users => m / self.mean_session.as_secs_f64().max(1e-3) * tp.share,
                    }
                }
            }
    }

    /// An upper bound of tenant `t`'s intensity over `[a, b)`.
    fn intensity_bound(&self, t: usize, a: f64, b: f64) -> f64 {
        let mut points = vec![a, (b - 1e-9).max(a)];
        if let Mode::Stages(p) = &self.cfg.mode {
            points.extend(p.boundaries().into_iter().filter(|x| *x > a && *x < b));
        }
        // The recorded rate is constant within a bucket; steps are split
        // at bucket edges by the caller, so `a` and `b` see all of it.
        points
            .iter()
            .map(|&x| self.intensity(t, x))
            .fold(0.0, f64::max)
    }

    /// The session arrivals of the whole run, in time order.
    /// Sessions due in each second of the run (of this segment, when
    /// segmented), for the planned-vs-achieved chart.
    pub fn planned_per_second(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.length.as_secs() as usize + 1];
        for a in self.arrivals() {
            if self.cfg.segment.is_some_and(|s| !s.owns(a.index)) {
                continue;
            }
            let s = a.due.as_secs() as usize;
            if s >= out.len() {
                out.resize(s + 1, 0);
            }
            out[s] += 1;
        }
        out
    }

    /// Where each stage after the first begins (seconds), for a profile.
    pub fn stage_starts(&self) -> Vec<f64> {
        match &self.cfg.mode {
            Mode::Stages(p) => p
                .stages
                .iter()
                .scan(0.0, |t, s| {
                    *t += s.duration.as_secs_f64();
                    Some(*t)
                })
                .filter(|t| *t < self.length.as_secs_f64())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn arrivals(&self) -> Arrivals<'_> {
        Arrivals {
            plan: self,
            rng: rng_for(self.cfg.seed, u64::MAX),
            index: 0,
            t: 0.0,
            step_end: 0.0,
            bound: 0.0,
            speed_bucket: 0,
            pending: VecDeque::new(),
            lambdas: Vec::new(),
        }
    }

    /// The sessions each tenant is expected to start per time window of
    /// `window`, and the requests they make: (tenant, [(sessions, requests)]).
    pub fn expected(&self, window: Duration) -> Vec<(usize, Vec<(f64, f64)>)> {
        let len = self.length.as_secs_f64();
        let w = window.as_secs_f64().max(1e-3);
        let windows = (len / w).ceil().max(1.0) as usize;
        (0..self.tenants.len())
            .map(|t| {
                let per_session = self.tenants[t].book.mean_steps();
                let rows = (0..windows)
                    .map(|k| {
                        let (a, b) = (k as f64 * w, ((k + 1) as f64 * w).min(len));
                        let sessions = self.integral(t, a, b);
                        (sessions, sessions * per_session)
                    })
                    .collect();
                (t, rows)
            })
            .collect()
    }

    /// Sessions tenant `t` is expected to start in `[a, b)`: the integral
    /// of its intensity, exactly. Between the edges of the recorded buckets
    /// (in run time: compressed by `--speed`) and the profile's stage
    /// boundaries the intensity is linear, so each piece's midpoint gives
    /// its integral. (Sampling every 0.1 s instead missed every other
    /// bucket once `--speed` made them narrower than that.)
    fn integral(&self, t: usize, a: f64, b: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        let width = match self.cfg.mode {
            Mode::Speed(n) => self.bucket / n,
            _ => self.bucket,
        };
        // Without stages the intensity repeats with the recording: whole
        // periods are counted once each (at a high --speed a window holds
        // millions of buckets, and listing their edges ran out of memory).
        let period = width * self.buckets as f64;
        if !matches!(self.cfg.mode, Mode::Stages(_))
            && period.is_finite()
            && period > 0.0
            && b - a > 2.0 * period
        {
            let first = (a / period).ceil() * period;
            let last = (b / period).floor() * period;
            let whole = ((last - first) / period).round();
            return self.integral(t, a, first)
                + whole * self.integral(t, 0.0, period)
                + self.integral(t, last, b);
        }
        let mut cuts = vec![a, b];
        if let Mode::Stages(p) = &self.cfg.mode {
            cuts.extend(p.boundaries().into_iter().filter(|x| *x > a && *x < b));
        }
        if width.is_finite() && width > 0.0 {
            let mut k = (a / width).floor() + 1.0;
            while k * width < b {
                cuts.push(k * width);
                k += 1.0;
            }
        }
        cuts.sort_by(f64::total_cmp);
        cuts.windows(2)
            .map(|w| (w[1] - w[0]) * self.intensity(t, (w[0] + w[1]) / 2.0))
            .sum()
    }

    /// What session `arrival` does.
    pub fn session(&self, arrival: &Arrival) -> SessionPlan<'_> {
        let mut rng = rng_for(self.cfg.seed, arrival.index);
        let tp = &self.tenants[arrival.tenant];
        tp.book.session(&self.model, arrival, &mut rng)
    }
}

/// The same checks as the run config makes (which names the flag or the
/// key), for plans made in code.
fn validate(cfg: &PlanConfig) -> Result<(), PlanError> {
    let bad = |what: &str, m: String| Err(PlanError(format!("{what}: {m}")));
    match &cfg.mode {
        Mode::Speed(n) => limits::check(*n, limits::SPEED).or_else(|m| bad("--speed", m))?,
        Mode::Rate(n) => limits::check(*n, limits::RATE).or_else(|m| bad("--rate", m))?,
        Mode::Stages(p) => {
            if p.stages.is_empty() {
                return bad("the profile", "no stages".into());
            }
            for v in std::iter::once(p.start).chain(p.stages.iter().map(|s| s.target)) {
                limits::check(v, limits::STAGE_TARGET).or_else(|m| bad("a stage target", m))?;
            }
            let total = p
                .stages
                .iter()
                .try_fold(Duration::ZERO, |t, s| t.checked_add(s.duration))
                .unwrap_or(Duration::MAX);
            limits::check_length(total).or_else(|m| bad("the profile", m))?;
        }
    }
    if cfg.looped && matches!(cfg.mode, Mode::Speed(_)) && cfg.duration.is_none() {
        return bad(
            "--loop",
            "needs --duration: how long to keep repeating".into(),
        );
    }
    if let Some(d) = cfg.duration {
        limits::check_length(d).or_else(|m| bad("--duration", m))?;
    }
    limits::check(cfg.think_scale, limits::THINK_SCALE).or_else(|m| bad("--think-scale", m))?;
    for (name, m) in &cfg.tenant_mult {
        limits::check(*m, limits::TENANT_MULT).or_else(|e| bad(&format!("--tenant {name}"), e))?;
    }
    Ok(())
}

/// Mean session duration over the given tenants: steps × mean latency plus
/// the think times between them.
fn mean_session(model: &Model, tenants: &[usize], think_scale: f64) -> Duration {
    let mut total = 0.0;
    let mut sessions = 0.0;
    for &i in tenants {
        let t = &model.tenants[i];
        let n: f64 = t.session_lengths.values().map(|&c| c as f64).sum();
        if n == 0.0 {
            continue;
        }
        let steps: f64 = t
            .session_lengths
            .iter()
            .map(|(&l, &c)| l as f64 * c as f64)
            .sum::<f64>()
            / n;
        let think = t.think_ms.as_ref().map_or(0.0, |d| d.mean / 1000.0) * think_scale;
        // The recorded latency, weighted by how often the tenant calls each
        // endpoint.
        let (mut weighted, mut calls) = (0.0, 0.0);
        for (&e, &count) in &t.endpoints {
            if let Some(d) = model.endpoints.get(e).and_then(|e| e.latency_ms.as_ref()) {
                weighted += d.mean / 1000.0 * count as f64;
                calls += count as f64;
            }
        }
        let latency = if calls > 0.0 { weighted / calls } else { 0.0 };
        total += n * (steps * latency + (steps - 1.0).max(0.0) * think);
        sessions += n;
    }
    Duration::from_secs_f64(if sessions > 0.0 {
        total / sessions
    } else {
        0.0
    })
}

/// ∫ f over [a, b] by the midpoint rule on 0.1 s steps (f is piecewise
/// linear or constant: this is exact enough for plans).
/// The arrival generator (see [`Plan::arrivals`]).
pub struct Arrivals<'a> {
    plan: &'a Plan,
    rng: SmallRng,
    index: u64,
    /// Poisson: the current time, the end of the current step and the
    /// intensity bound within it.
    t: f64,
    step_end: f64,
    bound: f64,
    /// Speed: the next bucket to lay out, and the arrivals laid out.
    speed_bucket: u64,
    pending: VecDeque<(f64, usize)>,
    /// Poisson: each tenant's intensity at the candidate, kept between
    /// arrivals (allocating it each time was an allocation per session).
    lambdas: Vec<f64>,
}

impl Arrivals<'_> {
    fn emit(&mut self, at: f64, tenant: usize) -> Arrival {
        let a = Arrival {
            index: self.index,
            due: Duration::from_secs_f64(at),
            tenant,
        };
        self.index += 1;
        a
    }

    /// `--speed`: each recorded bucket's arrivals, per tenant, spread
    /// uniformly over the bucket's compressed time.
    fn next_speed(&mut self, n: f64) -> Option<Arrival> {
        let len = self.plan.length.as_secs_f64();
        loop {
            if let Some((at, tenant)) = self.pending.pop_front() {
                if at >= len {
                    return None;
                }
                return Some(self.emit(at, tenant));
            }
            let k = self.speed_bucket;
            let start = k as f64 * self.plan.bucket / n;
            if start >= len {
                return None;
            }
            self.speed_bucket += 1;
            let b = (k % self.plan.buckets as u64) as usize;
            let mut laid: Vec<(f64, usize)> = Vec::new();
            for (ti, tp) in self.plan.tenants.iter().enumerate() {
                let expected = tp.rates.get(b).copied().unwrap_or(0.0) * self.plan.bucket * tp.mult;
                let mut count = expected.floor() as u64;
                if self.rng.random::<f64>() < expected.fract() {
                    count += 1;
                }
                for _ in 0..count {
                    laid.push((
                        (k as f64 + self.rng.random::<f64>()) * self.plan.bucket / n,
                        ti,
                    ));
                }
            }
            laid.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            self.pending.extend(laid);
        }
    }

    /// Rates and profiles: a non-homogeneous Poisson process by thinning,
    /// in steps of at most a second that never cross a bucket edge.
    fn next_poisson(&mut self) -> Option<Arrival> {
        let len = self.plan.length.as_secs_f64();
        let tenants = self.plan.tenants.len();
        loop {
            if self.t >= len {
                return None;
            }
            if self.t >= self.step_end {
                let edge = ((self.t / self.plan.bucket).floor() + 1.0) * self.plan.bucket;
                self.step_end = (self.t.floor() + 1.0).min(edge).min(len);
                if self.step_end <= self.t {
                    self.step_end = (self.t + 1e-6).min(len);
                }
                self.bound = (0..tenants)
                    .map(|i| self.plan.intensity_bound(i, self.t, self.step_end))
                    .sum();
            }
            if self.bound <= 0.0 {
                self.t = self.step_end;
                continue;
            }
            let gap = -(1.0 - self.rng.random::<f64>()).ln() / self.bound;
            let candidate = self.t + gap;
            if candidate >= self.step_end {
                // Memoryless: start again from the step's end.
                self.t = self.step_end;
                continue;
            }
            self.t = candidate;
            let plan = self.plan;
            self.lambdas.clear();
            self.lambdas
                .extend((0..tenants).map(|i| plan.intensity(i, candidate)));
            let total: f64 = self.lambdas.iter().sum();
            let u = self.rng.random::<f64>() * self.bound;
            if u >= total {
                continue;
            }
            // Which tenant: the one whose share of the intensity `u` falls in.
            let mut acc = 0.0;
            let tenant = self
                .lambdas
                .iter()
                .position(|l| {
                    acc += l;
                    u < acc
                })
                .unwrap_or(tenants - 1);
            return Some(self.emit(candidate, tenant));
        }
    }
}

impl Iterator for Arrivals<'_> {
    type Item = Arrival;
    fn next(&mut self) -> Option<Arrival> {
        match self.plan.cfg.mode {
            Mode::Speed(n) => self.next_speed(n),
            _ => self.next_poisson(),
        }
    }
}
