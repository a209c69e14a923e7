//! Running a plan: one executor for every mode.
//!
//! Workers are threads, one per CPU this process may use, each with its own
//! single-threaded runtime, HTTP connections and recorder — nothing shared on
//! the hot path. Every worker walks the same arrival sequence and starts the
//! sessions that are its share; a session sends its requests one after the
//! other, each due after the previous response plus the think time. Every
//! request has a due instant: latency is measured from it (so a stalled
//! target shows in the numbers instead of being hidden by a generator that
//! waited), service time from the actual send, and the difference is the
//! generator's lag. Shutdown is passed in: on Ctrl-C, workers stop starting
//! sessions, drop what is in flight and hand in what they measured.

mod clock;
mod inflight;
mod stop;
mod worker;

use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use clock::{Clock, PreciseClock, TokioClock};
pub use worker::{Limits, Setup, Worker, WorkerReport};

use crate::auth::Auth;
use crate::check::Checks;
use crate::http::{Client, ClientOptions, Origin, Target};
use crate::live::Live;
use crate::metrics::{Results, Tick, Timeline};
use crate::plan::{Placement, Plan, mix};
use crate::threshold::Watcher;

/// Everything the executor needs beyond the plan.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub target: Target,
    pub placement: Placement,
    pub client: ClientOptions,
    pub workers: usize,
    /// Requests in flight at once, all workers together (each holds an
    /// equal share).
    pub max_inflight: usize,
    /// Sessions open at once, all workers together; arrivals beyond are
    /// dropped (and counted).
    pub max_sessions: usize,
    /// A session whose first request leaves later than this behind its
    /// schedule is counted late.
    pub late_after: Duration,
    /// How long sessions still running at the end may go on.
    pub grace: Duration,
    /// Checks run on every response.
    pub checks: Arc<Checks>,
}

/// Stops a run: the first Ctrl-C triggers it, or the run aborts itself
/// (every login failed; later, a lost threshold) with a reason.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    /// Why, and the exit code it calls for.
    reason: Arc<Mutex<Option<(String, u8)>>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Ctrl-C.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Stops the run because of what it found, with the exit code that
    /// calls for (the first reason stays).
    pub fn abort(&self, reason: String, exit_code: u8) {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert((reason, exit_code));
        self.token.cancel();
    }

    pub fn triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why the run aborted itself; `None` when it was not (or was stopped
    /// by Ctrl-C).
    pub fn reason(&self) -> Option<String> {
        self.aborted().map(|(r, _)| r)
    }

    /// The reason and the exit code of an abort.
    pub fn aborted(&self) -> Option<(String, u8)> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

/// Where Ctrl-C goes. `main` installs the signal handler once and passes
/// this in; a command that can stop gracefully arms it with its
/// [`Shutdown`]. The first press triggers the armed shutdown; a second
/// press, or a press with nothing armed, asks for an immediate exit.
#[derive(Clone, Debug, Default)]
pub struct Interrupts {
    armed: Arc<Mutex<Option<Shutdown>>>,
    presses: Arc<AtomicU32>,
    first: Arc<Mutex<Option<std::time::Instant>>>,
}

/// Signals this soon after the first are the same stop said twice: GNU
/// `timeout` (and some CI runners) send SIGTERM to the child and then to
/// its process group, microseconds apart, and the second must not throw
/// the results away as a second Ctrl-C would.
const SAME_STOP: Duration = Duration::from_millis(250);

impl Interrupts {
    pub fn arm(&self, s: &Shutdown) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
    }

    pub fn disarm(&self) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A Ctrl-C. Returns true when the process should exit at once.
    pub fn press(&self) -> bool {
        {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            match *first {
                Some(t) if t.elapsed() < SAME_STOP => return false,
                Some(_) => {}
                None => *first = Some(std::time::Instant::now()),
            }
        }
        let n = self.presses.fetch_add(1, Ordering::SeqCst) + 1;
        match &*self.armed.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(s) if n == 1 => {
                s.trigger();
                false
            }
            _ => true,
        }
    }
}

