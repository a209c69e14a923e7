//! `reprise replay`: flags and the config file → [`RunConfig`].
//!
//! The config file (TOML) can hold every flag plus the load profile; a flag
//! given on the command line wins over the file, and the file over the
//! defaults. That precedence lives in [`RunConfig::resolve`] and nowhere
//! else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::UsageError;
use crate::auth::AuthConfig;
use crate::cli::ReplayArgs;
use crate::http::{ClientOptions, Target, tls_config};
use crate::plan::{Mode, Placement, PlanConfig, Profile, Segment, SessionMode, Stage, Unit};

/// Defaults, where neither a flag nor the file says.
pub mod defaults {
    use std::time::Duration;

    pub const SEED: u64 = 1;
    pub const MAX_INFLIGHT: usize = 10_000;
    pub const MAX_SESSIONS: usize = 100_000;
    pub const LATE_AFTER: Duration = Duration::from_millis(250);
    pub const GRACE: Duration = Duration::from_secs(10);
    /// Prometheus scrapes every 15 s by default.
    pub const PROMETHEUS_LINGER: Duration = Duration::from_secs(15);
    pub const TIMEOUT: Duration = Duration::from_secs(30);
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
}

/// The fewest worker threads `--threads` may always ask for, whatever
/// the CPUs.
const MAX_THREADS_FLOOR: usize = 16;

/// The config file. Every key is optional; unknown keys are an error (a
/// typo must not silently fall back to a default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    pub target: Option<String>,
    pub speed: Option<f64>,
    pub rate: Option<f64>,
    pub think_scale: Option<f64>,
    #[serde(default, with = "opt_duration")]
    pub duration: Option<Duration>,
    #[serde(rename = "loop")]
    pub looped: Option<bool>,
    /// Per-tenant multipliers: `tenants = { acme = 5 }`.
    #[serde(default)]
    pub tenants: BTreeMap<String, f64>,
    #[serde(default)]
    pub only_tenants: Vec<String>,
    pub sessions: Option<SessionMode>,
    pub tenant_header: Option<String>,
    /// `headers = { "X-Env" = "staging" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub segment: Option<String>,
    pub seed: Option<u64>,
    pub max_inflight: Option<usize>,
    pub max_sessions: Option<usize>,
    #[serde(default, with = "opt_duration")]
    pub late_after: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    pub grace: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    pub connect_timeout: Option<Duration>,
    pub http2: Option<bool>,
    pub insecure: Option<bool>,
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    pub threads: Option<usize>,
    pub out: Option<PathBuf>,
    pub profile: Option<ProfileFile>,
    /// `[auth]`: how test users log in (docs/auth.md).
    pub auth: Option<crate::auth::AuthFile>,
    /// `[thresholds]`: `metric{tags} = ["expr", ...]` (docs/thresholds.md).
    #[serde(default)]
    pub thresholds: BTreeMap<String, Vec<crate::threshold::ThresholdEntry>>,
    /// `[[checks]]`.
    #[serde(default)]
    pub checks: Vec<crate::check::CheckFile>,
    /// The default "status as recorded" check (on unless false).
    pub status_check: Option<bool>,
    pub junit: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub prometheus_listen: Option<std::net::SocketAddr>,
    #[serde(default, with = "opt_duration")]
    pub prometheus_linger: Option<Duration>,
    pub influx: Option<String>,
    pub influx_file: Option<PathBuf>,
    /// `watch = { db = "http://10.0.0.5:9187/metrics" }`.
    #[serde(default)]
    pub watch: BTreeMap<String, String>,
    #[serde(default)]
    pub watch_metrics: Vec<String>,
    #[serde(default, with = "opt_duration")]
    pub watch_every: Option<Duration>,
}

/// `[profile]`: k6-style stages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// What `target` means: `multiplier` of the recorded arrival rate (the
    /// default), `sessions_per_sec`, or concurrent `users`.
    #[serde(default = "default_unit")]
    pub unit: UnitName,
    /// Where the first stage ramps from (default 0).
    #[serde(default)]
    pub start: f64,
    pub stages: Vec<StageFile>,
}

