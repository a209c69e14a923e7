//! One worker: its share of the arrivals, its sessions, its ticks.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::inflight::{Places, share};
use super::stop::Stop;
use super::{Clock, ReplayOptions, Shutdown, owner};
use crate::auth::Auth;
use crate::http::{Origin, Outcome, Request, Transport};
use crate::metrics::{Measured, Recorder, Tick};
use crate::plan::{Arrival, Plan, RequestSpec, rng_for};

/// What a worker hands in at the end.
pub struct WorkerReport {
    pub recorder: Recorder,
}

struct Inner<T, C> {
    id: usize,
    workers: usize,
    plan: Arc<Plan>,
    opts: ReplayOptions,
    origins: Vec<Origin>,
    transport: T,
    clock: C,
    start: Instant,
    rec: RefCell<Recorder>,
    limits: Limits,
    /// This worker's share of the requests in flight.
    places: Places,
    /// This worker's open sessions (the limit is on all workers' together).
    active: Cell<u64>,
    in_flight: Cell<u64>,
    /// Stops sessions: Ctrl-C, or the grace period after the end ran out.
    stop: Stop,
    shutdown: Shutdown,
    auth: Option<Arc<Auth>>,
}

/// Which worker this is and what it runs.
#[derive(Clone)]
pub struct Setup {
    pub id: usize,
    pub workers: usize,
    pub plan: Arc<Plan>,
    pub opts: ReplayOptions,
    pub shutdown: Shutdown,
    /// When the run starts (arrivals are offsets from it).
    pub start: Instant,
    /// Shared by all workers.
    pub limits: Limits,
    /// The token manager, shared by all workers.
    pub auth: Option<Arc<Auth>>,
}

/// The limits on all workers together: requests in flight (waited for) and
/// sessions open (past it, arrivals are dropped and counted).
#[derive(Clone, Debug)]
pub struct Limits {
    max_inflight: usize,
    open: Arc<AtomicU64>,
    max_sessions: u64,
    /// A worker's schedule stopped at the run's end with arrivals left.
    cut: Arc<AtomicBool>,
}