/// What the run looks like now, once a second.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub elapsed: Duration,
    pub planned: Duration,
    pub requests: u64,
    pub failed: u64,
    /// Over the last second.
    pub rate: f64,
    /// None when nothing came back in it.
    pub p95_ms: Option<f64>,
    pub active_sessions: u64,
    pub in_flight: u64,
}

/// Which worker runs arrival `index` (after the segment has taken its share).
pub fn owner(index: u64, workers: usize) -> usize {
    (mix(index ^ 0x5eed_f00d) % workers as u64) as usize
}

/// The origin for each of the plan's tenants.
pub fn origins(plan: &Plan, target: &Target) -> Vec<Origin> {
    plan.tenants
        .iter()
        .map(|t| target.origin(&t.name))
        .collect()
}

/// Runs `plan` on worker threads with the hyper client, calling `progress`
/// about once a second, and returns the merged results (metadata left for
/// the caller to fill).
pub fn run(
    plan: Arc<Plan>,
    opts: ReplayOptions,
    auth: Option<Arc<Auth>>,
    (watcher, mut live): (Option<Watcher>, Option<Live>),
    shutdown: Shutdown,
    mut progress: impl FnMut(&Progress),
) -> Results {
    // Each worker holds a share of the requests in flight: never more
    // workers than places.
    let workers = opts.workers.clamp(1, opts.max_inflight.max(1));
    let (tick_tx, tick_rx) = channel::<Tick>();
    // Workers start together a little after now, so none begins behind.
    let start = Instant::now() + Duration::from_millis(50);
    if let Some(l) = &mut live {
        l.begin(std::time::SystemTime::now() + Duration::from_millis(50));
    }
    let limits = Limits::new(opts.max_inflight, opts.max_sessions);
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let setup = Setup {
                id: w,
                workers,
                plan: plan.clone(),
                opts: opts.clone(),
                shutdown: shutdown.clone(),
                start: tokio::time::Instant::from_std(start),
                limits: limits.clone(),
                auth: auth.clone(),
            };
            let tick_tx = tick_tx.clone();
            thread::Builder::new()
                .name(format!("worker {w}"))
                .spawn(move || run_worker(setup, tick_tx))
                .expect("spawning a worker thread")
        })
        .collect();
    drop(tick_tx);
    let timeline = collect(
        &tick_rx,
        &handles,
        start,
        plan.length(),
        (watcher, live.as_mut(), &shutdown),
        &mut progress,
    );
    // Whether the run was stopped (Ctrl-C, an abort), taken before the
    // live outputs linger: a Ctrl-C that only cuts the linger short leaves
    // a complete run.
    let stopped = (shutdown.triggered(), shutdown.aborted());
    // The run's length, before the live outputs linger: rates are per
    // second run, and the linger is not run time.
    let elapsed = start.elapsed();
    if let Some(mut l) = live {
        // The seconds not yet fed (the last ones).
        for (_, t) in timeline.between(l.fed(), u64::MAX) {
            l.second(t);
        }
        let quiet = l.quiet;
        let failures = l.finish(|| shutdown.triggered());
        if failures > 0 && !quiet {
            crate::say!("warning: {failures} writes to --influx failed");
        }
    }
    let mut results = Results::default();
    results.names.endpoints = plan.model.endpoints.iter().map(|e| e.name()).collect();
    results.names.tenants = plan.model.tenants.iter().map(|t| t.name.clone()).collect();
    for h in handles {
        match h.join() {
            Ok(report) => results.absorb(report.recorder),
            Err(_) => crate::say!("reprise: a worker thread failed; its measurements are lost"),
        }
    }
    results.timeline = timeline;
    results.meta.workers = workers;
    results.meta.planned = plan.length();
    results.meta.elapsed = elapsed;
    results.meta.schedule_cut = limits.schedule_cut();
    if let Some((reason, code)) = stopped.1 {
        results.meta.aborted = Some(reason);
        results.meta.abort_code = code;
    }
    results.meta.interrupted = stopped.0 && results.meta.aborted.is_none();
    results.auth = auth.map(|a| a.report());
    // Nobody could log in before the end: the run measured nothing, and
    // says so rather than passing with zero requests.
    if let Some(a) = &results.auth
        && a.cut_short > 0
        && a.logins + a.refreshes == 0
        && results.meta.aborted.is_none()
        && !results.meta.interrupted
    {
        results.meta.aborted = Some(format!(
            "no login answered before the run ended ({} still waiting, {} failed), so nothing authenticated was sent; the first: {}",
            a.cut_short,
            a.failures,
            a.examples.first().map_or("?", String::as_str)
        ));
        results.meta.abort_code = crate::app::exit::FAILURE;
    }
    results
}

