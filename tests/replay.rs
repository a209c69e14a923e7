//! The replay engine: plans (due times for speed, rate, stages, tenant
//! multipliers, segments), the executor under paused time with a stand-in
//! transport, and the binary against loopback servers that record what they
//! receive.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reprise::http::{ClientOptions, Outcome, Request, Target, Transport};
use reprise::model::Model;
use reprise::plan::{Arrival, Mode, Placement, Plan, PlanConfig, Profile, Segment, Stage, Unit};
use reprise::replay::{Limits, ReplayOptions, Setup, Shutdown, TokioClock, Worker};
use serde_json::Value;

use crate::util::server::{Behaviour, Recorder, Seen};
use crate::util::{self, synth, text};

/// The synthetic ground-truth capture (three tenants, ids disjoint between
/// tenants), as a HAR, imported once for the whole module.
fn synth_model() -> &'static (PathBuf, Arc<Model>) {
    static MODEL: OnceLock<(PathBuf, Arc<Model>)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let har = dir.join("synth.har");
        std::fs::write(
            &har,
            synth::har(&synth::generate(&synth::Truth::standard())),
        )
        .expect("writes");
        let (model, _, _) = util::import(&dir, &[har.to_str().expect("utf-8")]);
        (dir.join("model.json"), Arc::new(model))
    })
}

fn plan(cfg: PlanConfig) -> Plan {
    Plan::new(synth_model().1.clone(), cfg).expect("a plan")
}

/// A plan of more sessions than one run can draw (every arrival is drawn
/// before and during the run) is refused, not left to hang; a big one is
/// not.
#[test]
fn a_plan_of_more_than_a_billion_sessions_is_refused() {
    let cfg = |level: f64| PlanConfig {
        mode: flat(Unit::SessionsPerSec, level, 100),
        ..PlanConfig::default()
    };
    let e = Plan::new(synth_model().1.clone(), cfg(1e8)).expect_err("refused");
    assert!(
        e.0.contains("the plan starts about 10,000,000,000 sessions"),
        "{}",
        e.0
    );
    assert!(Plan::new(synth_model().1.clone(), cfg(1e6)).is_ok());
}

/// A profile holding `level` for `seconds`.
fn flat(unit: Unit, level: f64, seconds: u64) -> Mode {
    Mode::Stages(Profile {
        unit,
        start: level,
        stages: vec![Stage {
            duration: Duration::from_secs(seconds),
            target: level,
        }],
    })
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Poisson counts: within `k` standard deviations of what was expected.
fn near(observed: f64, expected: f64, k: f64) -> bool {
    (observed - expected).abs() <= k * expected.sqrt() + 1.0
}

#[test]
fn speed_lays_out_the_recorded_arrivals_compressed() {
    speed_lays_out(60.0);
}

/// At a speed that compresses each recorded bucket to 50 ms, the forecast
/// still counts every one of them (it sampled the intensity every 0.1 s, and
/// so saw every other bucket).
#[test]
fn speed_lays_out_buckets_narrower_than_a_tenth_of_a_second() {
    let bucket = synth_model().1.tenants[0].arrivals.bucket().as_secs_f64();
    speed_lays_out(bucket / 0.05);
}

fn speed_lays_out(speed: f64) {
    let p = plan(PlanConfig {
        mode: Mode::Speed(speed),
        ..PlanConfig::default()
    });
    let model = &synth_model().1;
    let span = model.tenants[0].arrivals.bucket().as_secs_f64()
        * model.tenants[0].arrivals.counts.len() as f64;
    assert!(
        (secs(p.length()) - span / speed).abs() < 1e-6,
        "{:?} vs {span}/{speed}",
        p.length()
    );
    // The plan's forecast (what --dry-run prints) says the same.
    let forecast: f64 = p
        .expected(p.length())
        .iter()
        .map(|(_, rows)| rows[0].0)
        .sum();
    assert!(
        (forecast - model.capture.sessions as f64).abs() < 1.0,
        "{forecast} vs {} at speed {speed}",
        model.capture.sessions
    );
    // Every recorded session arrives once, in its own (compressed) bucket.
    let mut counts: HashMap<(usize, usize), u64> = HashMap::new();
    let mut last = Duration::ZERO;
    for a in p.arrivals() {
        assert!(a.due >= last, "arrivals come in time order");
        last = a.due;
        let t = p.tenants[a.tenant].index;
        let bucket = model.tenants[t].arrivals.bucket().as_secs_f64() / speed;
        *counts
            .entry((t, (secs(a.due) / bucket) as usize))
            .or_default() += 1;
    }
    for (ti, t) in model.tenants.iter().enumerate() {
        for (k, &c) in t.arrivals.counts.iter().enumerate() {
            assert_eq!(
                counts.get(&(ti, k)).copied().unwrap_or(0),
                c,
                "tenant {} bucket {k}",
                t.name
            );
        }
    }
}

/// `--speed` at its limit, looped: the forecast (what --dry-run prints)
/// counts each pass over the recording once, without listing the edge of
/// every compressed bucket (which ran out of memory), up to the half a
/// billion sessions of this run; looped for a day it would be more
/// sessions than a run can start, and is refused.
#[test]
fn a_fast_looped_forecast_counts_every_pass_over_the_recording() {
    let model = &synth_model().1;
    let span = model.tenants[0].arrivals.bucket().as_secs_f64()
        * model.tenants[0].arrivals.counts.len() as f64;
    let speed = 1e6;
    let looped = |duration: Duration| PlanConfig {
        mode: Mode::Speed(speed),
        looped: true,
        duration: Some(duration),
        ..PlanConfig::default()
    };
    let day = Duration::from_secs(86_400);
    assert!(Plan::new(model.clone(), looped(day)).is_err());
    // Whole passes adding up to about 500 million sessions, in one window.
    let pass = span / speed;
    let passes = (5e8 / model.capture.sessions as f64).floor();
    let run = Duration::from_secs_f64(pass * passes);
    let p = plan(looped(run));
    let forecast: f64 = p
        .expected(run + Duration::from_secs(1))
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.0))
        .sum();
    assert!(passes > 10_000.0, "{passes} passes");
    let truth = passes * model.capture.sessions as f64;
    assert!(
        (forecast / truth - 1.0).abs() < 1e-6,
        "{forecast} vs {truth} ({passes} passes)"
    );
}

#[test]
fn speed_divides_think_times() {
    let one = plan(PlanConfig::default());
    let fast = plan(PlanConfig {
        mode: Mode::Speed(10.0),
        ..PlanConfig::default()
    });
    let a = Arrival {
        index: 42,
        due: Duration::ZERO,
        tenant: 0,
    };
    let (s1, s10) = (one.session(&a), fast.session(&a));
    assert_eq!(s1.steps.len(), s10.steps.len(), "same session, same steps");
    assert!(s1.steps.len() > 1, "a session with think times");
    for (x, y) in s1.steps.iter().zip(&s10.steps) {
        assert_eq!(x.endpoint, y.endpoint);
        assert!(
            (secs(x.think) / 10.0 - secs(y.think)).abs() < 1e-6,
            "{:?} / 10 vs {:?}",
            x.think,
            y.think
        );
    }
}

