//! Thresholds: k6's pass/fail criteria, judged on a run's results, plus
//! windows (`p(95)<500 over 1m`: every minute must hold) and early aborts.
//!
//! A threshold that could never be judged — an unknown metric or tag, a
//! tenant or endpoint the model does not have, a check that does not exist —
//! is an error before the run starts, not a silent pass.

mod compare;
mod parse;

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::{Counter, Histogram};
use serde::{Deserialize, Serialize};

pub use compare::{
    Comparison, DistChange, REGRESSION, Regression, compare, judge_regression, parse_regression,
};
pub use parse::{Agg, Kind, METRICS, MetricDef, Op, ParseError, Threshold, metric, parse};
pub use parse::{parse_expression, parse_selector};

use crate::metrics::{Class, Key, Results, Tick, small_hist};

/// How one threshold came out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub threshold: String,
    pub ok: bool,
    /// The value judged (the worst window's, for windowed thresholds); null
    /// when there was nothing to judge (no samples: a failure).
    pub observed: Option<f64>,
    /// `ms`, `/s`, or empty (rates are fractions, counts plain).
    pub unit: String,
    /// For windowed thresholds.
    pub windows: Option<Windows>,
    pub abort_on_fail: bool,
    /// How the observed value is named (`p(95)`, `rate`).
    #[serde(default)]
    pub agg: String,
    /// Why there is no observed value, when there is a better word for it
    /// than "no data".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Windowed results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Windows {
    #[serde(rename = "window_ms", with = "crate::metrics::ms")]
    pub length: Duration,
    pub judged: u64,
    pub failed: u64,
    /// Start (seconds into the run) of the worst window.
    pub worst_at_s: u64,
}

impl Verdict {
    /// The observed value, and for windowed thresholds the worst window.
    pub fn shown(&self) -> String {
        let mut s = self.observed_text();
        if let Some(w) = self.windows.as_ref().filter(|w| w.judged > 0) {
            s.push_str(&format!(
                " (worst window from {}s; {} of {} windows failed)",
                w.worst_at_s, w.failed, w.judged
            ));
        }
        s
    }

    /// `p(95)=412.3ms`, or `no data`; the note when there is one (a
    /// regression's `baseline 12ms, now 55ms: +43ms (+358.3%)`, which
    /// says more than the value alone).
    pub fn observed_text(&self) -> String {
        match (&self.note, self.observed) {
            (Some(note), _) => note.clone(),
            (None, None) => "no data".into(),
            (None, Some(v)) => format!("{}={}{}", self.agg, trim(v), self.unit),
        }
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// What a threshold's selector can match, from the model and the run
/// config.
pub struct Known<'a> {
    pub endpoints: &'a [String],
    pub tenants: &'a [String],
    pub checks: &'a [String],
    pub drill: bool,
    /// Stages of the run's profile (1 for a run without one); comparing two
    /// runs, of the one with fewer.
    pub stages: usize,
    /// Two runs are compared (`--max-regression`): a stage must be in both.
    pub comparing: bool,
}

/// Checks that every threshold can be judged in this run.
pub fn validate(ts: &[Threshold], known: &Known<'_>) -> Result<(), String> {
    for t in ts {
        judgeable(t, known).map_err(|m| format!("threshold `{}`: {m}", t.source))?;
    }
    Ok(())
}

/// Checks that every `--max-regression` limit names something this run
/// has: a limit on nothing would be judged only after the whole load.
pub fn validate_regressions(gs: &[Regression], known: &Known<'_>) -> Result<(), String> {
    for g in gs {
        judgeable(&g.what, known).map_err(|m| format!("--max-regression `{}`: {m}", g.source))?;
    }
    Ok(())
}

fn judgeable(t: &Threshold, known: &Known<'_>) -> Result<(), String> {
    if t.metric.drill && !known.drill {
        return Err(format!("{} exists only in `reprise drill`", t.metric.name));
    }
    if t.abort_on_fail && !(t.metric.per_second && t.tags.is_empty()) {
        return Err(
            "abort_on_fail needs a metric measured second by second and no tags (http_req_duration, http_req_service_time, generator_lag, http_reqs, http_req_failed, checks, sessions_dropped, sessions_late)".into(),
        );
    }
    for (tag, value) in &t.tags {
        let found = match tag.as_str() {
            "endpoint" => known.endpoints.iter().any(|e| e == value),
            "tenant" => known.tenants.iter().any(|x| x == value),
            "method" => known
                .endpoints
                .iter()
                .any(|e| e.split(' ').next() == Some(value.as_str())),
            "status" => Class::ALL.iter().any(|c| c.name() == value),
            "check" => known.checks.iter().any(|c| c == value),
            "stage" if known.drill => {
                return Err(
                    "a drill's phases are not stages to select: its verdict is recovery_time"
                        .into(),
                );
            }
            "stage" => value
                .parse::<usize>()
                .is_ok_and(|n| (1..=known.stages).contains(&n)),
            _ => false,
        };
        if !found {
            let some: Vec<&str> = match tag.as_str() {
                "endpoint" => known.endpoints.iter().map(String::as_str).take(8).collect(),
                "tenant" => known.tenants.iter().map(String::as_str).collect(),
                "status" => Class::ALL.iter().map(|c| c.name()).collect(),
                "check" => known.checks.iter().map(String::as_str).collect(),
                _ => Vec::new(),
            };
            if tag == "stage" {
                let whose = if known.comparing {
                    "is not in both runs: the shorter profile has"
                } else {
                    "matches nothing in this run: its profile has"
                };
                return Err(format!(
                    "stage:{value} {whose} {} stage{} (1 is the first)",
                    known.stages,
                    if known.stages == 1 { "" } else { "s" }
                ));
            }
            let list = if some.is_empty() {
                String::new()
            } else {
                format!(" (there are: {})", some.join(", "))
            };
            return Err(format!(
                "{tag}:{value} matches nothing in this run{list}: there would be nothing to judge"
            ));
        }
    }
    Ok(())
}

fn trend<T: Counter>(h: &Histogram<T>, agg: Agg) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some(match agg {
        Agg::P(p) => ms(h.median_equivalent(h.value_at_quantile(p / 100.0))),
        Agg::Avg => h.mean() / 1000.0,
        Agg::Min => ms(h.min()),
        Agg::Med => ms(h.median_equivalent(h.value_at_quantile(0.5))),
        Agg::Max => ms(h.max()),
        Agg::Count => h.len() as f64,
        Agg::Rate | Agg::Value => return None,
    })
}

