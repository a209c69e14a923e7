//! Auth during replay: test users log in, their tokens are kept fresh, and
//! a request answered 401 logs in again and is retried once.
//!
//! Recorded credentials are never replayed (the importer redacts them).
//! Each replayed session is mapped to a test user of its tenant by a stable
//! hash of the session's identity (its number in the run, the same for a
//! given seed on every machine and segment), so one replayed user is always
//! the same test user. The model keeps no recorded identities, so this is
//! the identity there is.
//!
//! The token manager is shared by all worker threads. Each (user, tenant)
//! has a slot: the token under a plain mutex (read on every request, held
//! for nanoseconds) and an async gate that makes logins single-flight —
//! a thousand sessions of one user waiting for a token cause one login.
//! A token is renewed in the background at expiry − skew (with the refresh
//! token when there is one), so requests wait for a login only when the
//! token has really expired. Auth traffic is measured on its own and never
//! mixed into the business metrics.

pub mod config;
pub mod login;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

pub use config::{AuthConfig, AuthFile, AuthKind};
pub use login::{HttpLogin, LoginRequest, LoginResponse, LoginTransport};

use config::Apply;
use login::Grant;

use crate::config::UsageError;
use crate::http::Target;
use crate::metrics::{Hist, hist};
use crate::plan::{Plan, mix};
use crate::replay::Shutdown;

/// After a failed login, the same slot does not try again for this long
/// (sessions meanwhile fail fast instead of hammering the login endpoint).
const FAILURE_BACKOFF: Duration = Duration::from_secs(1);

/// With no login ever succeeding, the run stops after this many failures.
const FATAL_AFTER: u64 = 3;

/// Failure messages kept as examples.
const EXAMPLES: usize = 5;

/// How much of a failed login's response body is shown.
const EXCERPT: usize = 200;

/// A token, as requests carry it. Its value is never printed.
pub struct Token {
    value: String,
    /// Which login of its slot made it (a 401 invalidates only that one).
    pub generation: u64,
    expires_at: Option<Instant>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"***")
            .field("generation", &self.generation)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Which slot a session uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    tenant: usize,
    slot: usize,
}

#[derive(Default)]
struct State {
    token: Option<Arc<Token>>,
    refresh: Option<String>,
    /// When to renew in the background.
    renew_at: Option<Instant>,
    renewing: bool,
    generation: u64,
    /// The last failure and until when it stands.
    failed: Option<(Instant, Arc<str>)>,
}

struct Slot {
    identity: usize,
    state: Mutex<State>,
    gate: tokio::sync::Mutex<()>,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What auth did in a run.
#[derive(Clone, Debug)]
pub struct AuthReport {
    pub kind: AuthKind,
    pub identities: usize,
    /// Every login and token request, successful or not.
    pub duration: Hist,
    /// First tokens obtained.
    pub logins: u64,
    /// Later tokens: background renewals, refresh grants, logins after
    /// expiry or a 401.
    pub refreshes: u64,
    /// Login or token requests that gave no token.
    pub failures: u64,
    /// Login or token requests still waiting for their answer when the
    /// run ended (a login slower than the run, or a stalled login server).
    pub cut_short: u64,
    /// Requests answered with a retry status, retried with a new token.
    pub retries: u64,
    /// Sessions ended because no token could be had.
    pub sessions_denied: u64,
    /// A few failures, secrets masked.
    pub examples: Vec<String>,
}

#[derive(Default)]
struct Tally {
    duration: Option<Hist>,
    examples: Vec<String>,
}

/// The token manager of a run.
pub struct Auth {
    cfg: AuthConfig,
    target: Target,
    /// Plan tenant names.
    tenants: Vec<String>,
    /// Per plan tenant, the slots of the users that serve it.
    slots: Vec<Vec<Slot>>,
    transport: Arc<dyn LoginTransport>,
    /// Model endpoints that are the login itself (left out of the replay).
    skip: Vec<bool>,
    secrets: Vec<String>,
    shutdown: Shutdown,
    tally: Mutex<Tally>,
    logins: AtomicU64,
    refreshes: AtomicU64,
    failures: AtomicU64,
    cut_short: AtomicU64,
    retries: AtomicU64,
    denied: AtomicU64,
}

/// Different stream for picking a session's user.
const USER_STREAM: u64 = 0x7573_6572_7321;

impl Auth {
    /// The manager for `plan`; users are matched to the plan's tenants
    /// here, and a tenant nobody can log in for is a usage error.
    pub fn new(
        cfg: AuthConfig,
        plan: &Plan,
        target: Target,
        transport: Arc<dyn LoginTransport>,
        shutdown: Shutdown,
    ) -> Result<Auth, UsageError> {
        Auth::with_tenants(
            cfg,
            plan.tenants.iter().map(|t| t.name.clone()).collect(),
            plan.model
                .endpoints
                .iter()
                .map(|e| (e.method.as_str(), e.path.as_str())),
            target,
            transport,
            shutdown,
        )
    }