/// Arrivals per window against the integral of the intensity.
fn check_windows(p: &Plan, window: Duration, k: f64) {
    let arrivals: Vec<Arrival> = p.arrivals().collect();
    for (t, rows) in p.expected(window) {
        for (w, (expected, _)) in rows.iter().enumerate() {
            let (a, b) = (w as f64 * secs(window), (w + 1) as f64 * secs(window));
            let observed = arrivals
                .iter()
                .filter(|x| x.tenant == t && secs(x.due) >= a && secs(x.due) < b)
                .count();
            assert!(
                near(observed as f64, *expected, k),
                "tenant {t} window {w}: {observed} arrivals, {expected:.1} expected"
            );
        }
    }
}

#[test]
fn rate_follows_the_shape_of_the_recorded_curve() {
    let p = plan(PlanConfig {
        mode: Mode::Rate(3.0),
        ..PlanConfig::default()
    });
    let total: f64 = p.expected(p.length()).iter().map(|(_, r)| r[0].0).sum();
    let recorded = synth_model().1.capture.sessions as f64;
    assert!(
        (total / recorded - 3.0).abs() < 0.01,
        "3× the recorded sessions: {total} vs {recorded}"
    );
    check_windows(&p, Duration::from_secs(900), 4.0);
    let n = p.arrivals().count() as f64;
    assert!(near(n, total, 4.0), "{n} arrivals, {total} expected");
}

#[test]
fn stages_ramp_linearly_in_sessions_per_second() {
    let profile = Profile {
        unit: Unit::SessionsPerSec,
        start: 0.0,
        stages: vec![
            Stage {
                duration: Duration::from_secs(20),
                target: 100.0,
            },
            Stage {
                duration: Duration::from_secs(20),
                target: 100.0,
            },
            Stage {
                duration: Duration::from_secs(20),
                target: 0.0,
            },
        ],
    };
    assert_eq!(profile.at(10.0), 50.0);
    assert_eq!(profile.at(30.0), 100.0);
    assert_eq!(profile.at(50.0), 50.0);
    let p = plan(PlanConfig {
        mode: Mode::Stages(profile),
        ..PlanConfig::default()
    });
    assert_eq!(p.length(), Duration::from_secs(60));
    let all: f64 = (0..p.tenants.len()).map(|t| p.intensity(t, 30.0)).sum();
    assert!((all - 100.0).abs() < 1e-9, "all tenants together: {all}/s");
    check_windows(&p, Duration::from_secs(5), 4.0);
    // Tenants share the sessions by their recorded weights.
    let arrivals: Vec<Arrival> = p.arrivals().collect();
    let model = &synth_model().1;
    for (i, t) in p.tenants.iter().enumerate() {
        let n = arrivals.len() as f64;
        let got = arrivals.iter().filter(|a| a.tenant == i).count() as f64 / n;
        let want = model.tenants[t.index].session_share;
        let sd = (want * (1.0 - want) / n).sqrt();
        assert!(
            (got - want).abs() < 4.0 * sd,
            "{}: {got:.3} of sessions, recorded {want:.3}",
            t.name
        );
    }
}

#[test]
fn users_are_turned_into_sessions_per_second_by_littles_law() {
    let p = plan(PlanConfig {
        mode: flat(Unit::Users, 200.0, 60),
        ..PlanConfig::default()
    });
    let mean = secs(p.mean_session());
    assert!(mean > 1.0, "sessions last: {mean}s");
    let all: f64 = (0..p.tenants.len()).map(|t| p.intensity(t, 10.0)).sum();
    assert!(
        (all * mean - 200.0).abs() < 1e-6,
        "λ × W = {} users",
        all * mean
    );
}

#[test]
fn a_tenant_multiplier_scales_that_tenant_only() {
    let base = plan(PlanConfig {
        mode: Mode::Rate(2.0),
        ..PlanConfig::default()
    });
    let noisy = plan(PlanConfig {
        mode: Mode::Rate(2.0),
        tenant_mult: vec![("globex".into(), 5.0)],
        ..PlanConfig::default()
    });
    let count = |p: &Plan, name: &str| {
        let t = p
            .tenants
            .iter()
            .position(|t| t.name == name)
            .expect("tenant");
        p.arrivals().filter(|a| a.tenant == t).count() as f64
    };
    let (g1, g5) = (count(&base, "globex"), count(&noisy, "globex"));
    assert!(
        near(g5, 5.0 * g1, 4.0 * 5f64.sqrt()),
        "globex ×5: {g1} → {g5}"
    );
    let (a1, a5) = (count(&base, "acme"), count(&noisy, "acme"));
    assert!(
        near(a5, a1, 4.0 * 2f64.sqrt()),
        "acme unchanged: {a1} → {a5}"
    );
    let t = noisy
        .tenants
        .iter()
        .position(|t| t.name == "globex")
        .expect("tenant");
    let u = noisy
        .tenants
        .iter()
        .position(|t| t.name == "acme")
        .expect("tenant");
    let at = 3600.0;
    assert!((noisy.intensity(t, at) - 5.0 * base.intensity(t, at)).abs() < 1e-9);
    assert!((noisy.intensity(u, at) - base.intensity(u, at)).abs() < 1e-9);
}

#[test]
fn segments_partition_the_sessions() {
    let cfg = PlanConfig {
        mode: Mode::Rate(1.0),
        ..PlanConfig::default()
    };
    let whole: Vec<Arrival> = plan(cfg.clone()).arrivals().collect();
    let n = 3;
    let mut owners = vec![0u32; whole.len()];
    for i in 1..=n {
        let s = Segment { index: i, count: n };
        let p = plan(PlanConfig {
            segment: Some(s),
            ..cfg.clone()
        });
        // Every process sees the same arrival sequence and keeps its share.
        let mine: Vec<Arrival> = p.arrivals().filter(|a| s.owns(a.index)).collect();
        assert!(
            near(mine.len() as f64, whole.len() as f64 / 3.0, 4.0),
            "segment {s}: {} of {}",
            mine.len(),
            whole.len()
        );
        for a in mine {
            assert_eq!(
                whole[a.index as usize], a,
                "the same arrival in the whole run"
            );
            owners[a.index as usize] += 1;
        }
    }
    assert!(
        owners.iter().all(|&o| o == 1),
        "each session run by exactly one segment"
    );
    assert!(
        "0/3".parse::<Segment>().is_err()
            && "4/3".parse::<Segment>().is_err()
            && "2/3".parse::<Segment>().is_ok()
    );
}

/// A transport that answers after a fixed time (tokio's, so it can be
/// paused) and records when each request was sent.
#[derive(Clone)]
struct Mock {
    delay: Duration,
    sent: Rc<RefCell<Vec<(Duration, String)>>>,
    start: tokio::time::Instant,
    in_flight: Rc<Cell<usize>>,
    most_in_flight: Rc<Cell<usize>>,
    /// Every request whose number (from 1) is a multiple of this panics: a
    /// bug in a session.
    panic_every: Option<usize>,
}

impl Mock {
    fn new(delay: Duration, start: tokio::time::Instant) -> Mock {
        Mock {
            delay,
            sent: Rc::default(),
            start,
            in_flight: Rc::default(),
            most_in_flight: Rc::default(),
            panic_every: None,
        }
    }
}

