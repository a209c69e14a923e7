//! Measurements: per-worker recorders with fixed-size HDR histograms,
//! merged into [`Results`].
//!
//! A worker records into its own [`Recorder`] with no lock (it is one
//! thread); once a second it hands its tick — the second's counts and
//! latency histogram — to the aggregator, which merges ticks into the
//! timeline; at the end the recorders merge into the results. Histograms
//! merge exactly (HDR addition), so results of several workers, or of
//! several processes of a segmented run, combine into the same distribution
//! one process would have measured. No per-request data is kept: memory is
//! fixed by the number of (endpoint, tenant, status class) keys.

mod timeline;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use timeline::{Timeline, TimelineRow};

use crate::http::ErrorKind;

/// Microseconds, 1 µs to 1 hour, 3 significant digits (run-wide metrics).
pub type Hist = Histogram<u64>;
/// Microseconds, 1 µs to 10 minutes, 2 significant digits (per key and per
/// second, where there are many).
pub type SmallHist = Histogram<u32>;

pub fn hist() -> Hist {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds")
}

pub fn small_hist() -> SmallHist {
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("static bounds")
}

fn us(d: Duration) -> u64 {
    (d.as_micros().min(u128::from(u64::MAX)) as u64).max(1)
}

/// A response's status class; `Failed` when there was no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Failed,
    Info,
    Ok,
    Redirect,
    ClientError,
    ServerError,
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::Failed,
        Class::Info,
        Class::Ok,
        Class::Redirect,
        Class::ClientError,
        Class::ServerError,
    ];

    pub fn of(status: Option<u16>) -> Class {
        match status {
            Some(100..=199) => Class::Info,
            Some(200..=299) => Class::Ok,
            Some(300..=399) => Class::Redirect,
            Some(400..=499) => Class::ClientError,
            Some(_) => Class::ServerError,
            None => Class::Failed,
        }
    }

    /// The class of an answer that may have broken off: a response whose
    /// body was cut short or malformed is no answer, whatever its status
    /// line said, so it counts as failed (k6 gives such a response status 0).
    pub fn of_answer(status: Option<u16>, error: bool) -> Class {
        if error {
            Class::Failed
        } else {
            Class::of(status)
        }
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Failed => "none",
            Class::Info => "1xx",
            Class::Ok => "2xx",
            Class::Redirect => "3xx",
            Class::ClientError => "4xx",
            Class::ServerError => "5xx",
        }
    }

    /// k6's `http_req_failed`: no response, or a status of 400 and above.
    pub fn failed(self) -> bool {
        matches!(
            self,
            Class::Failed | Class::ClientError | Class::ServerError
        )
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What measurements are kept apart by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Endpoint index in the model.
    pub endpoint: u32,
    /// Tenant index in the model.
    pub tenant: u32,
    pub class: Class,
}

/// Per-key measurements.
#[derive(Clone, Debug)]
pub struct KeyStats {
    pub requests: u64,
    pub bytes_received: u64,
    pub duration: SmallHist,
    pub service: SmallHist,
    /// Requests since the last tick (handed to the tick, then zeroed).
    pub this_second: u64,
}

impl Default for KeyStats {
    fn default() -> Self {
        KeyStats::new()
    }
}

impl KeyStats {
    pub fn new() -> KeyStats {
        KeyStats {
            requests: 0,
            bytes_received: 0,
            duration: small_hist(),
            service: small_hist(),
            this_second: 0,
        }
    }

    fn merge(&mut self, o: &KeyStats) {
        self.requests += o.requests;
        self.bytes_received += o.bytes_received;
        let _ = self.duration.add(&o.duration);
        let _ = self.service.add(&o.service);
    }
}

/// The run-wide latency metrics, named as k6 names them.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// From the scheduled (due) time to the end of the response:
    /// coordinated-omission safe.
    pub duration: Hist,
    /// From the actual send to the end of the response.
    pub service: Hist,
    /// Send − due: how late reprise was.
    pub lag: Hist,
    pub waiting: Hist,
    pub receiving: Hist,
    pub connecting: Hist,
    pub tls: Hist,
    pub session: Hist,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            duration: hist(),
            service: hist(),
            lag: hist(),
            waiting: hist(),
            receiving: hist(),
            connecting: hist(),
            tls: hist(),
            session: hist(),
        }
    }
}