    /// The manager for these tenant names and model endpoints
    /// (method, path template).
    pub fn with_tenants<'a>(
        cfg: AuthConfig,
        tenants: Vec<String>,
        endpoints: impl Iterator<Item = (&'a str, &'a str)>,
        target: Target,
        transport: Arc<dyn LoginTransport>,
        shutdown: Shutdown,
    ) -> Result<Auth, UsageError> {
        let mut slots = Vec::new();
        let mut missing = Vec::new();
        for name in &tenants {
            let own: Vec<usize> = (0..cfg.identities.len())
                .filter(|&i| {
                    cfg.identities[i]
                        .tenant
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case(name))
                })
                .collect();
            let users = if own.is_empty() {
                (0..cfg.identities.len())
                    .filter(|&i| cfg.identities[i].tenant.is_none())
                    .collect()
            } else {
                own
            };
            if users.is_empty() {
                missing.push(name.clone());
            }
            slots.push(
                users
                    .into_iter()
                    .map(|identity| {
                        let mut state = State::default();
                        if cfg.kind == AuthKind::ApiKey {
                            state.generation = 1;
                            state.token = Some(Arc::new(Token {
                                value: cfg.identities[identity]
                                    .get("key")
                                    .unwrap_or_default()
                                    .to_string(),
                                generation: 1,
                                expires_at: None,
                            }));
                        }
                        Slot {
                            identity,
                            state: Mutex::new(state),
                            gate: tokio::sync::Mutex::new(()),
                        }
                    })
                    .collect(),
            );
        }
        if !missing.is_empty() {
            return Err(UsageError(format!(
                "[auth]: no credentials for tenant {}: add users with these tenants, or users with an empty tenant (or `*`) who serve any tenant",
                missing.join(", ")
            )));
        }
        let login_path = cfg
            .login
            .as_ref()
            .filter(|_| cfg.skip_login_requests)
            .filter(|l| l.url.starts_with('/'))
            .map(|l| {
                let path = l.url.split('?').next().unwrap_or_default();
                (l.method.clone(), path.to_string())
            });
        let skip = endpoints
            .map(|(method, path)| {
                login_path
                    .as_ref()
                    .is_some_and(|(m, p)| method.eq_ignore_ascii_case(m) && path == p)
            })
            .collect();
        let mut secrets: Vec<String> = cfg
            .secrets()
            .iter()
            .flat_map(|s| login::encoded_forms(s))
            .collect();
        // Longest first, so no part of a secret is left around a shorter one.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(Auth {
            cfg,
            target,
            tenants,
            slots,
            transport,
            skip,
            secrets,
            shutdown,
            tally: Mutex::new(Tally::default()),
            logins: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            cut_short: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        })
    }

    /// In words, for the dry run (no secrets).
    pub fn describe(&self) -> String {
        let users = self.cfg.identities.len();
        let mut s = match &self.cfg.login {
            Some(l) => format!(
                "auth: {} ({} {}), {users} user{}",
                self.cfg.kind.name(),
                l.method,
                self.mask(&crate::model::redact::mask_url(&l.url), &[]),
                if users == 1 { "" } else { "s" }
            ),
            None => format!(
                "auth: {}, {users} key{}",
                self.cfg.kind.name(),
                if users == 1 { "" } else { "s" }
            ),
        };
        let skipped = self.skip.iter().filter(|x| **x).count();
        if skipped > 0 {
            s.push_str("; the recorded login requests are left out (the token manager logs in)");
        }
        s
    }

    /// The user session `session` of plan tenant `tenant` runs as.
    pub fn handle(&self, tenant: usize, session: u64) -> Handle {
        let n = self.slots[tenant].len() as u64;
        Handle {
            tenant,
            slot: (mix(session ^ USER_STREAM) % n) as usize,
        }
    }

    /// Whether model endpoint `e` is the login (the manager logs in itself).
    pub fn skips(&self, endpoint: usize) -> bool {
        self.skip.get(endpoint).copied().unwrap_or(false)
    }

    /// Whether a response with `status` means "log in again and retry".
    pub fn retries_on(&self, status: Option<u16>) -> bool {
        self.cfg.login.is_some() && status.is_some_and(|s| self.cfg.retry_on.contains(&s))
    }

    pub fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_denied(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    fn slot(&self, h: Handle) -> &Slot {
        &self.slots[h.tenant][h.slot]
    }

    /// A valid token for `h`: at once when there is one (starting a
    /// background renewal when it is due), else after a login — one login
    /// however many sessions are waiting.
    pub async fn token(self: &Arc<Self>, h: Handle) -> Result<Arc<Token>, Arc<str>> {
        if let Some(r) = self.current(h, true) {
            return r;
        }
        // Boxed: rare, and it keeps every request's future small.
        Box::pin(self.wait(h)).await
    }

    async fn wait(self: &Arc<Self>, h: Handle) -> Result<Arc<Token>, Arc<str>> {
        let slot = self.slot(h);
        let _gate = slot.gate.lock().await;
        // Someone else may have logged in while this one waited.
        if let Some(r) = self.current(h, false) {
            return r;
        }
        self.obtain(h, false).await
    }

    /// The token if it is still good (or the failure if one stands);
    /// `None` when a login is needed.
    fn current(
        self: &Arc<Self>,
        h: Handle,
        may_renew: bool,
    ) -> Option<Result<Arc<Token>, Arc<str>>> {
        let now = Instant::now();
        let mut st = self.slot(h).state();
        let failing = st
            .failed
            .as_ref()
            .filter(|(until, _)| now < *until)
            .map(|(_, e)| e.clone());
        if let Some(t) = &st.token
            && t.expires_at.is_none_or(|e| now < e)
        {
            let t = t.clone();
            if may_renew
                && failing.is_none()
                && !st.renewing
                && st.renew_at.is_some_and(|r| now >= r)
            {
                st.renewing = true;
                drop(st);
                let this = self.clone();
                tokio::spawn(async move { this.renew(h).await });
            }
            return Some(Ok(t));
        }
        failing.map(Err)
    }

    /// Renews token `generation` of `h` at `at` whether or not a request
    /// asks then: a user idle through its renewal window would otherwise
    /// send its next request with a token about to expire, or expired
    /// (the target checks the JWT's exp). A newer token, a renewal already
    /// under way or a standing failure makes the timer do nothing.
    fn renew_on_time(self: &Arc<Self>, h: Handle, at: Instant, generation: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            {
                let mut st = this.slot(h).state();
                if st.generation != generation || st.renewing || st.failed.is_some() {
                    return;
                }
                st.renewing = true;
            }
            this.renew(h).await;
        });
    }

    /// A background renewal.
    async fn renew(self: Arc<Self>, h: Handle) {
        struct Done<'a>(&'a Slot);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.state().renewing = false;
            }
        }
        let slot = self.slot(h);
        let _done = Done(slot);
        let _gate = slot.gate.lock().await;
        let due = {
            let st = slot.state();
            st.renew_at.is_some_and(|r| Instant::now() >= r) || st.token.is_none()
        };
        if due {
            let _ = self.obtain(h, true).await;
        }
    }

    /// Drops the token a retry status came back for (unless a newer one has
    /// replaced it already).
    pub fn invalidate(&self, h: Handle, generation: u64) {
        let mut st = self.slot(h).state();
        if st.generation == generation {
            st.token = None;
            st.renew_at = None;
        }
    }

    /// Logs in (or refreshes) with the gate held; `background` for a
    /// renewal ahead of expiry, which nobody waits for yet.
    async fn obtain(self: &Arc<Self>, h: Handle, background: bool) -> Result<Arc<Token>, Arc<str>> {
        let slot = self.slot(h);
        let (refresh, first) = {
            let st = slot.state();
            (st.refresh.clone(), st.generation == 0)
        };
        let mut result = match &refresh {
            Some(rt) => {
                self.exchange(h, &Grant::Refresh(rt.clone()), background)
                    .await
            }
            None => self.exchange(h, &Grant::Login, background).await,
        };
        if let (Err(refused), Some(_)) = (&result, &refresh) {
            // An expired or revoked refresh token: a full login instead.
            // The refusal is a failure of its own, counted and shown (the
            // login that follows would hide a refresh set-up that never
            // works and doubles the IdP's traffic).
            self.count_failure(refused.clone());
            result = self.exchange(h, &Grant::Login, background).await;
        }
        let now = Instant::now();
        let mut st = slot.state();
        match result {
            Ok(o) => {
                st.generation += 1;
                let token = Arc::new(Token {
                    value: o.value,
                    generation: st.generation,
                    expires_at: o.expires_at,
                });
                st.token = Some(token.clone());
                if o.refresh.is_some() {
                    st.refresh = o.refresh;
                }
                // Renew at expiry − skew, but never in the first half of a
                // short token's life (a 2 s token with the default 30 s skew
                // is renewed after 1 s, not continuously).
                st.renew_at = o.expires_at.map(|e| {
                    let life = e.saturating_duration_since(now);
                    e.checked_sub(self.cfg.skew.min(life / 2)).unwrap_or(now)
                });
                st.failed = None;
                let (renew_at, generation) = (st.renew_at, st.generation);
                drop(st);
                if let Some(at) = renew_at {
                    self.renew_on_time(h, at, generation);
                }
                if first {
                    self.logins.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.refreshes.fetch_add(1, Ordering::Relaxed);
                }
                Ok(token)
            }
            Err(message) => {
                let message: Arc<str> = message.into();
                st.failed = Some((now + FAILURE_BACKOFF, message.clone()));
                drop(st);
                let failures = self.count_failure(message.to_string());
                let succeeded =
                    self.logins.load(Ordering::Relaxed) + self.refreshes.load(Ordering::Relaxed);
                if succeeded == 0 && failures >= FATAL_AFTER {
                    self.shutdown.abort(
                        format!(
                            "every login failed ({failures} tried, none succeeded), so the run stopped instead of sending unauthenticated traffic; the last: {message}"
                        ),
                        crate::app::exit::FAILURE,
                    );
                }
                Err(message)
            }
        }
    }

    /// A login or token request that gave no token: counted and kept as
    /// an example; the failures so far.
    fn count_failure(&self, message: String) -> u64 {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        self.example(message);
        failures
    }

    /// Keeps `message` among the first few examples.
    fn example(&self, message: String) {
        let mut t = self.tally();
        if t.examples.len() < EXAMPLES {
            t.examples.push(message);
        }
    }

    fn tally(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One login or token request, timed; the error masked.
    async fn exchange(
        &self,
        h: Handle,
        grant: &Grant,
        background: bool,
    ) -> Result<login::Obtained, String> {
        let id = &self.cfg.identities[self.slot(h).identity];
        let tenant = &self.tenants[h.tenant];
        let req = login::request(&self.cfg, id, tenant, &self.target, grant)?;
        let what = format!("{} {} for {}", req.method, req.url, id.label());
        let started = Instant::now();
        // A login still waiting when the run ends (its future dropped) is
        // counted and explained, not lost; for its user it stands as a
        // failure (with the back-off), so the sessions queued behind it do
        // not each start another as the run is torn down. A background
        // renewal dropped while its user's token is still good (its worker
        // had no more sessions) cut nothing short.
        struct Waiting<'a> {
            auth: &'a Auth,
            h: Handle,
            started: Instant,
            what: Option<&'a str>,
            background: bool,
        }
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                let Some(what) = self.what else { return };
                if self.background
                    && self
                        .auth
                        .slot(self.h)
                        .state()
                        .token
                        .as_ref()
                        .is_some_and(|t| t.expires_at.is_none_or(|e| Instant::now() < e))
                {
                    return;
                }
                let message = self.auth.mask(
                    &format!(
                        "{what}: no answer after {:.1}s, cut short by the end of the run",
                        self.started.elapsed().as_secs_f64()
                    ),
                    &[],
                );
                self.auth.cut_short.fetch_add(1, Ordering::Relaxed);
                self.auth.slot(self.h).state().failed =
                    Some((Instant::now() + FAILURE_BACKOFF, message.as_str().into()));
                self.auth.example(message);
            }
        }
        let mut waiting = Waiting {
            auth: self,
            h,
            started,
            what: Some(&what),
            background,
        };
        let sent = self.transport.send(req).await;
        waiting.what = None;
        let took = started.elapsed();
        self.tally()
            .duration
            .get_or_insert_with(hist)
            .saturating_record((took.as_micros().min(u128::from(u64::MAX)) as u64).max(1));
        let extra: Vec<&str> = match grant {
            Grant::Refresh(rt) => vec![rt.as_str()],
            Grant::Login => Vec::new(),
        };
        let r = match sent {
            Ok(r) => r,
            Err(e) => return Err(self.mask(&format!("{what}: {e}"), &extra)),
        };
        login::extract(&self.cfg, &r, Instant::now()).map_err(|e| {
            let mut pointers: Vec<&str> = self
                .cfg
                .refresh_pointer
                .iter()
                .map(String::as_str)
                .collect();
            if let config::TokenSource::Pointer(p) = &self.cfg.token {
                pointers.push(p);
            }
            let body = excerpt(&r.body, &pointers, |s| self.mask(s, &extra));
            let msg = if body.is_empty() {
                format!("{what}: {e}")
            } else {
                format!("{what}: {e}: {body}")
            };
            self.mask(&msg, &extra)
        })
    }

    /// `s` with every credential (and `extra`, in the forms it travels
    /// in) replaced by `***`.
    pub fn mask(&self, s: &str, extra: &[&str]) -> String {
        let mut out = s.to_string();
        let mut extra: Vec<String> = extra.iter().flat_map(|e| login::encoded_forms(e)).collect();
        extra.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in self.secrets.iter().chain(&extra) {
            if secret.len() >= 3 {
                out = out.replace(secret, "***");
            }
        }
        out
    }

    /// Puts `token` on a request: its headers and its path.
    pub fn apply(
        &self,
        token: &Token,
        headers: &mut Vec<crate::http::Header<'_>>,
        path: &mut String,
    ) {
        match &self.cfg.apply {
            Apply::Header(name, template) => {
                headers.retain(|(k, _)| k != name);
                headers.push((
                    name.clone().into(),
                    template.replace("{token}", &token.value).into(),
                ));
            }
            Apply::Cookie(name) => {
                let pairs = match name {
                    Some(n) => format!("{n}={}", token.value),
                    None => token.value.clone(),
                };
                let names: Vec<&str> = pairs
                    .split("; ")
                    .filter_map(|p| p.split_once('=').map(|(n, _)| n))
                    .collect();
                let mut kept: Vec<String> = Vec::new();
                headers.retain(|(k, v)| {
                    if k == "cookie" {
                        kept.extend(
                            crate::model::identity::cookie_pairs(v)
                                .filter(|(n, _)| !names.contains(n))
                                .map(|(n, v)| format!("{n}={v}")),
                        );
                        false
                    } else {
                        true
                    }
                });
                kept.push(pairs);
                headers.push(("cookie".into(), kept.join("; ").into()));
            }
            Apply::Query(name) => {
                let sep = if path.contains('?') { '&' } else { '?' };
                let value: String =
                    url::form_urlencoded::byte_serialize(token.value.as_bytes()).collect();
                path.push(sep);
                path.push_str(name);
                path.push('=');
                path.push_str(&value);
            }
        }
    }

    /// What auth did, for the results.
    pub fn report(&self) -> AuthReport {
        let t = self.tally();
        AuthReport {
            kind: self.cfg.kind,
            identities: self.cfg.identities.len(),
            duration: t.duration.clone().unwrap_or_else(hist),
            logins: self.logins.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            cut_short: self.cut_short.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            sessions_denied: self.denied.load(Ordering::Relaxed),
            examples: t.examples.clone(),
        }
    }
}