fn default_unit() -> UnitName {
    UnitName::Multiplier
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitName {
    Multiplier,
    SessionsPerSec,
    Users,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageFile {
    #[serde(with = "duration")]
    pub duration: Duration,
    pub target: f64,
}

mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        crate::cli::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod opt_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

/// Keys whose values never hold a credential and say what is wrong when
/// an error quotes them (`kind = "kerberos"`: unknown variant `kerberos`).
/// Any other value an error quotes is masked: a header, a user, a URL, a
/// body can each hold a secret, whatever their key is called.
const PLAIN_KEYS: &[&str] = &[
    "kind",
    "unit",
    "sessions",
    "speed",
    "rate",
    "think_scale",
    "duration",
    "loop",
    "seed",
    "max_inflight",
    "max_sessions",
    "late_after",
    "grace",
    "timeout",
    "connect_timeout",
    "http2",
    "insecure",
    "threads",
    "status_check",
    "prometheus_linger",
    "watch_every",
    "start",
    "target",
    "stages",
    "methods",
    "segment",
    "only_tenants",
    "expiry",
    "client_auth",
    "retry_on",
    "method",
    "content_type",
    "scope",
    "token_pointer",
    "refresh_token_pointer",
    "expires_in_pointer",
    "ttl",
    "refresh_skew",
    "skip_login_requests",
];

/// The key a line begins with (`password = …`, `"X-Api-Key" = …`), if it
/// begins with one: a line inside a multi-line string or array does not.
fn line_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let bare = key.trim_matches(['"', '\'']);
    let is_key = !bare.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    is_key.then_some(bare)
}

/// A config file's TOML error as `file:line:col: message (in `key = …`)`.
/// toml's own rendering quotes the whole line, and serde's type errors
/// quote the value: on a `password = …` or a `target` holding one, that is
/// the secret, printed for anyone reading CI logs. What the message quotes
/// of the value it points at is masked, unless the key is one whose values
/// are plain settings; the key and the expected type still say what is
/// wrong.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let mut message = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return format!("{}: {message}", path.display());
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_no = text[..start].matches('\n').count() + 1;
    let col = text[line_start..start].chars().count() + 1;
    let line = &text[line_start..line_end];
    let key = line_key(line);
    // The span is on the key itself (`unknown field `targt``): nothing of a
    // value is quoted.
    let on_key = key.is_some() && line.find('=').is_some_and(|eq| start < line_start + eq);
    // The key the value belongs to: the nearest `key =` before the span on
    // its line (an inline table's `duration = "1q"` too).
    let before = &text[line_start..start];
    let nearest = before.rfind('=').and_then(|eq| {
        before[..eq]
            .trim_end()
            .rsplit(|c: char| c.is_whitespace() || matches!(c, '{' | ',' | '['))
            .next()
            .map(|k| k.trim_matches(['"', '\'']))
    });
    // A URL can carry a credential in its userinfo or its query, whatever
    // its key (`target`).
    let url = line.contains('@') || line.contains("://");
    let plain = nearest.is_some_and(|k| PLAIN_KEYS.contains(&k)) && !url;
    if !on_key && !plain {
        message = mask_value(&message);
    }
    match key {
        Some(k) => format!(
            "{}:{line_no}:{col}: {message} (in `{k} = …`)",
            path.display()
        ),
        None => format!("{}:{line_no}:{col}: {message}", path.display()),
    }
}

/// `message` with the value it quotes masked: serde and toml quote it
/// first (`invalid type: string "…", expected a map`, `unknown variant
/// `…`, expected one of …`), and it may hold escaped quotes of its own, so
/// everything from the first quote to the `, expected` that follows it
/// goes. What is expected is reprise's own words and stays. A message
/// quoting only punctuation (`expected `"``) is left as it is.
fn mask_value(message: &str) -> String {
    let Some(open) = message.find(['`', '"']) else {
        return message.to_string();
    };
    let quoted = &message[open..];
    let tail = quoted.find(", expected").map_or("", |i| &quoted[i..]);
    let value = &quoted[..quoted.len() - tail.len()];
    if !value.chars().any(char::is_alphanumeric) {
        return message.to_string();
    }
    format!("{}`***`{tail}", &message[..open])
}