impl Metrics {
    /// (k6 name, histogram), in the order they are reported.
    pub fn named(&self) -> [(&'static str, &Hist); 8] {
        [
            ("http_req_duration", &self.duration),
            ("http_req_service_time", &self.service),
            ("generator_lag", &self.lag),
            ("http_req_waiting", &self.waiting),
            ("http_req_receiving", &self.receiving),
            ("http_req_connecting", &self.connecting),
            ("http_req_tls_handshaking", &self.tls),
            ("session_duration", &self.session),
        ]
    }

    fn named_mut(&mut self) -> [&mut Hist; 8] {
        [
            &mut self.duration,
            &mut self.service,
            &mut self.lag,
            &mut self.waiting,
            &mut self.receiving,
            &mut self.connecting,
            &mut self.tls,
            &mut self.session,
        ]
    }

    /// (k6 name, histogram to fill), for reading results back.
    pub fn named_mut_by_name(&mut self) -> [(&'static str, &mut Hist); 8] {
        let names = [
            "http_req_duration",
            "http_req_service_time",
            "generator_lag",
            "http_req_waiting",
            "http_req_receiving",
            "http_req_connecting",
            "http_req_tls_handshaking",
            "session_duration",
        ];
        let mut hists = self.named_mut().into_iter();
        names.map(|n| (n, hists.next().expect("eight")))
    }

    fn merge(&mut self, o: &Metrics) {
        for (mine, (_, theirs)) in self.named_mut().into_iter().zip(o.named()) {
            let _ = mine.add(theirs);
        }
    }
}

/// Counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    /// No response, or status ≥ 400.
    pub failed: u64,
    /// Failures by kind (no response), in [`ErrorKind::ALL`] order.
    pub errors: [u64; 6],
    /// Responses by status class, in [`Class::ALL`] order.
    pub classes: [u64; 6],
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub sessions_started: u64,
    pub sessions_completed: u64,
    /// Started later than `--late-after` behind schedule.
    pub sessions_late: u64,
    /// Not started: too many sessions open (`--max-sessions`), or never
    /// reached by a schedule that fell behind the plan.
    pub sessions_dropped: u64,
    /// Cut short by the end of the run or Ctrl-C.
    pub sessions_interrupted: u64,
    /// Arrivals with nothing to send: every request of the session left
    /// out by `--methods` (or only the recorded login, which the token
    /// manager replaces). Neither started nor completed.
    #[serde(default)]
    pub sessions_empty: u64,
    /// Requests in flight when the run stopped (Ctrl-C, or the grace period
    /// ran out): sent, never answered, not in the latency metrics.
    pub requests_cut: u64,
    /// Check results, all checks together.
    pub checks_passed: u64,
    pub checks_failed: u64,
}

impl Counts {
    pub(crate) fn merge(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.failed += o.failed;
        for i in 0..6 {
            self.errors[i] += o.errors[i];
            self.classes[i] += o.classes[i];
        }
        self.bytes_received += o.bytes_received;
        self.bytes_sent += o.bytes_sent;
        self.sessions_started += o.sessions_started;
        self.sessions_completed += o.sessions_completed;
        self.sessions_late += o.sessions_late;
        self.sessions_dropped += o.sessions_dropped;
        self.sessions_interrupted += o.sessions_interrupted;
        self.sessions_empty += o.sessions_empty;
        self.requests_cut += o.requests_cut;
        self.checks_passed += o.checks_passed;
        self.checks_failed += o.checks_failed;
    }

    /// Takes `o` (a part of these counts) back out.
    pub(crate) fn subtract(&mut self, o: &Counts) {
        self.requests -= o.requests;
        self.failed -= o.failed;
        for i in 0..6 {
            self.errors[i] -= o.errors[i];
            self.classes[i] -= o.classes[i];
        }
        self.bytes_received -= o.bytes_received;
        self.bytes_sent -= o.bytes_sent;
        self.sessions_started -= o.sessions_started;
        self.sessions_completed -= o.sessions_completed;
        self.sessions_late -= o.sessions_late;
        self.sessions_dropped -= o.sessions_dropped;
        self.sessions_interrupted -= o.sessions_interrupted;
        self.sessions_empty -= o.sessions_empty;
        self.requests_cut -= o.requests_cut;
        self.checks_passed -= o.checks_passed;
        self.checks_failed -= o.checks_failed;
    }

    pub fn error(&self, k: ErrorKind) -> u64 {
        self.errors[ErrorKind::ALL.iter().position(|x| *x == k).expect("listed")]
    }