impl Limits {
    pub fn new(max_inflight: usize, max_sessions: usize) -> Limits {
        Limits {
            max_inflight: max_inflight.max(1),
            open: Arc::new(AtomicU64::new(0)),
            max_sessions: max_sessions.max(1) as u64,
            cut: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether a worker's schedule ran out of time with arrivals it never
    /// reached (a plan faster than the generator can go through).
    pub fn schedule_cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }

    /// Takes a session slot if one is free.
    fn open_session(&self) -> bool {
        if self.open.fetch_add(1, Ordering::Relaxed) < self.max_sessions {
            return true;
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
        false
    }

    fn close_session(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker of the executor, generic over the transport and the clock so
/// that tests can run it against a stand-in under paused time.
pub struct Worker<T, C> {
    inner: Rc<Inner<T, C>>,
}

/// Different stream numbers for planning a session and for drawing its
/// requests' values.
const REQUEST_STREAM: u64 = 0x7265_7175_6573_7473;

impl<T: Transport + 'static, C: Clock> Worker<T, C> {
    pub fn new(setup: Setup, transport: T, clock: C) -> Worker<T, C> {
        let Setup {
            id,
            workers,
            plan,
            opts,
            shutdown,
            start,
            limits,
            auth,
        } = setup;
        Worker {
            inner: Rc::new(Inner {
                id,
                workers,
                origins: super::origins(&plan, &opts.target),
                places: Places::new(share(limits.max_inflight, id, workers)),
                limits,
                plan,
                opts,
                transport,
                clock,
                start,
                rec: RefCell::new(Recorder::default()),
                active: Cell::new(0),
                in_flight: Cell::new(0),
                stop: Stop::following(shutdown.token()),
                shutdown,
                auth,
            }),
        }
    }

    /// Runs the worker's share of the plan to its end; `on_tick` gets each
    /// second's measurements.
    pub async fn run(self, on_tick: impl FnMut(Tick) + 'static) -> WorkerReport {
        let inner = self.inner;
        let done = CancellationToken::new();
        let ticker = tokio::task::spawn_local(ticks(inner.clone(), done.clone(), on_tick));
        schedule(&inner).await;
        // Sessions still running may finish within the grace period.
        let end = inner.start + inner.plan.length() + inner.opts.grace;
        while inner.active.get() > 0 {
            if inner.clock.now() >= end {
                inner.stop.trigger();
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                _ = inner.stop.stopped(), if !inner.stop.is_stopped() => {}
            }
            if inner.stop.is_stopped() {
                // Stopped sessions notice at their next await; give them
                // a moment to count themselves out.
                tokio::task::yield_now().await;
                if inner.active.get() > 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        done.cancel();
        let _ = ticker.await;
        let recorder = std::mem::take(&mut *inner.rec.borrow_mut());
        WorkerReport { recorder }
    }
}

/// How many arrivals the schedule goes through before it lets the sessions
/// run: past-due arrivals (a plan faster than the generator) need no wait,
/// and without a yield the loop would start sessions that never get to send.
const YIELD_EVERY: usize = 64;

/// Starts this worker's sessions as they come due.
async fn schedule<T: Transport + 'static, C: Clock>(inner: &Rc<Inner<T, C>>) {
    let segment = inner.plan.cfg.segment;
    // Past this the run is over, whatever arrivals are left: a plan the
    // generator cannot keep up with must still end on time.
    let deadline = inner.start + inner.plan.length() + inner.opts.grace;
    let mine = |a: &Arrival| {
        segment.is_none_or(|s| s.owns(a.index)) && owner(a.index, inner.workers) == inner.id
    };
    for (n, arrival) in inner.plan.arrivals().enumerate() {
        if inner.stop.is_stopped() {
            return;
        }
        if n % YIELD_EVERY == YIELD_EVERY - 1 {
            if inner.clock.now() >= deadline {
                // Every arrival left was due and never started: the run
                // counts them as dropped from the plan's totals (drawing
                // them all here would take as long again).
                inner.limits.cut.store(true, Ordering::Relaxed);
                return;
            }
            tokio::task::yield_now().await;
        }
        if !mine(&arrival) {
            continue;
        }
        let due = inner.start + arrival.due;
        tokio::select! {
            _ = inner.clock.sleep_until(due) => {}
            _ = inner.stop.stopped() => return,
        }
        if !inner.limits.open_session() {
            inner.rec.borrow_mut().session_dropped();
            continue;
        }
        inner.active.set(inner.active.get() + 1);
        // The session's state (about 2 KB) goes straight to the heap once;
        // the task holds only the box. Spawned inline, the whole state was
        // copied into the task, and again with every stage of it (a fifth
        // of a one-request session's instructions).
        tokio::task::spawn_local(Box::pin(session(inner.clone(), arrival, due)));
    }
}

/// One session: its requests in order, each after the previous response and
/// a think time.
async fn session<T: Transport + 'static, C: Clock>(
    inner: Rc<Inner<T, C>>,
    arrival: Arrival,
    due: Instant,
) {
    let open = OpenSession { inner: &inner };
    let plan = &inner.plan;
    let sp = plan.session(&arrival);
    let mut rng = rng_for(plan.cfg.seed ^ REQUEST_STREAM, arrival.index);
    let origin = &inner.origins[arrival.tenant];
    let user = inner
        .auth
        .as_ref()
        .map(|a| a.handle(arrival.tenant, arrival.index));
    let mut last_end = due;
    let mut started = false;
    let mut completed = true;
    for (i, step) in sp.steps.iter().enumerate() {
        let when = if i == 0 { due } else { last_end + step.think };
        tokio::select! {
            _ = inner.clock.sleep_until(when) => {}
            _ = inner.stop.stopped() => { completed = false; break; }
        }
        if inner.auth.as_ref().is_some_and(|a| a.skips(step.endpoint)) {
            // The recorded login: the token manager logs in instead.
            last_end = when;
            continue;
        }
        let mut spec = plan.request(&sp, step, &inner.opts.placement, &mut rng);
        let base = &inner.opts.target.base_path;
        let mut path = if base.is_empty() {
            std::mem::take(&mut spec.path_and_query)
        } else {
            format!("{base}{}", spec.path_and_query)
        };
        let token = match (&inner.auth, user) {
            (Some(auth), Some(user)) => {
                // The stop first: a session queued behind a login that the
                // stop cut short must not start another as it goes.
                let t = tokio::select! {
                    biased;
                    _ = inner.stop.stopped() => { completed = false; break; }
                    t = auth.token(user) => t,
                };
                match t {
                    Ok(t) => {
                        auth.apply(&t, &mut spec.headers, &mut path);
                        Some(t)
                    }
                    Err(_) => {
                        // No token: the session cannot go on as its user.
                        auth.count_denied();
                        completed = false;
                        break;
                    }
                }
            }
            _ => None,
        };
        // The stop first: a place freed by the stop must not send a
        // request that would only be cut short.
        let permit = tokio::select! {
            biased;
            _ = inner.stop.stopped() => { completed = false; break; }
            p = inner.places.take() => p,
        };
        let sent = inner.clock.now();
        inner.in_flight.set(inner.in_flight.get() + 1);
        let mut outcome = send(&inner, origin, &spec, &path).await;
        // A retry status with a token: log in again (once for everyone
        // holding that token) and retry once. The measurement covers both
        // tries, from the same due time.
        if let (Some(auth), Some(user), Some(old), Some(o)) = (&inner.auth, user, &token, &outcome)
            && auth.retries_on(o.status)
        {
            auth.invalidate(user, old.generation);
            auth.count_retry();
            let fresh = tokio::select! {
                t = auth.token(user) => Some(t),
                _ = inner.stop.stopped() => None,
            };
            outcome = match fresh {
                Some(Ok(t)) => {
                    auth.apply(&t, &mut spec.headers, &mut path);
                    send(&inner, origin, &spec, &path).await
                }
                // No new token: the 401 stands as the answer.
                Some(Err(_)) => outcome,
                None => None,
            };
        }
        inner.in_flight.set(inner.in_flight.get() - 1);
        drop(permit);
        let Some(o) = outcome else {
            // Stopped while in flight: no response to measure, but counted.
            let mut rec = inner.rec.borrow_mut();
            rec.request_cut();
            if !started {
                // It left, so it was late only if it left late: a target
                // that never answered is not the generator falling behind.
                rec.session_started(sent.saturating_duration_since(when) > inner.opts.late_after);
                started = true;
            }
            drop(rec);
            completed = false;
            break;
        };
        let finished = Instant::from_std(o.finished).max(sent);
        let lag = sent.saturating_duration_since(when);
        let m = Measured {
            endpoint: spec.endpoint as u32,
            tenant: plan.tenants[spec.tenant].index as u32,
            status: o.status,
            error: o.error.as_ref().map(|(k, _)| *k),
            duration: finished.saturating_duration_since(when),
            service: finished.saturating_duration_since(sent),
            lag,
            waiting: o.waiting,
            receiving: o.receiving,
            connecting: o.connecting,
            tls: o.tls,
            bytes_received: o.bytes_received,
            bytes_sent: o.bytes_sent,
        };
        let mut rec = inner.rec.borrow_mut();
        if !started {
            rec.session_started(lag > inner.opts.late_after);
            started = true;
        }
        rec.request(&m, o.error.as_ref().map(|(_, msg)| msg.as_str()));
        inner
            .opts
            .checks
            .run(spec.endpoint, m.tenant, &o, m.duration, &mut rec);
        drop(rec);
        last_end = finished;
    }
    let mut rec = inner.rec.borrow_mut();
    if !started && completed {
        // Nothing to send, and nothing stopped it: not a session the
        // target saw.
        rec.session_empty();
    } else {
        if !started {
            // Stopped before its first request left (waiting for a place,
            // a token, or its due time): late if it was overdue by then.
            let overdue = inner.clock.now().saturating_duration_since(due);
            rec.session_started(overdue > inner.opts.late_after);
        }
        rec.session_ended(last_end.saturating_duration_since(due), completed);
    }
    drop(rec);
    drop(open);
    let _ = &inner.shutdown;
}

/// A session counted open until it is dropped: at its end, or when a bug
/// panics it (tokio catches the panic in the task). Counted out by hand, a
/// panicked session stayed open for ever and the worker waited on it past
/// the grace period and every stop signal.
struct OpenSession<'a, T, C> {
    inner: &'a Inner<T, C>,
}

impl<T, C> Drop for OpenSession<'_, T, C> {
    fn drop(&mut self) {
        self.inner.active.set(self.inner.active.get() - 1);
        self.inner.limits.close_session();
    }
}

/// Sends one request; `None` when the run stopped while it was in flight.
async fn send<T: Transport + 'static, C: Clock>(
    inner: &Inner<T, C>,
    origin: &Origin,
    spec: &RequestSpec<'_>,
    path: &str,
) -> Option<Outcome> {
    let req = Request {
        method: spec.method,
        origin,
        path_and_query: path,
        headers: &spec.headers,
        body: spec.body.as_deref(),
        keep: inner.opts.checks.keep(spec.endpoint),
        sent: Default::default(),
        connected: Default::default(),
        received: Default::default(),
    };
    tokio::select! {
        biased;
        _ = inner.stop.stopped() => {
            // Cut short: what was written still went out.
            inner.rec.borrow_mut().count_sent(req.sent.get());
            None
        }
        o = inner.transport.send(&req) => Some(o),
    }
}

/// Hands over the measurements of each second, and of the last part-second
/// when the worker is done.
async fn ticks<T: Transport + 'static, C: Clock>(
    inner: Rc<Inner<T, C>>,
    done: CancellationToken,
    mut on_tick: impl FnMut(Tick),
) {
    let mut second = 0u64;
    loop {
        let next = inner.start + Duration::from_secs(second + 1);
        let finished = tokio::select! {
            _ = inner.clock.sleep_until(next) => false,
            _ = done.cancelled() => true,
        };
        let tick =
            inner
                .rec
                .borrow_mut()
                .take_tick(second + 1, inner.in_flight.get(), inner.active.get());
        let mut tick = tick;
        tick.second = second;
        on_tick(tick);
        second += 1;
        if finished {
            return;
        }
    }
}