impl RunFile {
    pub fn load(path: &Path) -> Result<RunFile, UsageError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| UsageError(toml_error(path, &text, &e)))
    }

    /// Values the file's syntax allows but a run cannot take, named by key
    /// (flags are checked as they are parsed, so either way the error says
    /// where the bad value is).
    fn check(&self) -> Result<(), String> {
        use crate::plan::limits::{self, check, check_length};
        fn key(k: &str) -> impl Fn(String) -> String + '_ {
            move |m| format!("`{k}`: {m}")
        }
        for (k, v, range) in [
            ("speed", self.speed, limits::SPEED),
            ("rate", self.rate, limits::RATE),
            ("think_scale", self.think_scale, limits::THINK_SCALE),
        ] {
            if let Some(v) = v {
                check(v, range).map_err(key(k))?;
            }
        }
        for (name, m) in &self.tenants {
            check(*m, limits::TENANT_MULT).map_err(key(&format!("tenants.{name}")))?;
        }
        if let Some(d) = self.duration {
            if d.is_zero() {
                return Err("`duration` must be longer than zero".into());
            }
            check_length(d).map_err(key("duration"))?;
        }
        for (k, n) in [
            ("threads", self.threads),
            ("max_inflight", self.max_inflight),
            ("max_sessions", self.max_sessions),
        ] {
            if n == Some(0) {
                return Err(format!("`{k}` must be at least 1"));
            }
        }
        for (k, d) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(format!("`{k}` must be longer than zero"));
            }
        }
        if let Some(p) = &self.profile {
            if p.stages.is_empty() {
                return Err("[profile] has no stages: give at least one { duration = \"1m\", target = 1.0 }".into());
            }
            check(p.start, limits::STAGE_TARGET).map_err(key("profile.start"))?;
            let mut total = Duration::ZERO;
            for (i, st) in p.stages.iter().enumerate() {
                let at = format!("profile.stages[{i}]");
                if st.duration.is_zero() {
                    return Err(format!("`{at}.duration` must be longer than zero"));
                }
                check(st.target, limits::STAGE_TARGET).map_err(key(&format!("{at}.target")))?;
                total = total.saturating_add(st.duration);
            }
            check_length(total).map_err(key("profile.stages"))?;
        }
        Ok(())
    }
}