    pub fn class(&self, c: Class) -> u64 {
        self.classes[c.index()]
    }
}

/// One request as measured, for recording.
#[derive(Clone, Debug)]
pub struct Measured {
    pub endpoint: u32,
    pub tenant: u32,
    pub status: Option<u16>,
    pub error: Option<ErrorKind>,
    /// Due → end of response.
    pub duration: Duration,
    /// Send → end of response.
    pub service: Duration,
    pub lag: Duration,
    pub waiting: Option<Duration>,
    pub receiving: Option<Duration>,
    pub connecting: Option<Duration>,
    pub tls: Option<Duration>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

/// A failure seen, kept as an example (the first few per kind).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub kind: String,
    pub endpoint: String,
    pub message: String,
}

const EXAMPLES_PER_KIND: usize = 3;

/// One second of one worker.
#[derive(Clone, Debug)]
pub struct Tick {
    pub second: u64,
    pub counts: Counts,
    pub duration: SmallHist,
    pub service: SmallHist,
    pub lag: SmallHist,
    pub in_flight: u64,
    pub active_sessions: u64,
    /// Requests per key this second (for live metrics by tenant, endpoint
    /// and status class).
    pub keys: rustc_hash::FxHashMap<Key, u64>,
}

impl Tick {
    /// Adds another tick (of another worker, or another second).
    pub fn merge(&mut self, t: &Tick) {
        self.counts.merge(&t.counts);
        let _ = self.duration.add(&t.duration);
        let _ = self.service.add(&t.service);
        let _ = self.lag.add(&t.lag);
        self.in_flight += t.in_flight;
        self.active_sessions += t.active_sessions;
        for (k, n) in &t.keys {
            *self.keys.entry(*k).or_default() += n;
        }
    }

    /// Nothing was asked of the target and nothing waited on it: no
    /// request finished, none was in flight at the tick, none was cut
    /// short, no session was turned away. (Sessions thinking between
    /// requests do not count: they ask nothing of the target.)
    pub fn idle(&self) -> bool {
        let c = &self.counts;
        c.requests == 0 && c.requests_cut == 0 && c.sessions_dropped == 0 && self.in_flight == 0
    }

    /// Takes out a tick merged in before (sliding windows).
    pub fn subtract(&mut self, t: &Tick) {
        self.counts.subtract(&t.counts);
        let _ = self.duration.subtract(&t.duration);
        let _ = self.service.subtract(&t.service);
        let _ = self.lag.subtract(&t.lag);
        self.in_flight -= t.in_flight;
        self.active_sessions -= t.active_sessions;
        for (k, n) in &t.keys {
            if let Some(mine) = self.keys.get_mut(k) {
                *mine -= n;
            }
        }
    }

    pub fn new(second: u64) -> Tick {
        Tick {
            second,
            counts: Counts::default(),
            duration: small_hist(),
            service: small_hist(),
            lag: small_hist(),
            in_flight: 0,
            active_sessions: 0,
            keys: rustc_hash::FxHashMap::default(),
        }
    }
}

/// One worker's measurements.
pub struct Recorder {
    pub metrics: Metrics,
    pub keys: rustc_hash::FxHashMap<Key, KeyStats>,
    pub counts: Counts,
    /// (passed, failed) per check.
    pub checks: Vec<(u64, u64)>,
    /// Per check: failures on a body cut at the keep limit.
    pub checks_cut: Vec<u64>,
    /// (kind, endpoint index, message).
    pub examples: Vec<(String, u32, String)>,
    tick: Tick,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            metrics: Metrics::default(),
            keys: rustc_hash::FxHashMap::default(),
            counts: Counts::default(),
            checks: Vec::new(),
            checks_cut: Vec::new(),
            examples: Vec::new(),
            tick: Tick::new(0),
        }
    }
}

impl Recorder {
    pub fn request(&mut self, m: &Measured, message: Option<&str>) {
        let class = Class::of_answer(m.status, m.error.is_some());
        let counts = [&mut self.counts, &mut self.tick.counts];
        for c in counts {
            c.requests += 1;
            c.failed += u64::from(class.failed());
            c.classes[class.index()] += 1;
            if let Some(k) = m.error {
                c.errors[ErrorKind::ALL.iter().position(|x| *x == k).expect("listed")] += 1;
            }
            c.bytes_received += m.bytes_received;
            c.bytes_sent += m.bytes_sent;
        }
        let met = &mut self.metrics;
        met.duration.saturating_record(us(m.duration));
        met.service.saturating_record(us(m.service));
        met.lag.saturating_record(us(m.lag));
        for (h, d) in [
            (&mut met.waiting, m.waiting),
            (&mut met.receiving, m.receiving),
            (&mut met.connecting, m.connecting),
            (&mut met.tls, m.tls),
        ] {
            if let Some(d) = d {
                h.saturating_record(us(d));
            }
        }
        self.tick.duration.saturating_record(us(m.duration));
        self.tick.service.saturating_record(us(m.service));
        self.tick.lag.saturating_record(us(m.lag));
        let key = Key {
            endpoint: m.endpoint,
            tenant: m.tenant,
            class,
        };
        let k = self.keys.entry(key).or_default();
        k.requests += 1;
        k.this_second += 1;
        k.bytes_received += m.bytes_received;
        k.duration.saturating_record(us(m.duration));
        k.service.saturating_record(us(m.service));
        let kind = match (m.error, class) {
            (Some(k), _) => Some(k.name().to_string()),
            (None, Class::ClientError | Class::ServerError) => Some(class.name().to_string()),
            _ => None,
        };
        if let Some(kind) = kind
            && self.examples.iter().filter(|(k, _, _)| *k == kind).count() < EXAMPLES_PER_KIND
        {
            let msg = message.map_or_else(
                || format!("status {}", m.status.unwrap_or(0)),
                str::to_string,
            );
            self.examples.push((kind, m.endpoint, msg));
        }
    }