fn ratio(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

fn counter(n: u64, agg: Agg, secs: f64) -> Option<f64> {
    Some(match agg {
        Agg::Rate => n as f64 / secs.max(1e-9),
        _ => n as f64,
    })
}

fn unit(t: &Threshold) -> &'static str {
    match (t.metric.kind, t.agg) {
        (_, Agg::Count) => "",
        (Kind::Trend | Kind::Value, _) => "ms",
        (Kind::Counter, Agg::Rate) => "/s",
        _ => "",
    }
}

/// The value of `t` over the whole run.
fn observe(t: &Threshold, r: &Results) -> Option<f64> {
    if let Some((_, stage)) = t.tags.iter().find(|(tag, _)| tag == "stage") {
        return observe_stage(t, r, stage.parse().ok()?);
    }
    let secs = r.meta.elapsed.as_secs_f64();
    let name = t.metric.name;
    if !t.tags.is_empty() && name != "checks" {
        let matches = |k: &Key| {
            t.tags.iter().all(|(tag, v)| {
                let endpoint = r.names.endpoints.get(k.endpoint as usize);
                match tag.as_str() {
                    "endpoint" => endpoint == Some(v),
                    "tenant" => r.names.tenants.get(k.tenant as usize) == Some(v),
                    "method" => endpoint.and_then(|e| e.split(' ').next()) == Some(v.as_str()),
                    "status" => k.class.name() == v,
                    _ => false,
                }
            })
        };
        let keys: Vec<_> = r.keys.iter().filter(|(k, _)| matches(k)).collect();
        return match name {
            "http_req_duration" | "http_req_service_time" => {
                let mut h = small_hist();
                for (_, s) in &keys {
                    let _ = h.add(if name == "http_req_duration" {
                        &s.duration
                    } else {
                        &s.service
                    });
                }
                trend(&h, t.agg)
            }
            "http_reqs" => counter(keys.iter().map(|(_, s)| s.requests).sum(), t.agg, secs),
            "http_req_failed" => ratio(
                keys.iter()
                    .filter(|(k, _)| k.class.failed())
                    .map(|(_, s)| s.requests)
                    .sum(),
                keys.iter().map(|(_, s)| s.requests).sum(),
            ),
            _ => None,
        };
    }
    let c = &r.counts;
    let auth = r.auth.as_ref();
    match name {
        "auth_req_duration" => auth.and_then(|a| trend(&a.duration, t.agg)),
        "http_reqs" => counter(c.requests, t.agg, secs),
        "http_req_failed" => ratio(c.failed, c.requests),
        "checks" => match t.tags.first() {
            Some((_, check)) => {
                let i = r.check_names.iter().position(|n| n == check)?;
                let (p, f) = r.checks.get(i).copied().unwrap_or_default();
                ratio(p, p + f)
            }
            None => ratio(c.checks_passed, c.checks_passed + c.checks_failed),
        },
        "sessions_dropped" | "dropped_sessions" => counter(c.sessions_dropped, t.agg, secs),
        "sessions_late" => counter(c.sessions_late, t.agg, secs),
        "auth_failures" => counter(auth.map_or(0, |a| a.failures), t.agg, secs),
        "auth_retries" => counter(auth.map_or(0, |a| a.retries), t.agg, secs),
        "token_refreshes" => counter(auth.map_or(0, |a| a.refreshes), t.agg, secs),
        "recovery_time" => r
            .drill
            .as_ref()
            .and_then(|d| d.recovery_time)
            .map(|d| d.as_secs_f64() * 1000.0),
        _ => r
            .metrics
            .named()
            .into_iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, h)| trend(h, t.agg)),
    }
}