fn run_worker(setup: Setup, ticks: std::sync::mpsc::Sender<Tick>) -> WorkerReport {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a worker runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let client = Client::new(setup.opts.client.clone());
        let on_tick = move |t| {
            let _ = ticks.send(t);
        };
        match PreciseClock::new() {
            Ok(clock) => {
                let timer = clock.clone();
                let client = client.pace_with(Rc::new(move |at| {
                    let timer = timer.clone();
                    Box::pin(
                        async move { timer.sleep_until(tokio::time::Instant::from_std(at)).await },
                    )
                }));
                Worker::new(setup, client, clock).run(on_tick).await
            }
            Err(_) => Worker::new(setup, client, TokioClock).run(on_tick).await,
        }
    })
}

/// Merges ticks into the timeline and reports progress until the workers
/// are done.
fn collect(
    rx: &Receiver<Tick>,
    handles: &[thread::JoinHandle<WorkerReport>],
    start: Instant,
    planned: Duration,
    (mut watcher, mut live, shutdown): (Option<Watcher>, Option<&mut Live>, &Shutdown),
    progress: &mut impl FnMut(&Progress),
) -> Timeline {
    let mut timeline = Timeline::default();
    let (mut requests, mut failed) = (0u64, 0u64);
    let mut last_report = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(t) => {
                requests += t.counts.requests;
                failed += t.counts.failed;
                timeline.add(t);
                if let Some(reason) = watcher.as_mut().and_then(|w| w.update(&timeline)) {
                    shutdown.abort(reason, crate::app::exit::THRESHOLDS);
                    watcher = None;
                }
                if let Some(l) = live.as_deref_mut() {
                    for (_, t) in timeline.complete_since(l.fed()) {
                        l.second(t);
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let latest = timeline.latest().unwrap_or_default();
            progress(&Progress {
                elapsed: start.elapsed(),
                planned,
                requests,
                failed,
                rate: latest.requests as f64,
                p95_ms: latest.p95_ms,
                active_sessions: latest.active_sessions,
                in_flight: latest.in_flight,
            });
        }
        if handles.iter().all(|h| h.is_finished()) {
            // No worker will send again: take what is left and stop.
            while let Ok(t) = rx.try_recv() {
                timeline.add(t);
            }
            break;
        }
    }
    timeline
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `timeout` sends SIGTERM twice, microseconds apart: one graceful
    /// stop. A second press later is a second Ctrl-C: exit at once.
    #[test]
    fn a_signal_repeated_at_once_is_one_stop() {
        let i = Interrupts::default();
        let s = Shutdown::new();
        i.arm(&s);
        assert!(!i.press(), "the first stops gracefully");
        assert!(s.triggered());
        assert!(!i.press(), "the same stop, said twice");
        std::thread::sleep(SAME_STOP + Duration::from_millis(50));
        assert!(i.press(), "a second Ctrl-C quits at once");
    }
}