/// The start of a response body on one line, with the values of
/// secret-looking JSON fields, of JWTs and at `pointers` (where the token
/// is read from) masked, and `mask` applied before it is cut (so no part of
/// a secret is left at the cut).
fn excerpt(body: &[u8], pointers: &[&str], mask: impl Fn(&str) -> String) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            for p in pointers {
                if let Some(x) = v.pointer_mut(p)
                    && !x.is_null()
                {
                    *x = Value::String("***".into());
                }
            }
            mask_json(&mut v);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = mask(&text);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

fn mask_json(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if crate::model::redact::is_secret_name(&k.to_ascii_lowercase()) && !x.is_null() {
                    *x = Value::String("***".into());
                } else {
                    mask_json(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_json),
        Value::String(s) if crate::model::template::is_jwt(s) => *s = "***".into(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::AtomicU64;

    use super::*;

    /// A login server stand-in: answers after `delay` with `status`, a
    /// numbered token valid for `ttl` seconds and a refresh token.
    struct Fake {
        calls: AtomicU64,
        delay: Duration,
        status: u16,
        ttl: f64,
        bodies: Mutex<Vec<String>>,
        /// Answer refresh-token grants 400 `invalid_grant`.
        refuse_refresh: bool,
    }

    impl Fake {
        fn new(status: u16, ttl: f64) -> Arc<Fake> {
            Arc::new(Fake {
                calls: AtomicU64::new(0),
                delay: Duration::from_millis(50),
                status,
                ttl,
                bodies: Mutex::new(Vec::new()),
                refuse_refresh: false,
            })
        }
    }

    impl LoginTransport for Fake {
        fn send(&self, req: LoginRequest) -> login::LoginFuture {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let body = String::from_utf8(req.body.unwrap_or_default()).unwrap();
            let refused = self.refuse_refresh && body.starts_with("grant_type=refresh_token");
            self.bodies.lock().unwrap().push(body);
            let (delay, ttl) = (self.delay, self.ttl);
            let status = if refused { 400 } else { self.status };
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                let body = if status == 200 {
                    format!(
                        r#"{{"access_token": "tok-{n}", "token": "tok-{n}", "refresh_token": "rt-{n}", "expires_in": {ttl}}}"#
                    )
                } else {
                    r#"{"error": "invalid credentials", "password": "hunter22", "detail": "user pw-secret-1 refused"}"#.to_string()
                };
                Ok(LoginResponse {
                    status,
                    headers: Vec::new(),
                    body: body.into_bytes(),
                })
            })
        }
    }

    fn manager(text: &str, fake: Arc<Fake>, shutdown: Shutdown) -> Arc<Auth> {
        let f: AuthFile = toml::from_str(text).unwrap();
        let cfg = AuthConfig::resolve(f, Path::new(".")).unwrap();
        Arc::new(
            Auth::with_tenants(
                cfg,
                vec!["acme".into(), "globex".into()],
                [("POST", "/api/login"), ("GET", "/api/products")].into_iter(),
                Target::parse("http://127.0.0.1:9").unwrap(),
                fake,
                shutdown,
            )
            .unwrap(),
        )
    }

    const OAUTH2_PASSWORD: &str = "kind = \"oauth2_password\"\nurl = \"/token\"\nusername = \"u\"\npassword = \"pw-secret-1\"\nclient_id = \"app\"";

    const JSON_LOGIN: &str = "kind = \"json_login\"\nurl = \"/api/login\"\nusername = \"demo@x.test\"\npassword = \"pw-secret-1\"";

    fn paused() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn a_thousand_waiting_sessions_cause_one_login() {
        paused().block_on(async {
            let fake = Fake::new(200, 900.0);
            let auth = manager(JSON_LOGIN, fake.clone(), Shutdown::new());
            let h = auth.handle(0, 7);
            let tasks: Vec<_> = (0..1000)
                .map(|_| {
                    let a = auth.clone();
                    tokio::spawn(async move { a.token(h).await.unwrap().generation })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), 1);
            }
            assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
            assert_eq!(auth.report().logins, 1);
            assert!(
                auth.skips(0) && !auth.skips(1),
                "the recorded login is left out"
            );
        });
    }

    /// A worker whose sessions are done goes away with its runtime, and a
    /// renewal it had started with it: that cut nothing short while the
    /// token is still good, and must not stand as a failure of the user
    /// that the other workers' sessions share.
    #[test]
    fn a_renewal_dropped_while_the_token_is_good_is_no_failure() {
        let fake = Fake::new(200, 2.0);
        let auth = manager(JSON_LOGIN, fake.clone(), Shutdown::new());
        let h = auth.handle(1, 3);
        let rt = paused();
        rt.block_on(async {
            auth.token(h).await.unwrap();
            // The renewal starts at 1 s and takes 50 ms to be answered.
            tokio::time::sleep(Duration::from_millis(1010)).await;
        });
        drop(rt);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2, "the renewal was sent");
        let r = auth.report();
        assert_eq!((r.cut_short, r.failures), (0, 0));
        assert!(auth.slot(h).state().failed.is_none());
    }

    #[test]
    fn tokens_are_renewed_before_they_expire_without_anyone_waiting() {
        paused().block_on(async {
            let fake = Fake::new(200, 2.0);
            let auth = manager(JSON_LOGIN, fake.clone(), Shutdown::new());
            let h = auth.handle(1, 3);
            let first = auth.token(h).await.unwrap();
            assert_eq!(first.generation, 1);
            // Half-way through a 2 s life (the 30 s skew is more than it
            // has) it is renewed, though no request asked.
            tokio::time::sleep(Duration::from_millis(990)).await;
            assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(fake.calls.load(Ordering::SeqCst), 2, "renewed on time");
            let t0 = Instant::now();
            let renewed = auth.token(h).await.unwrap();
            assert_eq!(t0.elapsed(), Duration::ZERO, "nobody waits for a renewal");
            assert_eq!(renewed.generation, 2);
            // Over 10 s: a renewal about every second, never an expired token.
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let t = auth.token(h).await.unwrap();
                assert!(t.expires_at.unwrap() > Instant::now());
            }
            let r = auth.report();
            assert_eq!(r.logins, 1);
            assert!((9..=12).contains(&r.refreshes), "{} refreshes", r.refreshes);
            assert_eq!(r.failures, 0);
        });
    }

    #[test]
    fn a_401_invalidates_only_the_token_it_was_for() {
        paused().block_on(async {
            let fake = Fake::new(200, 900.0);
            let auth = manager(JSON_LOGIN, fake.clone(), Shutdown::new());
            let h = auth.handle(0, 1);
            let t1 = auth.token(h).await.unwrap();
            auth.invalidate(h, t1.generation);
            let t2 = auth.token(h).await.unwrap();
            assert_eq!(t2.generation, 2);
            // A late 401 for the old token does not throw away the new one.
            auth.invalidate(h, t1.generation);
            assert_eq!(auth.token(h).await.unwrap().generation, 2);
            assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
            assert!(auth.retries_on(Some(401)) && !auth.retries_on(Some(403)));
        });
    }

    #[test]
    fn the_refresh_token_grant_is_used_when_there_is_one() {
        paused().block_on(async {
            let fake = Fake::new(200, 60.0);
            let auth = manager(OAUTH2_PASSWORD, fake.clone(), Shutdown::new());
            let h = auth.handle(0, 1);
            auth.token(h).await.unwrap();
            tokio::time::sleep(Duration::from_secs(31)).await;
            auth.token(h).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let bodies = fake.bodies.lock().unwrap().clone();
            assert_eq!(bodies.len(), 2);
            assert!(bodies[0].starts_with("grant_type=password&username=u"));
            assert_eq!(
                bodies[1],
                "grant_type=refresh_token&refresh_token=rt-1&client_id=app"
            );
        });
    }

    /// A refresh grant the IdP refuses is a failure, counted and shown,
    /// even though the full login after it gets a token (it doubled the
    /// IdP's traffic and said nothing).
    #[test]
    fn a_refused_refresh_is_counted_before_the_login_that_follows() {
        paused().block_on(async {
            let fake = Arc::new(Fake {
                refuse_refresh: true,
                ..Arc::into_inner(Fake::new(200, 60.0)).unwrap()
            });
            let auth = manager(OAUTH2_PASSWORD, fake.clone(), Shutdown::new());
            let h = auth.handle(0, 1);
            auth.token(h).await.unwrap();
            tokio::time::sleep(Duration::from_secs(31)).await;
            auth.token(h).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(
                auth.token(h).await.unwrap().generation,
                2,
                "the login got one"
            );
            let bodies = fake.bodies.lock().unwrap().clone();
            assert_eq!(bodies.len(), 3, "login, refused refresh, login: {bodies:?}");
            let r = auth.report();
            assert_eq!(r.failures, 1, "{r:?}");
            assert!(
                r.examples.iter().any(|e| e.contains("status 400")),
                "{:?}",
                r.examples
            );
        });
    }

    #[test]
    fn when_every_login_fails_the_run_stops_and_no_secret_is_shown() {
        paused().block_on(async {
            let fake = Fake::new(401, 0.0);
            let shutdown = Shutdown::new();
            let auth = manager(JSON_LOGIN, fake.clone(), shutdown.clone());
            let h = auth.handle(0, 1);
            let e = auth.token(h).await.unwrap_err();
            assert!(e.contains("status 401"), "{e}");
            assert!(
                e.contains("POST http://127.0.0.1:9/api/login for demo@x.test"),
                "{e}"
            );
            assert!(!e.contains("hunter22") && !e.contains("pw-secret-1"), "{e}");
            // Within the back-off, no new login: the failure stands.
            assert!(auth.token(h).await.is_err());
            assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
            assert!(!shutdown.triggered());
            for _ in 0..2 {
                tokio::time::sleep(FAILURE_BACKOFF).await;
                assert!(auth.token(h).await.is_err());
            }
            assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
            let reason = shutdown.reason().expect("the run aborts");
            assert!(reason.contains("every login failed"), "{reason}");
            let r = auth.report();
            assert_eq!((r.failures, r.logins), (3, 0));
            assert!(r.examples.iter().all(|e| !e.contains("pw-secret-1")));
        });
    }

    #[test]
    fn tokens_go_where_configured() {
        let fake = Fake::new(200, 1.0);
        let token = Token {
            value: "abc".into(),
            generation: 1,
            expires_at: None,
        };
        let mut headers: Vec<crate::http::Header> = vec![
            ("authorization".into(), "Bearer recorded".into()),
            ("cookie".into(), "theme=dark; sid=old".into()),
        ];
        let mut path = "/p?x=1".to_string();
        manager(JSON_LOGIN, fake.clone(), Shutdown::new()).apply(&token, &mut headers, &mut path);
        assert_eq!(headers[1], ("authorization".into(), "Bearer abc".into()));
        manager(
            "kind = \"cookie_login\"\nurl = \"/login\"\ntoken_cookie = \"sid\"\nusername = \"u\"\npassword = \"p\"",
            fake.clone(),
            Shutdown::new(),
        )
        .apply(&token, &mut headers, &mut path);
        assert_eq!(headers.last().unwrap().1, "theme=dark; sid=abc");
        manager(
            "kind = \"json_login\"\nurl = \"/login\"\nquery = \"access_token\"\nusername = \"u\"\npassword = \"p\"",
            fake,
            Shutdown::new(),
        )
        .apply(&token, &mut headers, &mut path);
        assert_eq!(path, "/p?x=1&access_token=abc");
        assert!(
            !format!("{token:?}").contains("abc"),
            "Debug never shows a token"
        );
    }

    #[test]
    fn users_are_matched_to_tenants_and_sessions_stably() {
        let f: AuthFile = toml::from_str(
            "kind = \"json_login\"\nurl = \"/l\"\npassword = \"p\"\nusers = [{ tenant = \"acme\", username = \"a1\" }, { tenant = \"acme\", username = \"a2\" }, { tenant = \"*\", username = \"any\" }]",
        )
        .unwrap();
        let cfg = AuthConfig::resolve(f, Path::new(".")).unwrap();
        let make = |tenants: Vec<String>| {
            Auth::with_tenants(
                cfg.clone(),
                tenants,
                std::iter::empty(),
                Target::parse("http://127.0.0.1:9").unwrap(),
                Fake::new(200, 1.0),
                Shutdown::new(),
            )
        };
        let auth = make(vec!["acme".into(), "globex".into()]).unwrap();
        let user = |t: usize, s: u64| {
            auth.cfg.identities[auth.slot(auth.handle(t, s)).identity]
                .get("username")
                .unwrap()
                .to_string()
        };
        let acme: std::collections::BTreeSet<String> = (0..100).map(|s| user(0, s)).collect();
        assert_eq!(acme.into_iter().collect::<Vec<_>>(), vec!["a1", "a2"]);
        assert!((0..100).all(|s| user(1, s) == "any"));
        assert_eq!(user(0, 42), user(0, 42), "one session, one user, always");
        let f: AuthFile =
            toml::from_str("kind = \"json_login\"\nurl = \"/l\"\nusername = \"u\"\npassword = \"p\"\nusers = [{ tenant = \"acme\" }]")
                .unwrap();
        let only_acme = AuthConfig::resolve(f, Path::new(".")).unwrap();
        let e = Auth::with_tenants(
            only_acme,
            vec!["acme".into(), "globex".into()],
            std::iter::empty(),
            Target::parse("http://127.0.0.1:9").unwrap(),
            Fake::new(200, 1.0),
            Shutdown::new(),
        )
        .err()
        .unwrap();
        assert!(e.0.contains("no credentials for tenant globex"), "{e}");
    }

    #[test]
    fn secrets_are_masked_in_every_form_they_travel_in() {
        let cfg = "kind = \"json_login\"\nurl = \"/api/login?api_key=k3y-literal&page=2\"\n\
                   username = \"demo@x.test\"\npassword = 'Quo\"te 7/7'\n\
                   login_headers = { \"X-Api-Key\" = \"hdr-s3cret\", \"Authorization\" = \"Bearer sch3me-s3cret\" }";
        let auth = manager(cfg, Fake::new(200, 1.0), Shutdown::new());
        // As sent in a JSON body, a form, a URL, and as written.
        for form in [
            r#"Quo\"te 7/7"#,
            r#"Quo\\\"te 7/7"#,
            "Quo%22te+7%2F7",
            "Quo%22te%207%2F7",
            r#"Quo"te 7/7"#,
            "k3y-literal",
            "hdr-s3cret",
            "sch3me-s3cret",
        ] {
            let echoed = format!("status 400: {{\"echo\": \"{form}\"}}");
            let masked = auth.mask(&echoed, &[]);
            assert!(!masked.contains(form), "{form} shown in {masked}");
            assert!(masked.contains("***"), "{masked}");
        }
        // A refresh token, sent form-encoded, is masked so too.
        let masked = auth.mask("echo: refresh_token=rt%2Babc%2F%3D", &["rt+abc/="]);
        assert!(!masked.contains("abc"), "{masked}");
        let plan = auth.describe();
        assert!(
            !plan.contains("k3y-literal") && plan.contains("page=2"),
            "{plan}"
        );
    }

    #[test]
    fn excerpts_mask_secret_fields() {
        let e = excerpt(
            br#"{"error": "bad", "access_token": "xyz", "nested": {"password": "p"}}"#,
            &[],
            str::to_string,
        );
        assert_eq!(
            e,
            r#"{"error":"bad","access_token":"***","nested":{"password":"***"}}"#
        );
        // A bearer field, a JWT under any name, the configured pointers.
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXBhcnQ";
        let e = excerpt(
            format!(
                r#"{{"bearer": "b-123", "value": "{jwt}", "data": {{"k": "opaque-42"}}, "n": 1}}"#
            )
            .as_bytes(),
            &["/data/k"],
            str::to_string,
        );
        assert_eq!(
            e,
            r#"{"bearer":"***","value":"***","data":{"k":"***"},"n":1}"#
        );
        let long = "a ".repeat(500);
        assert!(
            excerpt(long.as_bytes(), &[], str::to_string)
                .chars()
                .count()
                <= EXCERPT + 1
        );
        // A secret across the cut is masked whole, not left half shown.
        let body = format!("{}s3cret-across-the-cut", "a".repeat(EXCERPT - 5));
        let e = excerpt(body.as_bytes(), &[], |s| {
            s.replace("s3cret-across-the-cut", "***")
        });
        assert!(!e.contains("s3cr") && e.contains("***"), "{e}");
    }
}