impl Transport for Mock {
    async fn send(&self, req: &Request<'_>) -> Outcome {
        let now = tokio::time::Instant::now();
        self.sent
            .borrow_mut()
            .push((now - self.start, req.path_and_query.to_string()));
        if self
            .panic_every
            .is_some_and(|n| self.sent.borrow().len().is_multiple_of(n))
        {
            panic!("a bug in a session (test)");
        }
        self.in_flight.set(self.in_flight.get() + 1);
        self.most_in_flight
            .set(self.most_in_flight.get().max(self.in_flight.get()));
        tokio::time::sleep(self.delay).await;
        self.in_flight.set(self.in_flight.get() - 1);
        let end = tokio::time::Instant::now().into_std();
        Outcome {
            started: now.into_std(),
            finished: end,
            status: Some(200),
            error: None,
            connecting: None,
            tls: None,
            waiting: Some(self.delay),
            receiving: Some(Duration::ZERO),
            bytes_received: 10,
            bytes_sent: 10,
            kept: None,
        }
    }
}

fn options(max_inflight: usize) -> ReplayOptions {
    ReplayOptions {
        target: Target::parse("http://127.0.0.1:9").expect("target"),
        placement: Placement::default(),
        client: ClientOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            http2: false,
            tls: None,
        },
        workers: 1,
        max_inflight,
        max_sessions: 1_000_000,
        late_after: Duration::from_millis(250),
        grace: Duration::from_secs(600),
        checks: Arc::new(reprise::check::Checks::default()),
    }
}

/// The only worker of a run of `p` starting at `start`.
fn one_worker(p: Plan, start: tokio::time::Instant, max_inflight: usize) -> Setup {
    Setup {
        id: 0,
        workers: 1,
        plan: Arc::new(p),
        opts: options(max_inflight),
        shutdown: Shutdown::new(),
        start,
        limits: Limits::new(max_inflight, 1_000_000),
        auth: None,
    }
}

/// Runs `f` on a single-threaded runtime with paused time, given the
/// instant it started.
fn paused<T>(f: impl AsyncFnOnce(tokio::time::Instant) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move { f(tokio::time::Instant::now()).await })
}

/// Runs `p` on one worker with the mock transport under paused time.
fn run_paused(
    p: Plan,
    delay: Duration,
    max_inflight: usize,
) -> (reprise::replay::WorkerReport, Mock) {
    paused(async move |start| {
        let mock = Mock::new(delay, start);
        let report = Worker::new(one_worker(p, start, max_inflight), mock.clone(), TokioClock)
            .run(|_| {})
            .await;
        (report, mock)
    })
}

/// A session that panics (a bug) is counted out as it unwinds: the worker
/// still ends its run when the plan and the grace period are over, where it
/// used to wait on the dead session for ever.
#[test]
fn a_panicking_session_does_not_keep_the_run_open() {
    let p = plan(PlanConfig {
        mode: Mode::Speed(120.0),
        ..PlanConfig::default()
    });
    let sessions = p.arrivals().count();
    let (report, sent) = paused(async move |start| {
        let mut mock = Mock::new(Duration::from_millis(5), start);
        mock.panic_every = Some(10);
        let run = Worker::new(one_worker(p, start, 10_000), mock.clone(), TokioClock).run(|_| {});
        let report = tokio::time::timeout(Duration::from_secs(24 * 3600), run)
            .await
            .expect("the run ended despite the panics");
        let sent = mock.sent.borrow().len();
        (report, sent)
    });
    let c = &report.recorder.counts;
    assert!(sent >= 20, "{sent}");
    // The panicked sessions neither completed nor were interrupted; all
    // others ran to their end.
    assert_eq!(c.sessions_completed + (sent / 10) as u64, sessions as u64);
}

#[test]
fn each_request_leaves_when_due_and_latency_counts_from_then() {
    let cfg = PlanConfig {
        mode: Mode::Speed(120.0),
        ..PlanConfig::default()
    };
    let delay = Duration::from_millis(7);
    let (report, mock) = run_paused(plan(cfg.clone()), delay, 10_000);
    // What the plan says: the first request at the arrival, each next one
    // after the previous response plus its think time.
    let p = plan(cfg);
    let mut expected: Vec<Duration> = Vec::new();
    for a in p.arrivals() {
        let s = p.session(&a);
        let mut at = a.due;
        for (i, step) in s.steps.iter().enumerate() {
            if i > 0 {
                at += delay + step.think;
            }
            expected.push(at);
        }
    }
    let mut sent: Vec<Duration> = mock.sent.borrow().iter().map(|(t, _)| *t).collect();
    expected.sort();
    sent.sort();
    assert_eq!(sent.len(), expected.len(), "every planned request was sent");
    // tokio's timers have millisecond granularity: each request can leave
    // up to a millisecond late, which carries into its session's next ones
    // (sessions here have at most four requests).
    for (s, e) in sent.iter().zip(&expected) {
        assert!(
            *s >= *e && *s - *e <= Duration::from_millis(5),
            "sent at {s:?}, due {e:?}"
        );
    }
    let r = report.recorder;
    assert_eq!(r.counts.requests, expected.len() as u64);
    assert_eq!(r.counts.sessions_completed, p.arrivals().count() as u64);
    let ms = |h: &reprise::metrics::Hist, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    assert!(
        ms(&r.metrics.service, 0.5) >= 6.9 && ms(&r.metrics.service, 0.99) <= 8.1,
        "service time is the mock's 7 ms"
    );
    assert!(
        ms(&r.metrics.lag, 0.99) <= 1.01,
        "never more than a timer tick late"
    );
    assert!(ms(&r.metrics.duration, 0.99) <= 8.1);
}

#[test]
fn waiting_for_a_free_slot_counts_in_the_latency() {
    // 20 single-worker sessions a second for 5 s, each request taking
    // 100 ms, at most one in flight: requests queue behind each other.
    let cfg = PlanConfig {
        mode: flat(Unit::SessionsPerSec, 20.0, 5),
        think_scale: 0.0,
        ..PlanConfig::default()
    };
    let (report, mock) = run_paused(plan(cfg), Duration::from_millis(100), 1);
    assert_eq!(mock.most_in_flight.get(), 1, "--max-inflight holds");
    let r = report.recorder;
    let p50 = |h: &reprise::metrics::Hist| h.value_at_quantile(0.5) as f64 / 1000.0;
    assert!(
        (p50(&r.metrics.service) - 100.0).abs() < 2.0,
        "service time stays the target's"
    );
    assert!(
        p50(&r.metrics.duration) > 1000.0,
        "latency from due includes the queue: {}",
        p50(&r.metrics.duration)
    );
    assert!(
        p50(&r.metrics.lag) > 900.0,
        "and the generator's lag says why"
    );
    assert!(
        r.counts.sessions_late > 0,
        "sessions that started late are counted"
    );
}

// ---- The binary against loopback servers ----

/// Runs `reprise replay` with a config file; returns the process output and
/// the summary.json written.
pub fn replay(
    dir: &Path,
    model: &Path,
    toml: &str,
    args: &[&str],
) -> (std::process::Output, Value) {
    let config = dir.join("run.toml");
    std::fs::write(&config, toml).expect("writes");
    let out_dir = dir.join("out");
    let out = util::reprise()
        .arg("replay")
        .arg(model)
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&out_dir)
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .expect("runs");
    let summary = std::fs::read(out_dir.join("summary.json"))
        .map(|b| serde_json::from_slice(&b).expect("summary.json is JSON"))
        .unwrap_or(Value::Null);
    (out, summary)
}