/// The value of `t` over one stage of the profile (1 is the first): the
/// seconds that began in it, merged. A rate is per second of the stage
/// the run covered.
fn observe_stage(t: &Threshold, r: &Results, stage: usize) -> Option<f64> {
    let elapsed = r.meta.elapsed.as_secs_f64();
    let from = match stage {
        0 => return None,
        1 => 0.0,
        n => *r.stages.get(n - 2)?,
    };
    let to = r.stages.get(stage - 1).copied().unwrap_or(f64::INFINITY);
    let mut merged: Option<Tick> = None;
    for (s, tick) in r.timeline.seconds() {
        if (from..to).contains(&(s as f64)) {
            merged.get_or_insert_with(|| Tick::new(s)).merge(tick);
        }
    }
    // The seconds merged are those that began in the stage: a rate is per
    // second of them the run covered (a stage from 1.5 s to 3 s holds the
    // second that begins at 2 s: one second of data, not 1.5).
    let covered = (to.ceil().min(elapsed) - from.ceil()).max(1.0);
    observe_tick(t, &merged?, covered)
}

/// The value of an untagged per-second metric over merged ticks.
fn observe_tick(t: &Threshold, tick: &Tick, secs: f64) -> Option<f64> {
    let c = &tick.counts;
    match t.metric.name {
        "http_req_duration" => trend(&tick.duration, t.agg),
        "http_req_service_time" => trend(&tick.service, t.agg),
        "generator_lag" => trend(&tick.lag, t.agg),
        "http_reqs" => counter(c.requests, t.agg, secs),
        "http_req_failed" => ratio(c.failed, c.requests),
        "checks" => ratio(c.checks_passed, c.checks_passed + c.checks_failed),
        "sessions_dropped" | "dropped_sessions" => counter(c.sessions_dropped, t.agg, secs),
        "sessions_late" => counter(c.sessions_late, t.agg, secs),
        _ => None,
    }
}

/// Whether `observed` holds; no data fails.
fn holds(t: &Threshold, observed: Option<f64>) -> bool {
    observed.is_some_and(|v| t.op.holds(v, t.bound))
}

/// Is `a` a worse value than `b` for this threshold?
fn worse(t: &Threshold, a: f64, b: f64) -> bool {
    match t.op {
        Op::Lt | Op::Le => a > b,
        Op::Gt | Op::Ge => a < b,
        Op::Eq | Op::Ne => (a - t.bound).abs() > (b - t.bound).abs(),
    }
}

/// Every window of `len` seconds over the timeline's seconds (one window
/// of everything when the run is shorter): (start second, merged tick).
/// Idle windows are not judged: the drain at the end of a run, or a stage
/// that plans no traffic, has no latency to hold to a bound. A window in
/// which requests waited on the target and none came back is not idle,
/// and has no data, which fails.
///
/// The judge also gets how many seconds of the window the run covered
/// (at least one): a rate is per second of the run, so a window reaching
/// past the run's end (or a run shorter than the window) divides by what
/// it covered, not by its full length.
fn windows(r: &Results, len: u64, mut judge: impl FnMut(u64, &Tick, f64)) {
    let elapsed = r.meta.elapsed.as_secs_f64();
    let mut each = |start: u64, t: &Tick| {
        if !t.idle() {
            let end = (start + len) as f64;
            // At least a second: a sliver of the last second is no rate.
            let covered = if elapsed > start as f64 {
                (end.min(elapsed) - start as f64).max(1.0)
            } else {
                len as f64
            };
            judge(start, t, covered);
        }
    };
    let tl = &r.timeline;
    let (Some((first, _)), Some(last)) = (tl.seconds().next(), tl.seconds().last().map(|(s, _)| s))
    else {
        return;
    };
    let by_second = |s: u64| tl.get(s);
    if last + 1 - first <= len {
        let mut all = Tick::new(first);
        for (_, t) in tl.seconds() {
            all.merge(t);
        }
        each(first, &all);
        return;
    }
    let mut acc = Tick::new(first);
    for s in first..first + len {
        if let Some(t) = by_second(s) {
            acc.merge(t);
        }
    }
    each(first, &acc);
    for start in first + 1..=last + 1 - len {
        if let Some(t) = by_second(start - 1) {
            acc.subtract(t);
        }
        if let Some(t) = by_second(start + len - 1) {
            acc.merge(t);
        }
        each(start, &acc);
    }
}