/// Everything `reprise replay` runs with.
#[derive(Debug)]
pub struct RunConfig {
    pub model: PathBuf,
    pub plan: PlanConfig,
    pub target: Target,
    pub placement: Placement,
    pub client: ClientOptions,
    pub threads: usize,
    pub max_inflight: usize,
    pub max_sessions: usize,
    pub late_after: Duration,
    pub grace: Duration,
    pub allow_hosts: Vec<String>,
    pub dry_run: bool,
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub auth: Option<AuthConfig>,
    /// File thresholds, then flag thresholds.
    pub thresholds: Vec<crate::threshold::Threshold>,
    pub checks: crate::check::CheckConfig,
    pub junit: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// `--baseline DIR` and its `--max-regression` limits.
    pub baseline: Option<PathBuf>,
    pub max_regressions: Vec<crate::threshold::Regression>,
    /// Live metrics during the run.
    pub live: crate::live::LiveOptions,
    /// The target's own metrics to scrape.
    pub watch: crate::watch::WatchOptions,
    /// TLS for login requests (HTTP/1.1 only), when any go to https.
    pub auth_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl RunConfig {
    /// Where the reports go.
    pub fn outputs(&self) -> crate::app::replay::Outputs {
        crate::app::replay::Outputs {
            dir: self.out.clone(),
            junit: self.junit.clone(),
            html: self.html.clone(),
        }
    }

    /// Reads `--config` if given and resolves flags over it.
    pub fn from_args(a: ReplayArgs) -> Result<RunConfig, UsageError> {
        let file = match &a.config {
            Some(p) => RunFile::load(p)?,
            None => RunFile::default(),
        };
        RunConfig::resolve(a, file)
    }

    /// The one place precedence lives: flag, else file, else default.
    pub fn resolve(a: ReplayArgs, f: RunFile) -> Result<RunConfig, UsageError> {
        let bad = |m: String| Err(UsageError(m));
        // A value from the file is blamed on the file and its key, not on
        // a flag the user never passed.
        let file = a
            .config
            .as_deref()
            .unwrap_or(Path::new("the config file"))
            .display()
            .to_string();
        let in_file = |m: String| UsageError(format!("{file}: {m}"));
        f.check().map_err(in_file)?;
        let mode = mode(a.speed, a.rate, &f).map_err(|e| match a.config {
            Some(_) => in_file(e.0),
            None => e,
        })?;
        let target = match (a.target, f.target) {
            (Some(t), _) => Target::parse(&t).map_err(|e| UsageError(e.to_string()))?,
            (None, Some(t)) => Target::parse(&t)
                .map_err(|e| in_file(format!("`target` `{}`: {}", e.url, e.message)))?,
            (None, None) => return bad("no target: name one with --target URL (or `target` in the config file); reprise never guesses where to send traffic".into()),
        };
        let looped = a.looped || f.looped.unwrap_or(false);
        let loop_name = if a.looped { "--loop" } else { "`loop`" };
        let blame = |m: String| if a.looped { UsageError(m) } else { in_file(m) };
        if looped && !matches!(mode, Mode::Speed(_)) {
            return Err(blame(format!(
                "{loop_name} repeats the recorded timeline of --speed; with --rate or a profile, --duration says how long to run"
            )));
        }
        if looped && a.duration.or(f.duration).is_none() {
            return Err(blame(format!(
                "{loop_name} needs a duration (--duration, or `duration` in the config file): how long to keep repeating"
            )));
        }
        // One multiplier per tenant: a flag replaces the file's, and a
        // repeated flag the earlier one.
        let only_tenants = if a.only_tenants.is_empty() {
            f.only_tenants
        } else {
            a.only_tenants
        };
        let mut tenant_mult: Vec<(String, f64)> = f.tenants.into_iter().collect();
        for (name, m) in a.tenant_mult {
            // A multiplier for a tenant left out would change nothing: a
            // noisy-neighbour drill that quietly is not one.
            if !only_tenants.is_empty() && !only_tenants.contains(&name) {
                return bad(format!(
                    "--tenant {name}={m}: `{name}` is not replayed (--only-tenant {})",
                    only_tenants.join(", ")
                ));
            }
            tenant_mult.retain(|(n, _)| *n != name);
            tenant_mult.push((name, m));
        }
        let mut headers = Vec::new();
        // `https://user:password@staging`: basic auth on every request,
        // unless a header (or the token manager) says otherwise.
        if let Some(b) = &target.basic_auth {
            headers.push(("authorization".to_string(), b.clone()));
        }
        for (k, v) in &f.headers {
            headers.push(
                crate::cli::parse_header(&format!("{k}: {v}"))
                    .map_err(|e| in_file(format!("`headers`: {e}")))?,
            );
        }
        // Flags come last, so they replace file headers of the same name.
        for h in &a.headers {
            headers.push(
                crate::cli::parse_header(h).map_err(|e| UsageError(format!("--header: {e}")))?,
            );
        }
        let mut target = target;
        target.host_header = headers
            .iter()
            .rev()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.clone());
        let segment = match (a.segment, f.segment) {
            (Some(s), _) => Some(s),
            (None, Some(s)) => Some(
                s.parse::<Segment>()
                    .map_err(|e| in_file(format!("`segment`: {e}")))?,
            ),
            (None, None) => None,
        };
        let methods: Vec<String> = if a.methods.is_empty() {
            f.methods
        } else {
            a.methods
        }
        .iter()
        .map(|m| m.trim().to_ascii_uppercase())
        .filter(|m| !m.is_empty())
        .collect();
        let http2 = a.http2 || f.http2.unwrap_or(false);
        let insecure = a.insecure || f.insecure.unwrap_or(false);
        let client = ClientOptions {
            timeout: a.timeout.or(f.timeout).unwrap_or(defaults::TIMEOUT),
            connect_timeout: a
                .connect_timeout
                .or(f.connect_timeout)
                .unwrap_or(defaults::CONNECT_TIMEOUT),
            http2,
            tls: None,
        };
        let threads = a.threads.or(f.threads).unwrap_or_else(available_cpus);
        let max_inflight = a
            .max_inflight
            .or(f.max_inflight)
            .unwrap_or(defaults::MAX_INFLIGHT);
        let max_sessions = a
            .max_sessions
            .or(f.max_sessions)
            .unwrap_or(defaults::MAX_SESSIONS);
        for (flag, n) in [
            ("--threads", threads),
            ("--max-inflight", max_inflight),
            ("--max-sessions", max_sessions),
        ] {
            if n == 0 {
                return bad(format!("{flag} must be at least 1"));
            }
        }
        // Each worker thread is an event loop with its own connections and
        // recorders; more than a few per CPU only adds switching and memory
        // (2,000 took 3.6 GB and sent a quarter of the plan on two CPUs).
        let most = (available_cpus() * 4).max(MAX_THREADS_FLOOR);
        if threads > most {
            let m = format!(
                "{threads}: at most {most} (4 per CPU this process may run on, or {MAX_THREADS_FLOOR})"
            );
            return Err(match a.threads {
                Some(_) => UsageError(format!("--threads {m}")),
                None => in_file(format!("`threads` {m}")),
            });
        }
        if client.timeout.is_zero() || client.connect_timeout.is_zero() {
            return bad("--timeout and --connect-timeout must be longer than zero".into());
        }
        let from_flag = a.tenant_header.is_some();
        let tenant_header = match a.tenant_header.or(f.tenant_header) {
            Some(h) => Some(
                crate::cli::parse_header(&format!("{h}: x"))
                    .map_err(|e| match from_flag {
                        true => UsageError(format!("--tenant-header: {e}")),
                        false => in_file(format!("`tenant_header`: {e}")),
                    })?
                    .0,
            ),
            None => None,
        };
        let mut allow_hosts = f.allow_hosts;
        allow_hosts.extend(a.allow_hosts);
        let plan = PlanConfig {
            mode,
            think_scale: a.think_scale.or(f.think_scale).unwrap_or(1.0),
            duration: a.duration.or(f.duration),
            looped,
            tenant_mult,
            only_tenants,
            sessions: a.sessions.or(f.sessions).unwrap_or(SessionMode::Recorded),
            seed: a.seed.or(f.seed).unwrap_or(defaults::SEED),
            segment,
            methods,
        };
        if plan.duration.is_some_and(|d| d.is_zero()) {
            return bad("--duration must be longer than zero".into());
        }
        let base = a
            .config
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let auth = f
            .auth
            .map(|af| AuthConfig::resolve(af, &base))
            .transpose()?;
        let mut thresholds = crate::threshold::from_file(&f.thresholds).map_err(in_file)?;
        let mut watch_targets = Vec::new();
        for (name, url) in &f.watch {
            watch_targets.push(
                format!("{name}={url}")
                    .parse::<crate::watch::WatchTarget>()
                    .map_err(|e| in_file(format!("`watch`: {e}")))?,
            );
        }
        for w in &a.watch {
            watch_targets.push(
                w.parse::<crate::watch::WatchTarget>()
                    .map_err(|e| UsageError(format!("--watch: {e}")))?,
            );
        }
        let watch_every = a
            .watch_every
            .or(f.watch_every)
            .unwrap_or(Duration::from_secs(2));
        if watch_every < Duration::from_millis(100) {
            return bad("--watch-every must be at least 100ms".into());
        }
        let watch = crate::watch::WatchOptions {
            targets: watch_targets,
            metrics: if a.watch_metrics.is_empty() {
                f.watch_metrics
            } else {
                a.watch_metrics
            },
            every: watch_every,
        };
        thresholds.extend(a.thresholds.into_iter().flatten());
        let mut cfg = RunConfig {
            model: a.model,
            plan,
            placement: Placement {
                tenant_header,
                headers,
            },
            client,
            threads,
            max_inflight,
            max_sessions,
            late_after: a
                .late_after
                .or(f.late_after)
                .unwrap_or(defaults::LATE_AFTER),
            grace: a.grace.or(f.grace).unwrap_or(defaults::GRACE),
            allow_hosts,
            dry_run: a.dry_run,
            out: a.out.or(f.out),
            quiet: a.quiet,
            target,
            auth,
            thresholds,
            checks: crate::check::CheckConfig {
                source: a.config.clone(),
                files: f.checks,
                status_check: f.status_check.unwrap_or(true),
            },
            junit: a.junit.or(f.junit),
            html: a.html.or(f.html),
            baseline: None,
            max_regressions: Vec::new(),
            watch,
            live: crate::live::LiveOptions {
                prometheus: a.prometheus_listen.or(f.prometheus_listen),
                prometheus_linger: a
                    .prometheus_linger
                    .or(f.prometheus_linger)
                    .unwrap_or(defaults::PROMETHEUS_LINGER),
                influx_url: a.influx.or(f.influx),
                influx_token: std::env::var("INFLUX_TOKEN").ok().filter(|t| !t.is_empty()),
                influx_file: a.influx_file.or(f.influx_file),
                quiet: a.quiet,
            },
            auth_tls: None,
        };
        if cfg.target.https() && !cfg.dry_run {
            let alpn: &[&[u8]] = if http2 {
                &[b"h2"]
            } else {
                &[b"h2", b"http/1.1"]
            };
            cfg.client.tls = Some(tls_config(insecure, alpn).map_err(UsageError)?);
        }
        let login_https = cfg
            .auth
            .as_ref()
            .and_then(|a| a.login.as_ref())
            .is_some_and(|l| {
                l.url.starts_with("https://") || (l.url.starts_with('/') && cfg.target.https())
            });
        if login_https && !cfg.dry_run {
            cfg.auth_tls = Some(tls_config(insecure, &[b"http/1.1"]).map_err(UsageError)?);
        }
        Ok(cfg)
    }
}