/// An endpoint name of the synth model for a request seen on the wire.
fn endpoint_of(s: &Seen) -> String {
    let path = s.path();
    let templated: Vec<String> = path
        .split('/')
        .map(|seg| {
            if seg.parse::<u64>().is_ok() {
                "{id}".to_string()
            } else if seg.len() == 36 && seg.matches('-').count() == 4 {
                "{uuid}".to_string()
            } else {
                seg.to_string()
            }
        })
        .collect();
    format!("{} {}", s.method, templated.join("/"))
}

#[test]
fn a_replay_reproduces_the_models_mix_tenants_and_ids() {
    let (model_path, model) = synth_model();
    let server = Recorder::start(Behaviour::default());
    let dir = tempfile::tempdir().expect("tempdir");
    // 1,000 sessions a second for 12 s; think times scaled down so that the
    // sessions finish within the run.
    let toml = format!(
        "target = \"{}\"\nthink_scale = 0.005\ngrace = \"20s\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 1000\nstages = [{{ duration = \"12s\", target = 1000 }}]\n",
        server.url()
    );
    let (out, summary) = replay(dir.path(), model_path, &toml, &["--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = server.seen();
    assert_eq!(
        seen.len() as u64,
        summary["requests"]["total"].as_u64().expect("total"),
        "every request counted once"
    );

    // The endpoint mix, within 2 points of the model's.
    let mut by_endpoint: BTreeMap<String, u64> = BTreeMap::new();
    for s in &seen {
        *by_endpoint.entry(endpoint_of(s)).or_default() += 1;
    }
    let total_model: u64 = model.endpoints.iter().map(|e| e.requests).sum();
    for e in &model.endpoints {
        let want = e.requests as f64 / total_model as f64;
        let got = by_endpoint.get(&e.name()).copied().unwrap_or(0) as f64 / seen.len() as f64;
        assert!(
            (got - want).abs() < 0.02,
            "{}: {got:.4} of requests replayed, {want:.4} in the model",
            e.name()
        );
    }
    assert_eq!(
        by_endpoint.len(),
        model.endpoints.len(),
        "no other endpoints: {by_endpoint:?}"
    );

    // Tenants' shares of requests within 1 point; every id is the tenant's own.
    let truth = synth::Truth::standard();
    let mut by_tenant: BTreeMap<String, u64> = BTreeMap::new();
    for s in &seen {
        let tenant = s
            .header("x-tenant-id")
            .expect("the tenant travels in its recorded header")
            .to_string();
        let ti = truth
            .tenants
            .iter()
            .position(|(t, _)| *t == tenant)
            .expect("a known tenant");
        for seg in s.path().split('/') {
            if let Ok(id) = seg.parse::<u32>() {
                assert!(
                    synth::Truth::product_ids(ti).contains(&id),
                    "{tenant} sent id {id} of another tenant"
                );
            }
            if seg.len() == 36 && seg.matches('-').count() == 4 {
                // synth order ids carry their tenant in the third group.
                assert_eq!(
                    &seg[15..18],
                    format!("{ti:03x}"),
                    "{tenant} sent order {seg} of another tenant"
                );
            }
        }
        if s.method == "POST" && s.path() == "/api/orders" {
            let body: Value = serde_json::from_slice(&s.body).expect("a JSON order");
            let id = body["product_id"].as_u64().expect("product id") as u32;
            assert!(
                synth::Truth::product_ids(ti).contains(&id),
                "{tenant} ordered product {id} of another tenant"
            );
        }
        *by_tenant.entry(tenant).or_default() += 1;
    }
    for t in &model.tenants {
        let got = by_tenant.get(&t.name).copied().unwrap_or(0) as f64 / seen.len() as f64;
        assert!(
            (got - t.request_share).abs() < 0.01,
            "{}: {got:.4} of requests, {:.4} in the model",
            t.name,
            t.request_share
        );
    }

    // The session rate achieved: within 2 % of the plan's (its Poisson
    // arrivals for this seed, themselves near 1,000/s).
    let planned = plan(PlanConfig {
        mode: flat(Unit::SessionsPerSec, 1000.0, 12),
        think_scale: 0.005,
        ..PlanConfig::default()
    })
    .arrivals()
    .count() as f64;
    assert!(near(planned, 12_000.0, 4.0), "{planned} arrivals planned");
    let started = summary["sessions"]["started"].as_u64().expect("sessions") as f64;
    assert!(
        (started / planned - 1.0).abs() < 0.02,
        "{started} sessions started, {planned} planned"
    );
    let elapsed = summary["run"]["elapsed_ms"].as_f64().expect("elapsed");
    let first_and_last: Vec<Duration> = seen.iter().map(|s| s.at).collect();
    let span = first_and_last.iter().max().copied().unwrap_or_default();
    assert!(
        span < Duration::from_secs(14) && elapsed < 14_000.0,
        "sessions kept to the 12 s schedule: {span:?}"
    );
    assert_eq!(summary["sessions"]["dropped"], 0);
    assert_eq!(summary["requests"]["failed"], 0);
}

/// A recorded value that cannot stand on a request line as it is (a CR LF
/// in a hand-edited pool) is escaped on the wire: it cannot start a header
/// or a second request.
#[test]
fn pool_values_cannot_break_the_request_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::demo_model(dir.path());
    let path = dir.path().join("model.json");
    let mut m = util::read_json(&path);
    for t in m["tenants"].as_array_mut().expect("tenants") {
        if let Some(values) = t["pools"]["products.id"]["values"].as_array_mut() {
            for v in values {
                v[0] = "7\r\nX-Injected: yes".into();
            }
        }
    }
    std::fs::write(&path, m.to_string()).expect("writes");
    let server = Recorder::start(Behaviour::default());
    let toml = format!(
        "target = \"{}\"\nallow_hosts = [\"127.0.0.1\"]\nthink_scale = 0.01\ngrace = \"1s\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 40\nstages = [{{ duration = \"2s\", target = 40 }}]\n",
        server.url()
    );
    let (out, _) = replay(dir.path(), &path, &toml, &["--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = server.seen();
    let items: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.target.starts_with("/api/products/7"))
        .collect();
    assert!(!items.is_empty(), "product reads were sent");
    for s in &items {
        assert_eq!(s.target, "/api/products/7%0D%0AX-Injected:%20yes");
    }
    assert!(
        seen.iter()
            .all(|s| s.headers.iter().all(|(k, _)| k != "x-injected")),
        "no header was injected"
    );
}

/// A plan far faster than one generator can even go through (30 million
/// sessions a second): the run still sends, ends at its length plus grace,
/// and every planned session is accounted for, started or dropped.
#[test]
fn a_plan_beyond_the_generator_ends_on_time_and_counts_what_it_missed() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    let server = Recorder::start(Behaviour::default());
    let toml = format!(
        "target = \"{}\"\ngrace = \"500ms\"\nthreads = 1\n[profile]\nunit = \"sessions_per_sec\"\nstart = 30000000\nstages = [{{ duration = \"1s\", target = 30000000 }}]\n",
        server.url()
    );
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &toml,
        &["--quiet"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let elapsed = summary["run"]["elapsed_ms"].as_f64().expect("elapsed");
    assert!(
        elapsed < 3_000.0,
        "the run ended at 1 s + 0.5 s grace: {elapsed} ms"
    );
    let sessions = &summary["sessions"];
    let n = |k: &str| sessions[k].as_u64().expect("count");
    assert!(!server.seen().is_empty(), "sessions got to send");
    let histograms = util::read_json(&dir.path().join("out/histograms.json"));
    let planned: u64 = histograms["planned_sessions"]
        .as_array()
        .expect("planned series")
        .iter()
        .map(|v| v.as_u64().expect("count"))
        .sum();
    assert!(planned > 25_000_000, "{planned}");
    assert_eq!(
        n("started") + n("dropped") + n("empty"),
        planned,
        "every planned session started or dropped: {sessions}"
    );
    assert!(n("dropped") > n("started"), "{sessions}");
    // The timeline has them too: its seconds add up to the total.
    let csv = std::fs::read_to_string(dir.path().join("out/timeline.csv")).expect("timeline");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "sessions_dropped")
        .expect("column");
    let per_second: u64 = lines
        .map(|l| {
            l.split(',')
                .nth(col)
                .expect("cell")
                .parse::<u64>()
                .expect("count")
        })
        .sum();
    assert_eq!(per_second, n("dropped"));
}

#[test]
fn a_stall_shows_in_latency_from_due_and_in_service_time() {
    // One request per session, 200 sessions a second for 10 s; the server
    // holds everything arriving between 3 s and 4 s until 4 s.
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 600);
    let server = Recorder::stalling(Duration::from_secs(3), Duration::from_secs(4));
    let toml = format!(
        "target = \"{}\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 200\nstages = [{{ duration = \"10s\", target = 200 }}]\n",
        server.url()
    );
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &toml,
        &["--quiet"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let metric = |name: &str, q: &str| {
        crate::util::metric(&summary, name)[q]
            .as_f64()
            .expect("a number")
    };
    // Open-model truth: a tenth of the requests wait 0–1 s, so p99 ≈ 900 ms
    // and p95 ≈ 500 ms.
    let (p95, p99) = (
        metric("http_req_duration", "p95"),
        metric("http_req_duration", "p99"),
    );
    assert!(
        (400.0..=620.0).contains(&p95),
        "p95 from due {p95} ms; truth ≈ 500 ms"
    );
    assert!(
        (820.0..=1000.0).contains(&p99),
        "p99 from due {p99} ms; truth ≈ 900 ms"
    );
    // Requests left on time: the wait was the server's.
    let service_p99 = metric("http_req_service_time", "p99");
    assert!(
        service_p99 >= 800.0,
        "service time shows the stall too: {service_p99} ms"
    );
    let lag_p99 = metric("generator_lag", "p99");
    eprintln!(
        "stall: p95 {p95} ms, p99 {p99} ms, service p99 {service_p99} ms, lag p99 {lag_p99} ms"
    );
    assert!(
        lag_p99 < 100.0,
        "reprise kept the schedule: lag p99 {lag_p99} ms"
    );
    assert_eq!(summary["requests"]["failed"], 0);
}

#[test]
fn segments_together_send_exactly_what_one_process_sends() {
    let (model_path, _) = synth_model();
    let run = |segment: Option<&str>| {
        let server = Recorder::start(Behaviour::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = format!("target = \"{}\"\nspeed = 2400\n", server.url());
        let mut args = vec!["--quiet"];
        if let Some(s) = segment {
            args.extend(["--segment", s]);
        }
        let (out, _) = replay(dir.path(), model_path, &toml, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut sent: Vec<String> = server
            .seen()
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} {}",
                    s.header("x-tenant-id").unwrap_or(""),
                    s.method,
                    s.target,
                    text(&s.body)
                )
            })
            .collect();
        sent.sort();
        sent
    };
    let whole = run(None);
    assert!(whole.len() > 1000, "{} requests", whole.len());
    let mut parts: Vec<String> = Vec::new();
    for s in ["1/3", "2/3", "3/3"] {
        let part = run(Some(s));
        assert!(
            !part.is_empty() && part.len() < whole.len(),
            "segment {s}: {} requests",
            part.len()
        );
        parts.extend(part);
    }
    parts.sort();
    assert_eq!(
        parts, whole,
        "the segments' requests are the whole run's, none twice"
    );
}