/// Judges every threshold on the results.
pub fn evaluate(ts: &[Threshold], r: &Results) -> Vec<Verdict> {
    ts.iter()
        .map(|t| {
            let (ok, observed, windows_info) = match t.window {
                None => {
                    let v = observe(t, r);
                    (holds(t, v), v, None)
                }
                Some(w) => {
                    let len = w.as_secs().max(1);
                    let (mut judged, mut failed) = (0u64, 0u64);
                    let mut worst: Option<(u64, Option<f64>)> = None;
                    windows(r, len, |start, tick, covered| {
                        let v = observe_tick(t, tick, covered);
                        judged += 1;
                        if !holds(t, v) {
                            failed += 1;
                        }
                        let replace = match (&worst, v) {
                            (None, _) => true,
                            (Some((_, Some(_))), None) => true,
                            (Some((_, Some(b))), Some(a)) => worse(t, a, *b),
                            (Some((_, None)), _) => false,
                        };
                        if replace {
                            worst = Some((start, v));
                        }
                    });
                    let (at, v) = worst.unwrap_or((0, None));
                    (
                        judged > 0 && failed == 0,
                        v,
                        Some(Windows {
                            length: w,
                            judged,
                            failed,
                            worst_at_s: at,
                        }),
                    )
                }
            };
            Verdict {
                threshold: t.source.clone(),
                ok,
                observed: observed.map(|v| (v * 1e6).round() / 1e6),
                unit: unit(t).to_string(),
                windows: windows_info,
                abort_on_fail: t.abort_on_fail,
                agg: t.agg.to_string(),
                note: (t.metric.name == "recovery_time" && observed.is_none()).then(|| {
                    // A drill stopped early cannot tell (its own verdict
                    // says "not judged"); one that ran out did not recover.
                    r.drill
                        .as_ref()
                        .map(|d| d.verdict.clone())
                        .filter(|v| v.starts_with("not judged"))
                        .unwrap_or_else(|| "did not recover".to_string())
                }),
            }
        })
        .collect()
}

/// Watches the timeline during a run for thresholds with abort_on_fail.
pub struct Watcher {
    ts: Vec<Threshold>,
    /// Everything up to `next` (exclusive).
    total: Tick,
    next: u64,
    /// The most recent seconds, for windows.
    recent: VecDeque<Tick>,
    longest: u64,
}

impl Watcher {
    /// `None` when no threshold aborts.
    pub fn new(ts: &[Threshold]) -> Option<Watcher> {
        let ts: Vec<Threshold> = ts.iter().filter(|t| t.abort_on_fail).cloned().collect();
        if ts.is_empty() {
            return None;
        }
        let longest = ts
            .iter()
            .filter_map(|t| t.window.map(|w| w.as_secs()))
            .max()
            .unwrap_or(1);
        Some(Watcher {
            ts,
            total: Tick::new(0),
            next: 0,
            recent: VecDeque::new(),
            longest,
        })
    }

    /// Takes in the complete seconds of the timeline (all but the newest,
    /// which workers may still be reporting) and judges; the reason to abort,
    /// if a threshold is lost.
    pub fn update(&mut self, timeline: &crate::metrics::Timeline) -> Option<String> {
        for (s, t) in timeline.complete_since(self.next) {
            self.total.merge(t);
            self.recent.push_back(t.clone());
            if self.recent.len() as u64 > self.longest {
                self.recent.pop_front();
            }
            self.next = s + 1;
        }
        let elapsed = self.next;
        for t in &self.ts {
            if Duration::from_secs(elapsed) < t.delay_abort.max(Duration::from_secs(1)) {
                continue;
            }
            let v = match t.window {
                None => observe_tick(t, &self.total, elapsed as f64),
                Some(w) => {
                    let len = w.as_secs();
                    if (self.recent.len() as u64) < len {
                        continue;
                    }
                    let mut acc = Tick::new(0);
                    for tick in self.recent.iter().rev().take(len as usize) {
                        acc.merge(tick);
                    }
                    // As at the end of the run: an idle window is not
                    // judged (a stage planned at zero must not abort).
                    if acc.idle() {
                        continue;
                    }
                    observe_tick(t, &acc, len as f64)
                }
            };
            // No data yet is not a loss for the run so far (the first
            // answers may simply not be back). A whole window of requests
            // waiting with none back is one, as it is at the end of the
            // run: a stalled target must be able to stop the run.
            let lost = match v {
                Some(v) => !t.op.holds(v, t.bound),
                None => t.window.is_some(),
            };
            if lost {
                let shown = Verdict {
                    threshold: t.source.clone(),
                    ok: false,
                    observed: v,
                    unit: unit(t).to_string(),
                    windows: None,
                    abort_on_fail: true,
                    agg: t.agg.to_string(),
                    note: None,
                }
                .observed_text();
                return Some(format!(
                    "threshold `{}` failed after {elapsed}s ({shown}) and has abort_on_fail",
                    t.source
                ));
            }
        }
        None
    }
}