    pub fn session_started(&mut self, late: bool) {
        for c in [&mut self.counts, &mut self.tick.counts] {
            c.sessions_started += 1;
            c.sessions_late += u64::from(late);
        }
    }

    pub fn session_ended(&mut self, took: Duration, completed: bool) {
        for c in [&mut self.counts, &mut self.tick.counts] {
            if completed {
                c.sessions_completed += 1;
            } else {
                c.sessions_interrupted += 1;
            }
        }
        if completed {
            self.metrics.session.saturating_record(us(took));
        }
    }

    /// A failed check (recorded with [`Recorder::check`]) that was judged
    /// on a body cut at the keep limit.
    pub fn check_cut(&mut self, index: usize) {
        if self.checks_cut.len() <= index {
            self.checks_cut.resize(index + 1, 0);
        }
        self.checks_cut[index] += 1;
    }

    /// Check `index` passed or failed.
    pub fn check(&mut self, index: usize, passed: bool) {
        if self.checks.len() <= index {
            self.checks.resize(index + 1, (0, 0));
        }
        let c = &mut self.checks[index];
        if passed {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
        for c in [&mut self.counts, &mut self.tick.counts] {
            c.checks_passed += u64::from(passed);
            c.checks_failed += u64::from(!passed);
        }
    }

    /// Bytes written for a request that got no answer to measure.
    pub fn count_sent(&mut self, bytes: u64) {
        self.counts.bytes_sent += bytes;
        self.tick.counts.bytes_sent += bytes;
    }

    pub fn request_cut(&mut self) {
        self.counts.requests_cut += 1;
        self.tick.counts.requests_cut += 1;
    }

    pub fn session_dropped(&mut self) {
        self.counts.sessions_dropped += 1;
        self.tick.counts.sessions_dropped += 1;
    }

    /// An arrival that had nothing to send (see [`Counts::sessions_empty`]).
    pub fn session_empty(&mut self) {
        self.counts.sessions_empty += 1;
        self.tick.counts.sessions_empty += 1;
    }

    /// Hands over the current second's data and starts second `next`.
    pub fn take_tick(&mut self, next: u64, in_flight: u64, active_sessions: u64) -> Tick {
        let mut t = std::mem::replace(&mut self.tick, Tick::new(next));
        t.in_flight = in_flight;
        t.active_sessions = active_sessions;
        // The second's requests per key, taken from the per-key stats (one
        // map lookup per request, not two).
        for (k, s) in &mut self.keys {
            if s.this_second > 0 {
                t.keys.insert(*k, std::mem::take(&mut s.this_second));
            }
        }
        t
    }
}

/// Names for the indices in keys.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Names {
    pub endpoints: Vec<String>,
    pub tenants: Vec<String>,
}

/// What a run was.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunMeta {
    pub version: String,
    /// The command line, secrets masked.
    pub command: String,
    pub model: String,
    pub target: String,
    /// How the load was driven, in words.
    pub profile: String,
    pub seed: u64,
    pub segment: Option<String>,
    pub workers: usize,
    pub start: String,
    pub end: String,
    #[serde(rename = "planned_ms", with = "crate::metrics::ms")]
    pub planned: Duration,
    #[serde(rename = "elapsed_ms", with = "crate::metrics::ms")]
    pub elapsed: Duration,
    /// Stopped by Ctrl-C before the end.
    pub interrupted: bool,
    /// Stopped early by the run itself, and why (every login failed, a
    /// threshold with abort_on_fail was lost).
    pub aborted: Option<String>,
    /// The exit code the abort calls for.
    #[serde(skip)]
    pub abort_code: u8,
    /// The schedule stopped at the run's end with arrivals it never
    /// reached: they are counted as dropped from the plan's totals.
    #[serde(skip)]
    pub schedule_cut: bool,
}