/// How arrivals are driven: `--speed` or `--rate` on the command line, else
/// the file's `speed`, `rate` or `[profile]` (one of them), else the recorded
/// rate.
fn mode(speed: Option<f64>, rate: Option<f64>, f: &RunFile) -> Result<Mode, UsageError> {
    if let Some(n) = speed {
        return Ok(Mode::Speed(n));
    }
    if let Some(n) = rate {
        return Ok(Mode::Rate(n));
    }
    let given = [f.speed.is_some(), f.rate.is_some(), f.profile.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if given > 1 {
        return Err(UsageError(
            "more than one of `speed`, `rate` and `[profile]` is set; keep one".into(),
        ));
    }
    if let Some(n) = f.speed {
        return Ok(Mode::Speed(n));
    }
    if let Some(n) = f.rate {
        return Ok(Mode::Rate(n));
    }
    let Some(p) = &f.profile else {
        return Ok(Mode::Rate(1.0));
    };
    Ok(Mode::Stages(Profile {
        unit: match p.unit {
            UnitName::Multiplier => Unit::Multiplier,
            UnitName::SessionsPerSec => Unit::SessionsPerSec,
            UnitName::Users => Unit::Users,
        },
        start: p.start,
        stages: p
            .stages
            .iter()
            .map(|s| Stage {
                duration: s.duration,
                target: s.target,
            })
            .collect(),
    }))
}

/// The CPUs this process may run on (`available_parallelism` honours the
/// affinity mask: under `taskset -c 0` it is 1).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(target: Option<&str>) -> ReplayArgs {
        ReplayArgs {
            model: "m.json".into(),
            target: target.map(str::to_string),
            ..ReplayArgs::default()
        }
    }

    fn file(text: &str) -> RunFile {
        toml::from_str(text).expect("valid TOML")
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let f = file(
            r#"
            target = "http://file.example:8080"
            rate = 3
            seed = 7
            timeout = "2s"
            headers = { "X-Env" = "staging", "X-Keep" = "file" }
            tenants = { acme = 2 }
            "#,
        );
        let mut a = args(Some("http://flag.example"));
        a.rate = Some(5.0);
        a.headers = vec!["X-Env: ci".into()];
        a.tenant_mult = vec![("acme".into(), 4.0)];
        let c = RunConfig::resolve(a, f).unwrap();
        assert_eq!(c.target.origin("x").host, "flag.example");
        assert_eq!(c.plan.mode, Mode::Rate(5.0));
        assert_eq!(c.plan.seed, 7);
        assert_eq!(c.client.timeout, Duration::from_secs(2));
        assert_eq!(c.client.connect_timeout, defaults::CONNECT_TIMEOUT);
        // The flag's header comes after the file's, so it is the one sent.
        assert_eq!(
            c.placement.headers.last().unwrap(),
            &("x-env".to_string(), "ci".to_string())
        );
        // One multiplier for acme, the flag's (the dry run's header listed
        // both).
        assert_eq!(c.plan.tenant_mult, vec![("acme".to_string(), 4.0)]);
    }

    #[test]
    fn a_multiplier_for_a_tenant_left_out_is_refused() {
        let mut a = args(Some("http://staging.example"));
        a.only_tenants = vec!["globex".into()];
        a.tenant_mult = vec![("acme".into(), 4.0)];
        let e = RunConfig::resolve(a, RunFile::default()).unwrap_err();
        assert!(
            e.0.contains("--tenant acme=4") && e.0.contains("--only-tenant globex"),
            "{}",
            e.0
        );
        // The file's multipliers are a profile kept across runs: one for a
        // tenant this run leaves out is no mistake.
        let mut a = args(Some("http://staging.example"));
        a.only_tenants = vec!["globex".into()];
        assert!(RunConfig::resolve(a, file("tenants = { acme = 2 }")).is_ok());
    }

    #[test]
    fn the_seed_scenario_profile() {
        let f = file(
            r#"
            target = "http://127.0.0.1:8080"
            [profile]
            unit = "users"
            stages = [
              { duration = "2m", target = 50 },
              { duration = "5m", target = 50 },
              { duration = "2m", target = 200 },
              { duration = "5m", target = 200 },
              { duration = "2m", target = 0 },
            ]
            "#,
        );
        let c = RunConfig::resolve(args(None), f).unwrap();
        let Mode::Stages(p) = &c.plan.mode else {
            panic!("{:?}", c.plan.mode)
        };
        assert_eq!(p.unit, Unit::Users);
        assert_eq!(p.length(), Duration::from_secs(16 * 60));
        assert_eq!(p.at(60.0), 25.0);
        assert_eq!(p.at(8.0 * 60.0), 125.0);
        assert_eq!(p.at(15.0 * 60.0), 100.0);
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert!(
            RunConfig::resolve(args(None), RunFile::default())
                .unwrap_err()
                .0
                .contains("no target")
        );
        let two = file("speed = 2\nrate = 3\n");
        assert!(
            RunConfig::resolve(args(Some("http://x")), two)
                .unwrap_err()
                .0
                .contains("more than one")
        );
        assert!(
            toml::from_str::<RunFile>("rat = 3").is_err(),
            "unknown keys are refused"
        );
        assert!(toml::from_str::<RunFile>("duration = \"soon\"").is_err());
        let mut a = args(Some("http://x"));
        a.looped = true;
        assert!(
            RunConfig::resolve(a, RunFile::default())
                .unwrap_err()
                .0
                .contains("--loop")
        );
        let zero = file("[profile]\nstages = [{ duration = \"0s\", target = 1 }]\n");
        assert!(RunConfig::resolve(args(Some("http://x")), zero).is_err());
    }

    /// A bad value from the config file names the file and the key, never
    /// a flag the user did not pass.
    #[test]
    fn file_values_are_blamed_on_the_file() {
        for (text, key) in [
            ("threads = 100000", "`threads` 100000: at most"),
            ("rate = 2\nspeed = 3", "more than one of `speed`, `rate`"),
            ("segment = \"4/3\"", "`segment`"),
            ("target = \"ftp://x\"", "`target` `ftp://x`"),
            ("loop = true\nspeed = 2", "`loop` needs a duration"),
            ("loop = true\nrate = 2", "`loop` repeats"),
            (
                "[thresholds]\nhttp_req_duration = [\"p(95)<<5\"]",
                "http_req_duration",
            ),
        ] {
            let mut a = args(None);
            if !text.contains("target") {
                a.target = Some("http://x".into());
            }
            a.config = Some(PathBuf::from("run.toml"));
            let e = RunConfig::resolve(a, file(text)).unwrap_err().0;
            assert!(
                e.starts_with("run.toml: ") && e.contains(key),
                "{text}: {e}"
            );
        }
        // The flag is still blamed when the flag gave the value.
        let mut a = args(Some("http://x"));
        a.threads = Some(100_000);
        assert!(
            RunConfig::resolve(a, RunFile::default())
                .unwrap_err()
                .0
                .starts_with("--threads")
        );
    }
}