/// Plain HTTP/1.1 goes through the lean client, `--http2` through hyper's
/// HTTP/2 client; both must send the same requests and read every answer.
#[test]
fn the_lean_http1_client_and_hypers_http2_send_the_same_requests() {
    let (model_path, _) = synth_model();
    let run = |extra: &[&str]| {
        let server = Recorder::start(Behaviour::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = format!("target = \"{}\"\nspeed = 2400\n", server.url());
        let mut args = vec!["--quiet", "--duration", "5s"];
        args.extend(extra);
        let (out, summary) = replay(dir.path(), model_path, &toml, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(summary["requests"]["failed"], 0);
        let seen = server.seen();
        assert_eq!(summary["requests"]["total"], seen.len());
        let versions: std::collections::BTreeSet<String> =
            seen.iter().map(|s| s.version.clone()).collect();
        let mut sent: Vec<String> = seen
            .iter()
            .map(|s| {
                let mut headers: Vec<String> = s
                    .headers
                    .iter()
                    .filter(|(k, _)| k != "host" && k != "content-length")
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                headers.sort();
                format!(
                    "{} {} {} {}",
                    s.method,
                    s.target,
                    headers.join("; "),
                    text(&s.body)
                )
            })
            .collect();
        sent.sort();
        (versions, sent)
    };
    let (v1, h1) = run(&[]);
    let (v2, h2) = run(&["--http2"]);
    assert_eq!(v1.into_iter().collect::<Vec<_>>(), ["HTTP/1.1"]);
    assert_eq!(v2.into_iter().collect::<Vec<_>>(), ["HTTP/2.0"]);
    assert!(h1.len() > 1000, "{} requests", h1.len());
    assert_eq!(h1, h2, "the same requests, headers and bodies either way");
}

/// `--http2` is HTTP/2 only: a server that chooses no protocol by ALPN
/// gets HTTP/2 all the same (it fell back to HTTP/1.1 without a word),
/// as it does without `--http2` HTTP/1.1.
#[test]
fn http2_is_kept_when_the_server_chooses_no_protocol() {
    let (model_path, _) = synth_model();
    let server = Recorder::start(Behaviour {
        tls: true,
        no_alpn: true,
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!("target = \"{}\"\nspeed = 2400\n", server.url());
    let mut versions = Vec::new();
    for extra in [None, Some("--http2")] {
        let mut args = vec!["--quiet", "--duration", "1s", "--insecure"];
        args.extend(extra);
        let before = server.seen().len();
        let (out, summary) = replay(dir.path(), model_path, &toml, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(summary["requests"]["failed"], 0);
        let seen: std::collections::BTreeSet<String> = server.seen()[before..]
            .iter()
            .map(|s| s.version.clone())
            .collect();
        versions.push(seen.into_iter().collect::<Vec<_>>());
    }
    assert_eq!(versions, [["HTTP/1.1"], ["HTTP/2.0"]]);
}

/// HTTPS staging with a self-signed certificate: without `--insecure`
/// every request is measured as a TLS failure (the run goes on); with it,
/// the replay goes through, over HTTP/2 as ALPN chose, the handshakes timed.
#[test]
fn https_with_a_self_signed_certificate_is_replayed_with_insecure() {
    let (model_path, _) = synth_model();
    let server = Recorder::start(Behaviour {
        tls: true,
        ..Default::default()
    });
    assert!(server.url().starts_with("https://"));
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!("target = \"{}\"\nspeed = 2400\n", server.url());
    let args = ["--quiet", "--duration", "2s"];
    let (out, summary) = replay(dir.path(), model_path, &toml, &args);
    assert_ne!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let total = summary["requests"]["total"].as_u64().expect("a total");
    assert!(total > 100, "{total} requests");
    assert_eq!(summary["requests"]["failed"], total);
    let errors = summary["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "tls");
    assert_eq!(errors[0]["count"], total);
    assert!(server.seen().is_empty(), "nothing got through");

    let insecure = ["--quiet", "--duration", "2s", "--insecure"];
    let (out, summary) = replay(dir.path(), model_path, &toml, &insecure);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(summary["requests"]["failed"], 0);
    let seen = server.seen();
    assert_eq!(summary["requests"]["total"], seen.len());
    assert!(seen.iter().all(|s| s.version == "HTTP/2.0"));
    let tls = crate::util::metric(&summary, "http_req_tls_handshaking");
    assert!(tls["count"].as_u64().unwrap_or(0) >= 1, "{tls}");
}

#[test]
fn hosts_the_capture_was_recorded_on_are_refused() {
    // The synth capture was recorded on api.example.com.
    let (model_path, _) = synth_model();
    let out = util::reprise()
        .args([
            "replay",
            model_path.to_str().expect("utf-8"),
            "--target",
            "https://api.example.com",
            "--dry-run",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--allow-host api.example.com"),
        "{}",
        text(&out.stderr)
    );
    // The same host spelled with DNS's root dot is still the same host.
    let out = util::reprise()
        .args([
            "replay",
            model_path.to_str().expect("utf-8"),
            "--target",
            "https://api.example.com.:443",
            "--dry-run",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = util::reprise()
        .args([
            "replay",
            model_path.to_str().expect("utf-8"),
            "--target",
            "https://API.example.com",
            "--allow-host",
            "api.example.com",
            "--dry-run",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("nothing was sent"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_dry_run_prints_the_plan_per_tenant() {
    let (model_path, model) = synth_model();
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "target = \"http://127.0.0.1:9\"\n[profile]\nunit = \"sessions_per_sec\"\nstages = [{ duration = \"1m\", target = 10 }, { duration = \"1m\", target = 10 }]\n";
    std::fs::write(dir.path().join("run.toml"), toml).expect("writes");
    let out = util::reprise()
        .arg("replay")
        .arg(model_path)
        .arg("--config")
        .arg(dir.path().join("run.toml"))
        .arg("--dry-run")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for t in &model.tenants {
        assert!(s.contains(&t.name), "{s}");
    }
    // 5/s on average over the ramp, 10/s held: 900 sessions in all.
    let all = s
        .lines()
        .find(|l| l.trim_start().starts_with("all "))
        .expect("a total line");
    assert!(all.contains(" 900 sessions"), "{all}");
}

/// A capture that told no tenants apart has one `default` tenant: a
/// `{tenant}` host sends it to `default.<domain>`, which is said before
/// the run rather than found out from a wall of DNS errors.
#[test]
fn a_tenant_host_warns_when_the_capture_has_no_tenants() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 5);
    let out = util::reprise()
        .arg("replay")
        .arg(dir.path().join("model.json"))
        .args(["--target", "http://{tenant}.staging.test:8080", "--dry-run"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("sends its requests to http://default.staging.test:8080"),
        "{}",
        text(&out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_run_and_still_writes_the_results() {
    a_signal_stops_the_run_and_still_writes_the_results(libc::SIGINT);
}

/// Kubernetes, ECS and CI runners stop a job with SIGTERM: the same
/// graceful stop as Ctrl-C (it exited 143 and wrote nothing).
#[cfg(unix)]
#[test]
fn sigterm_stops_the_run_like_ctrl_c() {
    a_signal_stops_the_run_and_still_writes_the_results(libc::SIGTERM);
}

#[cfg(unix)]
fn a_signal_stops_the_run_and_still_writes_the_results(signal: libc::c_int) {
    let (model_path, _) = synth_model();
    let server = Recorder::start(Behaviour::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reprise"))
        .arg("replay")
        .arg(model_path)
        .args([
            "--target",
            &server.url(),
            "--rate",
            "50",
            "--duration",
            "10m",
            "--quiet",
            "--out",
        ])
        .arg(&out_dir)
        .spawn()
        .expect("starts");
    // Wait until traffic flows, then interrupt.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.seen().len() < 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "no traffic within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: sending a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let status = loop {
        if let Some(s) = child.try_wait().expect("waits") {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline + Duration::from_secs(30),
            "did not stop after signal {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.code(),
        Some(130),
        "the documented exit code for an interrupted run"
    );
    let summary: Value = util::read_json(&out_dir.join("summary.json"));
    assert_eq!(summary["run"]["interrupted"], true);
    assert!(summary["requests"]["total"].as_u64().expect("total") >= 50);
    assert!(out_dir.join("timeline.csv").is_file() && out_dir.join("histograms.json").is_file());
    // The summary says what stopped it, whichever signal it was.
    let text = std::fs::read_to_string(out_dir.join("summary.txt")).expect("summary.txt");
    assert!(
        text.contains("INTERRUPTED (Ctrl-C or a stop signal): partial results"),
        "{text}"
    );
}

#[test]
fn methods_and_a_host_header_shape_what_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::demo_model(dir.path());
    let model = dir.path().join("model.json");
    let server = Recorder::start(Behaviour::default());
    let toml = format!(
        "target = \"{}\"\nthink_scale = 0.01\ngrace = \"5s\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 50\nstages = [{{ duration = \"2s\", target = 50 }}]\n",
        server.url()
    );
    let args = [
        "--quiet",
        "--allow-host",
        "127.0.0.1",
        "--methods",
        "POST",
        "--header",
        "Host: api.staging.example",
    ];
    let (out, summary) = replay(dir.path(), &model, &toml, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = server.seen();
    assert!(seen.len() >= 20, "{} requests", seen.len());
    assert_eq!(summary["requests"]["total"], seen.len());
    assert!(seen.iter().all(|s| s.method == "POST"), "only POSTs");
    // Logins send the tenant's own recorded emails: the body's email field
    // varied in the capture, so it is drawn from each tenant's pool (it was
    // one acme address for every tenant).
    let logins: Vec<&Seen> = seen.iter().filter(|s| s.path() == "/api/login").collect();
    assert!(logins.len() >= 5, "{} logins", logins.len());
    let mut emails = std::collections::BTreeSet::new();
    for l in &logins {
        let tenant = l.header("x-tenant-id").expect("the tenant header");
        let body: Value = serde_json::from_slice(&l.body).expect("a JSON body");
        let email = body["email"].as_str().expect("an email");
        assert!(
            email.ends_with(&format!("@{tenant}.example")),
            "{tenant}: {email}"
        );
        assert!(body["password"].is_null(), "no password was recorded");
        emails.insert(email.to_string());
    }
    assert!(emails.len() > 1, "{emails:?}");
    assert!(
        seen.iter()
            .all(|s| s.header("host") == Some("api.staging.example")),
        "the virtual host asked for"
    );
    // Sessions of GETs only had nothing to send: counted apart, not as
    // sessions that started and completed in no time.
    let s = &summary["sessions"];
    let (started, empty) = (
        s["started"].as_u64().expect("started"),
        s["empty"].as_u64().expect("empty"),
    );
    assert!(empty > 0 && started > 0, "{s}");
    assert!(started + empty >= 90, "{s}: 50 sessions/s for 2 s");
    assert_eq!(s["completed"].as_u64().expect("completed"), started, "{s}");

    // The dry run's forecast counts only the requests --methods keeps: the
    // capture's 360 POSTs of its 1,884 requests, at --speed 40.
    let forecast = |extra: &[&str]| {
        let out = util::reprise()
            .args([
                "replay",
                model.to_str().expect("utf-8"),
                "--target",
                &server.url(),
            ])
            .args(["--allow-host", "127.0.0.1", "--dry-run", "--speed", "40"])
            .args(extra)
            .output()
            .expect("runs");
        let text = text(&out.stdout);
        text.lines()
            .find(|l| l.trim_start().starts_with("all "))
            .expect("a total line")
            .to_string()
    };
    assert!(
        forecast(&[]).ends_with(" 1,884 requests"),
        "{}",
        forecast(&[])
    );
    let posts = forecast(&["--methods", "POST"]);
    assert!(posts.ends_with(" 360 requests"), "{posts}");
    // A method the model never recorded is a typo, not an empty run.
    let (out, _) = replay(dir.path(), &model, &toml, &["--methods", "FOO"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("--methods FOO: no FOO request in the model (it has: GET, POST)"),
        "{}",
        text(&out.stderr)
    );
    // Nor is a Host header that is no host.
    let (out, _) = replay(dir.path(), &model, &toml, &["--header", "Host: a/b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("a Host header is a host[:port]"));
}

/// Under `nohup` (SIGHUP ignored when reprise starts), a hang-up leaves it
/// running; otherwise SIGHUP stops it like SIGTERM and Ctrl-C.
#[cfg(unix)]
#[test]
fn sighup_is_left_ignored_under_nohup() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    for nohup in [true, false] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_reprise"));
        cmd.args(["demo-target", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped());
        if nohup {
            // SAFETY: only async-signal-safe signal() between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGHUP, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reads");
        assert!(line.contains("listening on"), "{line}");
        // SAFETY: signals to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(300));
        let after_hangup = child.try_wait().expect("waits");
        if nohup {
            assert!(
                after_hangup.is_none(),
                "a hang-up stopped a nohup'd reprise"
            );
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().expect("waits") {
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(130), "nohup {nohup}");
    }
}

/// A stalled target behind `--max-inflight 1`: the sessions queued for a
/// place are late, not on time, and the stop sends none of them (they were
/// counted in time and cut short by the dozen, each on a new connection).
#[test]
fn sessions_queued_behind_max_inflight_are_late_and_the_stop_sends_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    // Every request is held for a minute: nothing is ever answered.
    let server = Recorder::stalling(Duration::ZERO, Duration::from_secs(60));
    let toml = format!(
        "target = \"{}\"\ngrace = \"1s\"\nmax_inflight = 1\n[profile]\nunit = \"sessions_per_sec\"\nstart = 20\nstages = [{{ duration = \"2s\", target = 20 }}]\n",
        server.url()
    );
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &toml,
        &["--quiet"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = &summary["sessions"];
    let started = s["started"].as_u64().expect("started");
    let late = s["late"].as_u64().expect("late");
    assert!(started >= 38, "{s}");
    // The stop comes a second after the last arrival, so every queued
    // session was far past --late-after (250 ms); only the first got its
    // place on time.
    assert!(late >= started - 2, "{s}");
    assert_eq!(summary["requests"]["cut_short"], 1, "{summary}");
    assert_eq!(server.seen().len(), 1, "one request ever left");
    // And what it wrote counts in data_sent (it read 0 for a stalled run).
    let sent = summary["requests"]["bytes_sent"].as_u64().expect("bytes");
    assert!(sent > 20, "{sent} bytes sent");
}

/// Results that could not be written are found before the run, not after
/// it: `--out` naming a file, `--junit` naming a directory or a missing
/// one fail at once with exit 2 and nothing is sent.
#[test]
fn unwritable_outputs_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 20);
    let server = Recorder::start(Behaviour::default());
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let model = dir.path().join("model.json");
    let missing = dir.path().join("no/such/dir/junit.xml");
    for (flag, path, needle) in [
        ("--out", file.clone(), "exists and is not a directory"),
        ("--junit", dir.path().to_path_buf(), "is a directory"),
        ("--junit", missing, "does not exist"),
        ("--out", file.join("sub"), "cannot create it"),
    ] {
        let out = util::reprise()
            .args(["replay", model.to_str().unwrap(), "--target"])
            .arg(server.url())
            .args(["--speed", "100", "--quiet", flag])
            .arg(&path)
            .output()
            .expect("runs");
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {}: {err}",
            path.display()
        );
        assert!(err.contains(flag) && err.contains(needle), "{err}");
    }
    assert_eq!(server.seen().len(), 0, "nothing was sent");
    // A dry run, which checks a CI job before it runs, finds the same
    // mistakes without creating anything.
    let run = dir.path().join("run");
    for (flags, needle) in [
        (
            vec!["--out".into(), file.clone()],
            "exists and is not a directory",
        ),
        (
            vec![
                "--out".into(),
                run.clone(),
                "--junit".into(),
                dir.path().join("no/such/dir/junit.xml"),
            ],
            "does not exist",
        ),
    ] {
        let out = util::reprise()
            .args(["replay", model.to_str().unwrap(), "--target"])
            .arg(server.url())
            .arg("--dry-run")
            .args(&flags)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
    }
    assert!(!run.exists(), "a dry run creates nothing");
    // A report inside the run directory is fine: that is made first.
    let inside = util::reprise()
        .args(["replay", model.to_str().unwrap(), "--target"])
        .arg(server.url())
        .args(["--dry-run", "--out"])
        .arg(&run)
        .arg("--junit")
        .arg(run.join("junit.xml"))
        .output()
        .expect("runs");
    assert_eq!(inside.status.code(), Some(0), "{}", text(&inside.stderr));
    let demo = util::reprise()
        .args(["demo", "--duration", "5s", "--out"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(demo.status.code(), Some(2), "{}", text(&demo.stderr));
    assert!(
        !text(&demo.stderr).contains("listens on"),
        "refused before the demo target starts"
    );
}

/// Form bodies recorded as HAR `params` are sent so the target can read
/// them: a multipart body's delimiters are the Content-Type's boundary
/// (the recorded header kept its own while the body got another, so no
/// server could parse it), and fields recorded for a JSON body go as a
/// JSON object, not as a form labelled JSON.
#[test]
fn form_bodies_from_har_params_are_sent_as_their_content_type_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entry = |at: &str, path: &str, mime: &str, header: Option<&str>| {
        let headers: Vec<serde_json::Value> = header
            .map(|h| serde_json::json!({"name": "Content-Type", "value": h}))
            .into_iter()
            .collect();
        serde_json::json!({
            "startedDateTime": at, "time": 5,
            "request": {
                "method": "POST", "url": format!("http://shop.test{path}"), "headers": headers,
                "postData": {"mimeType": mime, "params": [
                    {"name": "hello", "value": "world"},
                    {"name": "note", "value": "a b&c"}
                ]}
            },
            "response": {"status": 200}
        })
    };
    let har = serde_json::json!({"log": {"entries": [
        entry("2024-05-01T10:00:00.000Z", "/upload", "multipart/form-data; boundary=---boundary",
              Some("multipart/form-data; boundary=---boundary")),
        entry("2024-05-01T10:00:01.000Z", "/bare", "multipart/form-data", None),
        entry("2024-05-01T10:00:02.000Z", "/log", "application/json", Some("application/json")),
    ]}});
    let file = dir.path().join("forms.har");
    std::fs::write(&file, har.to_string()).expect("writes");
    util::import(dir.path(), &[file.to_str().expect("utf-8")]);
    let seen = replay_to(dir.path(), &["--speed", "10"]);
    let get = |path: &str| {
        seen.iter()
            .find(|s| s.path() == path)
            .unwrap_or_else(|| panic!("no {path} in {seen:?}"))
    };
    for path in ["/upload", "/bare"] {
        let s = get(path);
        let ct = s.header("content-type").expect("a content type");
        let boundary = ct.split("boundary=").nth(1).expect("a boundary");
        let body = String::from_utf8_lossy(&s.body);
        assert!(
            body.starts_with(&format!("--{boundary}\r\n"))
                && body.ends_with(&format!("--{boundary}--\r\n")),
            "{path}: {ct} / {body}"
        );
        assert!(body.contains("name=\"note\"\r\n\r\na b&c\r\n"), "{body}");
        assert_eq!(
            s.headers
                .iter()
                .filter(|(k, _)| k == "content-type")
                .count(),
            1
        );
    }
    assert!(
        get("/upload").header("content-type") == Some("multipart/form-data; boundary=---boundary")
    );
    let log = get("/log");
    assert_eq!(log.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&log.body).expect("a JSON body");
    assert_eq!(v, serde_json::json!({"hello": "world", "note": "a b&c"}));
}

/// Late means the generator fell behind: a session whose first request
/// left on time and then waited on a stalled target until the run ended
/// is not late (every one of them was).
#[test]
fn sessions_waiting_on_a_stalled_target_are_not_late() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    let server = Recorder::stalling(Duration::ZERO, Duration::from_secs(30));
    let out = util::reprise()
        .arg("replay")
        .arg(dir.path().join("model.json"))
        .args(["--target", &server.url(), "--rate", "5", "--duration", "2s"])
        .args([
            "--grace",
            "500ms",
            "--late-after",
            "250ms",
            "--quiet",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = util::read_json(&dir.path().join("out/summary.json"));
    let started = summary["sessions"]["started"].as_u64().expect("started");
    assert!(started >= 5, "{summary}");
    assert_eq!(summary["requests"]["cut_short"], started, "{summary}");
    assert_eq!(summary["sessions"]["late"], 0, "{summary}");
}

/// Query parameters go out in the combinations the recording had: ones
/// always sent together stay together, ones never sent together are not
/// mixed, a repeated one is repeated, and a request without a query stays
/// without one (each parameter was drawn on its own: `?a=2&flag=`).
#[test]
fn query_parameters_keep_their_recorded_combinations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shapes = ["/q?a=1&a=2", "/q?empty=&flag=", "/q?x=7&y=8", "/q"];
    let mut log = String::new();
    for i in 0..80 {
        log.push_str(&format!(
            "10.1.{}.{} - - [22/Jan/2019:00:00:{:02} +0000] \"GET {} HTTP/1.1\" 200 12 \"-\" \"ua\"\n",
            i % 7,
            i % 5 + 1,
            i % 60,
            shapes[i % 4]
        ));
    }
    std::fs::write(dir.path().join("q.log"), log).expect("writes");
    let (model, _, _) = util::import(dir.path(), &[dir.path().join("q.log").to_str().unwrap()]);
    assert_eq!(
        model.endpoints[0].query_shapes.len(),
        4,
        "{:?}",
        model.endpoints[0]
    );
    // A share of requests: `a` is in a quarter of them, twice each.
    let a = model.endpoints[0]
        .query
        .iter()
        .find(|q| q.name == "a")
        .expect("a");
    assert_eq!(a.presence, 0.25);
    let replayed = replay_to(dir.path(), &["--rate", "20", "--duration", "3s"]);
    let names = |target: &str| -> Vec<String> {
        target
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .map(|kv| kv.split('=').next().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let recorded: std::collections::BTreeSet<Vec<String>> =
        shapes.iter().map(|s| names(s)).collect();
    let mut seen = std::collections::BTreeMap::<Vec<String>, usize>::new();
    for s in &replayed {
        *seen.entry(names(&s.target)).or_default() += 1;
    }
    let sent: usize = seen.values().sum();
    assert!(sent > 60, "{sent} requests");
    for (shape, n) in &seen {
        assert!(
            recorded.contains(shape),
            "{shape:?} sent {n} times, never recorded: {seen:?}"
        );
    }
    assert_eq!(seen.len(), 4, "every recorded combination: {seen:?}");
}

/// A body that carried the path's id (`PUT /posts/7` with `{"id": 7}`)
/// carries the same id on replay: it was drawn twice from the pool, and an
/// API that checks the two agree answered 400.
#[test]
fn a_body_field_recorded_with_the_path_id_keeps_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            let id = 100 + i;
            serde_json::json!({
                "startedDateTime": format!("2024-05-01T10:00:{:02}.000Z", i),
                "time": 5,
                "request": {
                    "method": "PUT", "url": format!("http://shop.test/posts/{id}"),
                    "headers": [{"name": "Content-Type", "value": "application/json"}],
                    "postData": {"mimeType": "application/json",
                                 "text": serde_json::json!({"id": id, "title": "t"}).to_string()}
                },
                "response": {"status": 200}
            })
        })
        .collect();
    let file = dir.path().join("posts.har");
    std::fs::write(
        &file,
        serde_json::json!({"log": {"entries": entries}}).to_string(),
    )
    .expect("writes");
    util::import(dir.path(), &[file.to_str().expect("utf-8")]);
    let seen = replay_to(dir.path(), &["--rate", "5", "--duration", "3s"]);
    assert!(seen.len() >= 5, "{} requests", seen.len());
    let ids: std::collections::BTreeSet<String> =
        seen.iter().map(|s| s.path().to_string()).collect();
    assert!(ids.len() > 1, "ids still vary: {ids:?}");
    for s in &seen {
        let body: serde_json::Value = serde_json::from_slice(&s.body).expect("JSON");
        assert_eq!(
            format!("/posts/{}", body["id"]),
            s.path(),
            "the body's id is the path's"
        );
    }
}

/// Replays `dir/model.json` to a recording server of its own with `args`
/// (quietly); what the server received.
fn replay_to(dir: &Path, args: &[&str]) -> Vec<crate::util::server::Seen> {
    let server = Recorder::start(Behaviour::default());
    let out = util::reprise()
        .arg("replay")
        .arg(dir.join("model.json"))
        .args(["--target", &server.url(), "--quiet"])
        .args(args)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    server.seen()
}