/// `mine[i] += theirs[i]`, growing `mine` as needed.
pub fn add_counts(mine: &mut Vec<u64>, theirs: &[u64]) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), 0);
    }
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += t;
    }
}

pub fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(crate::model::time::round3(d.as_secs_f64() * 1000.0))
}

/// `#[serde(with = "crate::metrics::ms")]`: a duration as milliseconds.
pub mod ms {
    pub use super::de_ms as deserialize;
    pub use super::ser_ms as serialize;
}

/// Milliseconds (as [`ser_ms`] writes them) → a duration.
pub fn de_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = f64::deserialize(d)?;
    crate::model::time::millis(ms)
        .ok_or_else(|| serde::de::Error::custom("a duration in milliseconds, from 0 to 1e15"))
}

/// Everything a run measured.
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub meta: RunMeta,
    pub names: Names,
    pub metrics: Metrics,
    pub keys: BTreeMap<Key, KeyStats>,
    pub counts: Counts,
    pub examples: Vec<Example>,
    pub timeline: Timeline,
    /// What the token manager did, when auth was configured.
    pub auth: Option<crate::auth::AuthReport>,
    /// Check names, and (passed, failed) per check.
    pub check_names: Vec<String>,
    pub checks: Vec<(u64, u64)>,
    /// Per check: failures judged on a body cut at the keep limit (1 MiB).
    pub checks_cut: Vec<u64>,
    /// The thresholds, judged at the end of the run.
    pub thresholds: Vec<crate::threshold::Verdict>,
    /// The spike drill's analysis, for `reprise drill`.
    pub drill: Option<crate::drill::DrillReport>,
    /// Sessions the plan starts in each second (this segment's share).
    pub planned_sessions: Vec<u64>,
    /// Where the profile's stages after the first begin, seconds.
    pub stages: Vec<f64>,
    /// Against a baseline run, when one was given.
    pub comparison: Option<crate::threshold::Comparison>,
    /// The target's own metrics (`--watch`).
    pub watch: Vec<crate::watch::Watched>,
}

impl Results {
    /// Adds a worker's recorder.
    pub fn absorb(&mut self, r: Recorder) {
        self.metrics.merge(&r.metrics);
        self.counts.merge(&r.counts);
        if self.checks.len() < r.checks.len() {
            self.checks.resize(r.checks.len(), (0, 0));
        }
        for (mine, theirs) in self.checks.iter_mut().zip(&r.checks) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        add_counts(&mut self.checks_cut, &r.checks_cut);
        for (k, s) in r.keys {
            self.keys.entry(k).and_modify(|m| m.merge(&s)).or_insert(s);
        }
        for (kind, e, message) in r.examples {
            if self.examples.iter().filter(|x| x.kind == kind).count() < EXAMPLES_PER_KIND {
                let endpoint = self
                    .names
                    .endpoints
                    .get(e as usize)
                    .cloned()
                    .unwrap_or_default();
                self.examples.push(Example {
                    kind,
                    endpoint,
                    message,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ms: u64, status: Option<u16>) -> Measured {
        Measured {
            endpoint: 0,
            tenant: 0,
            status,
            error: status.is_none().then_some(ErrorKind::Refused),
            duration: Duration::from_millis(ms),
            service: Duration::from_millis(ms),
            lag: Duration::ZERO,
            waiting: None,
            receiving: None,
            connecting: None,
            tls: None,
            bytes_received: 10,
            bytes_sent: 5,
        }
    }

    #[test]
    fn workers_merge_into_one_distribution() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for i in 1..=100 {
            a.request(&m(i, Some(200)), None);
            b.request(&m(100 + i, Some(503)), None);
        }
        b.request(&m(1, None), Some("connection refused"));
        let mut r = Results::default();
        r.absorb(a);
        r.absorb(b);
        assert_eq!(r.counts.requests, 201);
        assert_eq!(r.counts.failed, 101);
        assert_eq!(r.counts.class(Class::ServerError), 100);
        assert_eq!(r.counts.error(ErrorKind::Refused), 1);
        let p50 = r.metrics.duration.value_at_quantile(0.5);
        assert!((99_000..=101_000).contains(&p50), "{p50}");
        assert_eq!(r.keys.len(), 3);
        assert_eq!(r.examples.iter().filter(|e| e.kind == "5xx").count(), 3);
        assert!(r.examples.iter().any(|e| e.message == "connection refused"));
    }
}