/// `[thresholds]` of the run config: `metric{tags} = ["expr", { threshold =
/// "expr", abort_on_fail = true, delay_abort_eval = "10s" }]`.
#[derive(Debug)]
pub enum ThresholdEntry {
    Plain(String),
    Full(FullEntry),
}

/// A string or a table, with the table's own error (an unknown key, a
/// wrong type) rather than "did not match any variant".
impl<'de> serde::Deserialize<'de> for ThresholdEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(ThresholdEntry::Plain(s)),
            v @ toml::Value::Table(_) => FullEntry::deserialize(v)
                .map(ThresholdEntry::Full)
                .map_err(|e| D::Error::custom(e.message())),
            other => {
                let kind = other.type_str();
                let a = if kind.starts_with(['a', 'i']) {
                    "an"
                } else {
                    "a"
                };
                Err(D::Error::custom(format!(
                    "a threshold is a string (\"p(95)<500\") or a table ({{ threshold = \"p(95)<500\", abort_on_fail = true }}), not {a} {kind}"
                )))
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullEntry {
    pub threshold: String,
    #[serde(default)]
    pub abort_on_fail: bool,
    #[serde(default, with = "crate::config::opt_duration")]
    pub delay_abort_eval: Option<Duration>,
}

/// The config file's thresholds, parsed.
pub fn from_file(
    table: &std::collections::BTreeMap<String, Vec<ThresholdEntry>>,
) -> Result<Vec<Threshold>, String> {
    let mut out = Vec::new();
    for (key, entries) in table {
        let (metric, tags) = parse_selector(key).map_err(|e| format!("[thresholds]: {e}"))?;
        for e in entries {
            let (text, abort, delay) = match e {
                ThresholdEntry::Plain(s) => (s.as_str(), false, None),
                ThresholdEntry::Full(f) => {
                    (f.threshold.as_str(), f.abort_on_fail, f.delay_abort_eval)
                }
            };
            let mut t = parse_expression(text, metric, &tags)
                .map_err(|e| format!("[thresholds] {key}: {e}"))?;
            t.abort_on_fail = abort;
            t.delay_abort = delay.unwrap_or(Duration::ZERO);
            out.push(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Measured, Recorder};

    /// A run of `seconds` seconds: each second, 100 requests of `ms(s)`
    /// milliseconds, `failed(s)` of them failing.
    fn run(seconds: u64, ms: impl Fn(u64) -> f64, failed: impl Fn(u64) -> u64) -> Results {
        let mut r = Results::default();
        r.names.endpoints = vec!["GET /a".into(), "POST /b".into()];
        r.names.tenants = vec!["acme".into(), "globex".into()];
        let mut rec = Recorder::default();
        for s in 0..seconds {
            for i in 0..100u64 {
                let fail = i < failed(s);
                rec.request(
                    &Measured {
                        endpoint: (i % 2) as u32,
                        tenant: u32::from(i % 4 == 0),
                        status: Some(if fail { 500 } else { 200 }),
                        error: None,
                        duration: Duration::from_secs_f64(ms(s) / 1000.0),
                        service: Duration::from_secs_f64(ms(s) / 1000.0),
                        lag: Duration::from_micros(50),
                        waiting: None,
                        receiving: None,
                        connecting: None,
                        tls: None,
                        bytes_received: 10,
                        bytes_sent: 10,
                    },
                    None,
                );
                rec.check(0, !fail);
            }
            let tick = rec.take_tick(s + 1, 0, 0);
            let mut tick = tick;
            tick.second = s;
            r.timeline.add(tick);
        }
        r.check_names = vec!["status as recorded".into()];
        r.absorb(rec);
        r.meta.elapsed = Duration::from_secs(seconds);
        r
    }

    fn judge(exprs: &[&str], r: &Results) -> Vec<Verdict> {
        let ts: Vec<Threshold> = exprs.iter().flat_map(|e| parse(e).unwrap()).collect();
        evaluate(&ts, r)
    }

    #[test]
    fn run_wide_thresholds() {
        // 60 s at 100 ms, with a 2 s burst of 900 ms in the middle.
        let r = run(
            60,
            |s| if (30..32).contains(&s) { 900.0 } else { 100.0 },
            |_| 1,
        );
        let v = judge(
            &[
                "http_req_duration: p(95)<500",
                "http_req_duration: p(99)<500",
                "http_req_duration: max<=1s",
                "http_req_failed: rate<0.02",
                "http_req_failed: rate<0.005",
                "http_reqs: count==6000, rate>99",
                "checks: rate>0.98",
                "http_req_duration{tenant:globex,endpoint:GET /a}: med<150",
                "http_reqs{tenant:acme}: count==4500",
                "http_req_failed{status:5xx}: rate==1",
                "checks{check:status as recorded}: rate>=0.99",
                "session_duration: p(95)<1000",
            ],
            &r,
        );
        let oks: Vec<bool> = v.iter().map(|x| x.ok).collect();
        assert_eq!(
            oks,
            vec![
                true, false, true, true, false, true, true, true, true, true, true, true, false
            ]
        );
        let p99 = v[1].observed.unwrap();
        assert!((895.0..=905.0).contains(&p99), "{p99}");
        assert_eq!(v[1].unit, "ms");
        assert_eq!(v[4].observed, Some(0.01));
        assert_eq!(v[6].observed, Some(100.0));
        assert_eq!(v[6].unit, "/s");
        assert_eq!(v[7].observed, Some(0.99));
        // Nothing to judge is a failure, said as such.
        assert_eq!(v[12].observed, None);
        assert_eq!(v[12].observed_text(), "no data");
        assert_eq!(
            v[1].observed_text(),
            format!("p(99)={}ms", v[1].observed.unwrap())
        );
    }

    #[test]
    fn every_window_must_hold() {
        let r = run(
            120,
            |s| if (70..75).contains(&s) { 900.0 } else { 100.0 },
            |_| 0,
        );
        let v = judge(
            &[
                "http_req_duration: p(95)<500",
                "http_req_duration: p(95)<500 over 1m",
                "http_req_duration: p(95)<500 over 2m",
                "http_req_duration: p(90)<500 over 10s",
                "http_reqs: rate>=100 over 30s",
            ],
            &r,
        );
        assert!(v[0].ok, "over the whole run the burst is under 5%");
        // 61 one-minute windows; those holding the 5 s burst have 8% slow.
        assert!(!v[1].ok);
        let w = v[1].windows.as_ref().unwrap();
        assert_eq!(w.judged, 61);
        assert!(w.failed > 0 && w.failed < 61, "{w:?}");
        // Windows starting at 14 to 60 hold 4 or 5 of the slow seconds.
        assert_eq!(w.failed, 47);
        assert_eq!(w.worst_at_s, 14);
        assert!(v[1].observed.unwrap() > 800.0);
        // A window as long as the run: one window, which holds.
        assert!(v[2].ok && v[2].windows.as_ref().unwrap().judged == 1);
        assert!(!v[3].ok);
        assert!(v[4].ok, "{:?}", v[4]);
    }

    #[test]
    fn idle_windows_are_not_judged_but_stalled_ones_fail() {
        // A healthy 10 s run, then the drain: a last second with nothing
        // asked of the target (the timeline's partial last row).
        let mut r = run(10, |_| 100.0, |_| 0);
        r.timeline.add(Tick::new(10));
        let v = judge(&["http_req_duration: p(95)<500 over 1s"], &r);
        assert!(v[0].ok, "{:?}", v[0]);
        assert_eq!(v[0].windows.as_ref().unwrap().judged, 10);
        // The same second with requests waiting on a stalled target and
        // none answered: no data, which fails.
        let mut r = run(10, |_| 100.0, |_| 0);
        let mut stalled = Tick::new(10);
        stalled.in_flight = 40;
        r.timeline.add(stalled);
        let v = judge(&["http_req_duration: p(95)<500 over 1s"], &r);
        assert!(!v[0].ok);
        let w = v[0].windows.as_ref().unwrap();
        assert_eq!((w.judged, w.failed, w.worst_at_s), (11, 1, 10));
        assert_eq!(v[0].observed_text(), "no data");
        // A run with nothing in it at all still fails: nothing was judged.
        let r = run(0, |_| 100.0, |_| 0);
        assert!(!judge(&["http_req_duration: p(95)<500 over 1s"], &r)[0].ok);
    }

    #[test]
    fn a_stage_is_judged_on_its_own_seconds() {
        // Stages: 0–20 s at 100 ms, 20–40 s at 900 ms with 10% failing
        // (the spike), 40–60 s at 100 ms again.
        let spike = |s: u64| (20..40).contains(&s);
        let mut r = run(
            60,
            |s| if spike(s) { 900.0 } else { 100.0 },
            |s| if spike(s) { 10 } else { 0 },
        );
        r.stages = vec![20.0, 40.0];
        let v = judge(
            &[
                "http_req_duration{stage:1}: p(99)<500",
                "http_req_duration{stage:2}: p(99)<500",
                "http_req_duration{stage:3}: p(99)<500",
                "http_req_failed{stage:2}: rate<0.05",
                "http_req_failed{stage:3}: rate<0.05",
                "http_reqs{stage:2}: rate>99",
                "http_reqs{stage:2}: count==2000",
                "dropped_sessions{stage:2}: count==0",
            ],
            &r,
        );
        let ok: Vec<bool> = v.iter().map(|v| v.ok).collect();
        assert_eq!(
            ok,
            [true, false, true, false, true, true, true, true],
            "{v:?}"
        );
        assert!((v[1].observed.unwrap() - 900.0).abs() < 5.0, "{:?}", v[1]);
        assert!((v[3].observed.unwrap() - 0.1).abs() < 1e-9, "{:?}", v[3]);
        assert!((v[5].observed.unwrap() - 100.0).abs() < 1e-9, "{:?}", v[5]);
        // The spec's name is kept as written.
        assert_eq!(v[7].threshold, "dropped_sessions{stage:2}: count==0");
        // The whole run holds the spike too, diluted.
        assert!(judge(&["http_req_failed: rate<0.05"], &r)[0].ok);
        // Stage edges inside a second: the seconds that began in a stage,
        // and a rate per second of them (200 requests in seconds 0 and 1).
        r.stages = vec![1.5, 40.0];
        let v = judge(&["http_reqs{stage:1}: rate==100"], &r);
        assert!(v[0].ok, "{v:?}");
        // A stage past the run's end has nothing to judge.
        r.stages = vec![20.0, 40.0, 60.0];
        assert_eq!(
            judge(&["http_reqs{stage:4}: count>0"], &r)[0].observed,
            None
        );
        for bad in [
            "http_req_duration{stage:0}: p(99)<500",
            "http_req_duration{stage:two}: p(99)<500",
            "http_req_duration{stage:2,tenant:acme}: p(99)<500",
            "http_req_duration{stage:2}: p(99)<500 over 10s",
            "session_duration{stage:2}: p(99)<500",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_must_match_the_run() {
        let endpoints = vec!["GET /api/products/{id}".to_string()];
        let tenants = vec!["acme".to_string()];
        let checks = vec!["status as recorded".to_string()];
        let known = Known {
            endpoints: &endpoints,
            tenants: &tenants,
            checks: &checks,
            drill: false,
            stages: 3,
            comparing: false,
        };
        let ok = parse("http_req_duration{endpoint:GET /api/products/{id},tenant:acme,method:GET,status:2xx}: p(99)<800").unwrap();
        validate(&ok, &known).unwrap();
        for (bad, expect) in [
            (
                "http_req_duration{tenant:initech}: p(99)<800",
                "tenant:initech matches nothing",
            ),
            (
                "http_req_duration{endpoint:GET /nope}: p(99)<800",
                "endpoint:GET /nope matches nothing",
            ),
            ("http_req_duration{method:PATCH}: p(99)<800", "method:PATCH"),
            ("http_req_failed{status:6xx}: rate<0.1", "status:6xx"),
            ("checks{check:body ok}: rate>0.9", "check:body ok"),
            ("recovery_time: value<2m", "only in `reprise drill`"),
            (
                "http_req_duration{stage:4}: p(99)<800",
                "stage:4 matches nothing in this run: its profile has 3 stages",
            ),
        ] {
            let e = validate(&parse(bad).unwrap(), &known).unwrap_err();
            assert!(e.contains(expect), "{bad}: {e}");
        }
        let mut t = parse("http_req_duration{tenant:acme}: p(99)<800").unwrap();
        t[0].abort_on_fail = true;
        assert!(validate(&t, &known).unwrap_err().contains("abort_on_fail"));
    }

    #[test]
    fn the_watcher_aborts_once_a_threshold_is_lost() {
        let r = run(40, |s| if s >= 20 { 900.0 } else { 100.0 }, |_| 0);
        let mut ts = parse("http_req_duration: p(95)<500 over 5s").unwrap();
        ts[0].abort_on_fail = true;
        let mut w = Watcher::new(&ts).unwrap();
        let mut partial = crate::metrics::Timeline::default();
        let mut aborted_at = None;
        for (s, t) in r.timeline.seconds() {
            partial.add(t.clone());
            if let Some(reason) = w.update(&partial) {
                aborted_at = Some((s, reason));
                break;
            }
        }
        let (s, reason) = aborted_at.expect("aborted");
        // Second 20 is judged once second 21 arrives; a 5 s window is over
        // 500 ms at p95 from its first slow second.
        assert_eq!(s, 21, "{reason}");
        assert!(
            reason.contains("http_req_duration: p(95)<500 over 5s"),
            "{reason}"
        );
        // delay_abort_eval holds the judgement back.
        ts[0].delay_abort = Duration::from_secs(30);
        let mut w = Watcher::new(&ts).unwrap();
        let mut partial = crate::metrics::Timeline::default();
        for (s, t) in r.timeline.seconds() {
            partial.add(t.clone());
            if w.update(&partial).is_some() {
                assert_eq!(s, 30, "not judged before 30 s");
                return;
            }
        }
        panic!("never aborted");
    }

    /// A target that stops answering: a latency threshold has no data in
    /// the windows of the stall, which fails at the end of the run, so it
    /// stops the run too (it ran to the end and only then failed).
    #[test]
    fn the_watcher_aborts_on_a_stalled_target() {
        let mut r = run(5, |_| 100.0, |_| 0);
        for s in 5..12 {
            let mut stalled = Tick::new(s);
            stalled.in_flight = 40;
            r.timeline.add(stalled);
        }
        let mut ts = parse("http_req_duration: p(95)<500 over 2s").unwrap();
        ts[0].abort_on_fail = true;
        let mut w = Watcher::new(&ts).unwrap();
        let mut partial = crate::metrics::Timeline::default();
        let mut aborted = None;
        for (s, t) in r.timeline.seconds() {
            partial.add(t.clone());
            if let Some(reason) = w.update(&partial) {
                aborted = Some((s, reason));
                break;
            }
        }
        let (s, reason) = aborted.expect("a stalled target stops the run");
        // Seconds 5 and 6 stalled, judged once second 7 arrives.
        assert_eq!(s, 7, "{reason}");
        assert!(reason.contains("no data"), "{reason}");
        // Without a window, the run so far has its answers: no abort.
        let mut ts = parse("http_req_duration: p(95)<500").unwrap();
        ts[0].abort_on_fail = true;
        let mut w = Watcher::new(&ts).unwrap();
        assert_eq!(w.update(&r.timeline), None);
    }

    /// A rate over a window is per second of the run the window covered:
    /// a 5 s run at 100/s judged `over 1m` is 100/s, not 500 / 60.
    #[test]
    fn a_window_rate_counts_only_the_seconds_the_run_covered() {
        let r = run(5, |_| 100.0, |_| 0);
        let v = judge(&["http_reqs: rate>90 over 1m"], &r);
        assert!(v[0].ok, "{:?}", v[0]);
        assert_eq!(v[0].observed, Some(100.0));
        // The drain's part-second at the end of a 6.2 s run sits in the
        // last 2 s window: 1.2 s of it, not 2.
        let mut r = run(6, |_| 100.0, |_| 0);
        let mut tail = Tick::new(6);
        tail.counts.requests = 20;
        r.timeline.add(tail);
        r.meta.elapsed = Duration::from_millis(6200);
        let v = judge(&["http_reqs: rate>90 over 2s"], &r);
        assert!(v[0].ok, "{:?}", v[0]);
    }

    #[test]
    fn the_watcher_does_not_abort_on_an_idle_stretch() {
        // 10 busy seconds at 100/s, then 10 with nothing planned (a stage
        // at zero): `rate>40 over 2s` holds in every window with traffic
        // (the one across the edge has 50/s), and the idle ones are not
        // judged.
        let mut r = run(10, |_| 100.0, |_| 0);
        for s in 10..20 {
            r.timeline.add(Tick::new(s));
        }
        let mut ts = parse("http_reqs: rate>40 over 2s").unwrap();
        ts[0].abort_on_fail = true;
        let mut w = Watcher::new(&ts).unwrap();
        let mut partial = crate::metrics::Timeline::default();
        for (s, t) in r.timeline.seconds() {
            partial.add(t.clone());
            assert_eq!(w.update(&partial), None, "second {s}");
        }
        // A stalled stretch (requests waiting, none answered) is not idle.
        let mut stalled = Tick::new(20);
        stalled.in_flight = 30;
        for s in 20..23 {
            stalled.second = s;
            partial.add(stalled.clone());
        }
        assert!(w.update(&partial).is_some());
    }

    #[test]
    fn config_file_entries() {
        let table: std::collections::BTreeMap<String, Vec<ThresholdEntry>> = toml::from_str(
            r#"
            http_req_duration = ["p(95)<500", { threshold = "p(99)<800 over 1m", abort_on_fail = true, delay_abort_eval = "10s" }]
            "http_req_failed{tenant:acme}" = ["rate<0.01"]
            "#,
        )
        .unwrap();
        let ts = from_file(&table).unwrap();
        assert_eq!(ts.len(), 3);
        assert!(ts[1].abort_on_fail);
        assert_eq!(ts[1].delay_abort, Duration::from_secs(10));
        assert_eq!(ts[2].source, "http_req_failed{tenant:acme}: rate<0.01");
        let bad: std::collections::BTreeMap<String, Vec<ThresholdEntry>> =
            toml::from_str(r#"http_req_duration = ["p(95)<<500"]"#).unwrap();
        let e = from_file(&bad).unwrap_err();
        assert!(e.contains("column 7"), "{e}");
        // A table's own mistake is said (it was "did not match any
        // variant of untagged enum").
        type Table = std::collections::BTreeMap<String, Vec<ThresholdEntry>>;
        for (text, says) in [
            (
                r#"x = [{ threshold = "rate<1", abort_on_fali = true }]"#,
                "unknown field `abort_on_fali`",
            ),
            (
                r#"x = [{ threshold = "rate<1", abort_on_fail = "yes" }]"#,
                "expected a boolean",
            ),
            ("x = [3]", "not an integer"),
        ] {
            let e = toml::from_str::<Table>(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
