//! `reprise replay`: config → plan → safety checks → run → reports.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::exit;
use crate::auth::{Auth, HttpLogin};
use crate::check::Checks;
use crate::cli::ReplayCommand;
use crate::config::{RunConfig, UsageError};
use crate::drill::SpikeDrill;
use crate::metrics::{Results, RunMeta};
use crate::model::Model;
use crate::output::{human_duration, parent_dir, thousands};
use crate::plan::{Mode, Plan, PlanConfig, TenantPlace, Unit};
use crate::replay::{self, Interrupts, Progress, ReplayOptions, Shutdown};
use crate::report::{self, Run};
use crate::threshold::{self, Watcher};

pub fn replay(a: ReplayCommand, interrupts: &Interrupts) -> Result<u8> {
    let mut cfg = RunConfig::from_args(a.run)?;
    cfg.baseline = a.compare.baseline;
    cfg.max_regressions = a.compare.max_regressions;
    run_config(cfg, None, interrupts)
}

/// Runs a resolved config: `replay`, or a drill (which set the profile and
/// passes its shape for the analysis).
pub fn run_config(
    cfg: RunConfig,
    drill: Option<SpikeDrill>,
    interrupts: &Interrupts,
) -> Result<u8> {
    let command = masked_command(std::env::args());
    let model = Arc::new(Model::load(&cfg.model)?);
    let plan = Arc::new(Plan::new(model.clone(), cfg.plan.clone()).map_err(|e| UsageError(e.0))?);
    refuse_capture_hosts(&plan, &cfg)?;
    if !cfg.quiet {
        if let Some(d) = cfg.plan.duration
            && d > plan.length()
        {
            let why = match cfg.plan.mode {
                Mode::Speed(_) => "the recorded timeline at this speed (--loop repeats it)",
                _ => "the profile's stages",
            };
            crate::say!(
                "warning: --duration {} is longer than {why}: the run lasts {}",
                human_duration(d),
                human_duration(plan.length())
            );
        }
        for w in placement_warnings(&plan, &cfg) {
            crate::say!("warning: {w}");
        }
    }
    let checks = Arc::new(
        Checks::new(&model, &cfg.checks.files, cfg.checks.status_check).map_err(|e| match &cfg
            .checks
            .source
        {
            Some(file) => UsageError(format!("{}: {}", file.display(), e.0)),
            None => e,
        })?,
    );
    let endpoints: Vec<String> = model.endpoints.iter().map(|e| e.name()).collect();
    let tenants: Vec<String> = model.tenants.iter().map(|t| t.name.clone()).collect();
    let known = threshold::Known {
        endpoints: &endpoints,
        tenants: &tenants,
        checks: &checks.names,
        drill: drill.is_some(),
        stages: plan.stage_starts().len() + 1,
        comparing: false,
    };
    threshold::validate(&cfg.thresholds, &known).map_err(UsageError)?;
    // A baseline that cannot be read is a mistake to report now, not after
    // the run.
    let baseline = match &cfg.baseline {
        Some(dir) => Some((report::load(dir)?, dir.display().to_string())),
        None => None,
    };
    // A regression compares a stage both runs have.
    let both = threshold::Known {
        stages: baseline
            .as_ref()
            .map_or(known.stages, |(b, _)| known.stages.min(b.stages.len() + 1)),
        comparing: true,
        ..known
    };
    threshold::validate_regressions(&cfg.max_regressions, &both).map_err(UsageError)?;
    let shutdown = Shutdown::new();
    let auth = match cfg.auth.clone() {
        Some(a) => Some(Arc::new(Auth::new(
            a,
            &plan,
            cfg.target.clone(),
            Arc::new(HttpLogin {
                tls: cfg.auth_tls.clone(),
                timeout: cfg.client.timeout,
                connect_timeout: cfg.client.connect_timeout,
            }),
            shutdown.clone(),
        )?)),
        None => None,
    };
    if cfg.dry_run {
        // A dry run checks a CI job before it runs: the output paths too,
        // without creating anything.
        cfg.outputs().check_shape()?;
        cfg.live.check().map_err(UsageError)?;
        let mut text = dry_run(&plan, &cfg);
        if let Some(a) = &auth {
            text.push_str(&format!("\n{}\n", a.describe()));
        }
        for t in &cfg.thresholds {
            text.push_str(&format!("threshold: {}\n", t.source));
        }
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(exit::OK);
    }
    let meta = RunMeta {
        version: env!("CARGO_PKG_VERSION").to_string(),
        command,
        model: cfg.model.display().to_string(),
        target: crate::model::redact::mask_url(&cfg.target.raw),
        profile: drill
            .as_ref()
            .map_or_else(|| describe(&cfg.plan), SpikeDrill::describe),
        seed: cfg.plan.seed,
        segment: cfg.plan.segment.map(|s| s.to_string()),
        ..RunMeta::default()
    };
    let opts = ReplayOptions {
        target: cfg.target.clone(),
        placement: cfg.placement.clone(),
        client: cfg.client.clone(),
        workers: cfg.threads,
        max_inflight: cfg.max_inflight,
        max_sessions: cfg.max_sessions,
        late_after: cfg.late_after,
        grace: cfg.grace,
        checks: checks.clone(),
    };
    let watcher = Watcher::new(&cfg.thresholds);
    let live = if cfg.live.any() {
        let tenant_w: Vec<u64> = model.tenants.iter().map(|t| t.requests).collect();
        let endpoint_w: Vec<u64> = model.endpoints.iter().map(|e| e.requests).collect();
        let l =
            crate::live::Live::start(&cfg.live, (&tenants, &tenant_w), (&endpoints, &endpoint_w))
                .map_err(UsageError)?;
        if let Some(a) = l.addr {
            crate::say!("live metrics: http://{a}/metrics");
        }
        Some(l)
    } else {
        None
    };
    // Last of the checks: it creates the run directory, which a later
    // mistake would leave empty.
    cfg.outputs().check()?;
    let planned_sessions = plan.planned_per_second();
    let stages = plan.stage_starts();
    let watching = (!cfg.watch.targets.is_empty()).then(|| {
        crate::watch::WatchRun::start(
            &cfg.watch,
            std::time::Instant::now() + Duration::from_millis(50),
        )
    });
    let mut results = execute(
        plan,
        opts,
        auth,
        (shutdown, watcher, live),
        meta,
        interrupts,
        cfg.quiet,
    );
    results.check_names = checks.names.clone();
    if results.meta.schedule_cut {
        // Every arrival of the plan was due by the run's end; those the
        // schedule never reached did not start: dropped, not missing, and
        // in the timeline at the run's last second, where they were given
        // up on.
        let planned: u64 = planned_sessions.iter().sum();
        let c = &results.counts;
        let missed =
            planned.saturating_sub(c.sessions_started + c.sessions_dropped + c.sessions_empty);
        results.counts.sessions_dropped += missed;
        let last = results.timeline.seconds().last().map_or(0, |(s, _)| s);
        let mut tick = crate::metrics::Tick::new(last);
        tick.counts.sessions_dropped = missed;
        results.timeline.add(tick);
    }
    results.planned_sessions = planned_sessions;
    results.stages = stages;
    if let Some(w) = watching {
        results.watch = w.finish();
        for w in &results.watch {
            if w.scrapes_failed > 0 && !cfg.quiet {
                crate::say!(
                    "warning: --watch {}: {} of {} scrapes failed (the last: {})",
                    w.name,
                    w.scrapes_failed,
                    w.scrapes_failed + w.times.len() as u64,
                    w.last_error.as_deref().unwrap_or("?")
                );
            }
        }
    }
    judge(&mut results, &cfg.thresholds, drill.as_ref());
    if let Some((base, dir)) = &baseline {
        against_baseline(&mut results, base, dir, &cfg.max_regressions);
    }
    finish(&results, &cfg.outputs(), cfg.quiet)
}

/// Where a run's reports go: the run directory, and single files.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    pub dir: Option<std::path::PathBuf>,
    pub junit: Option<std::path::PathBuf>,
    pub html: Option<std::path::PathBuf>,
}

impl Outputs {
    /// Makes sure the results can be written before anything is sent: the
    /// run directory is created (or is a directory already) and takes a
    /// file; `--junit`/`--html` are not directories and their directory
    /// takes a file. Otherwise a run of many minutes would be lost at the
    /// end.
    pub fn check(&self) -> Result<(), UsageError> {
        self.check_shape()?;
        let probe = |dir: &std::path::Path, what: &str, path: &std::path::Path| {
            let file = dir.join(format!(".reprise-probe-{}", std::process::id()));
            std::fs::File::create(&file)
                .and_then(|_| std::fs::remove_file(&file))
                .map_err(|e| {
                    UsageError(format!(
                        "{what} {}: cannot write there: {e}",
                        path.display()
                    ))
                })
        };
        if let Some(dir) = &self.dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                UsageError(format!("--out {}: cannot create it: {e}", dir.display()))
            })?;
            probe(dir, "--out", dir)?;
        }
        for (flag, path) in self.files() {
            probe(parent_dir(path), flag, path)?;
        }
        Ok(())
    }

    /// The checks that change nothing on disk (all a dry run makes): the
    /// run directory is not a file, and `--junit`/`--html` name files in
    /// directories that exist.
    pub fn check_shape(&self) -> Result<(), UsageError> {
        if let Some(dir) = &self.dir
            && dir.exists()
            && !dir.is_dir()
        {
            return Err(UsageError(format!(
                "--out {}: exists and is not a directory",
                dir.display()
            )));
        }
        for (flag, path) in self.files() {
            // The run directory (and what it needs above it) is made
            // before the files are written: a report inside it is fine.
            let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.into());
            let made = self
                .dir
                .as_deref()
                .is_some_and(|d| abs(d).starts_with(abs(parent_dir(path))));
            crate::output::file_place(flag, path, made).map_err(UsageError)?;
        }
        Ok(())
    }

    /// `--junit` and `--html` when they name files (`-` is stdout).
    fn files(&self) -> impl Iterator<Item = (&'static str, &std::path::Path)> {
        [("--junit", &self.junit), ("--html", &self.html)]
            .into_iter()
            .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
            .filter(|(_, p)| *p != std::path::Path::new("-"))
    }

    /// Writes `--junit FILE` and `--html FILE`.
    pub fn write_files(&self, run: &Run<'_>) -> Result<()> {
        let files: [(&Option<std::path::PathBuf>, &dyn report::Exporter, &str); 2] = [
            (&self.junit, &report::JUnit, "JUnit report"),
            (&self.html, &report::Html, "HTML report"),
        ];
        for (path, exporter, what) in files {
            if let Some(path) = path {
                report::write_file(path, run, exporter)
                    .with_context(|| format!("writing the {what} to {}", path.display()))?;
            }
        }
        Ok(())
    }
}

/// Judges the thresholds (and a drill's recovery) on the results.
pub fn judge(
    results: &mut Results,
    thresholds: &[threshold::Threshold],
    drill: Option<&SpikeDrill>,
) {
    if let Some(d) = drill {
        let mut r = crate::drill::analyse(d, &results.timeline);
        let stopped = results.meta.interrupted || results.meta.aborted.is_some();
        let at = results.meta.elapsed;
        if stopped && r.recovery_time.is_none() && at < Duration::from_secs(r.observe_end_s) {
            // Stopped before the observation ended: whether the target
            // would have recovered is unknown, not a failure to recover.
            r.verdict = format!(
                "not judged: the drill stopped at {} ({}), before the observation was to end at {}s",
                human_duration(at),
                if results.meta.interrupted {
                    "interrupted"
                } else {
                    "aborted"
                },
                r.observe_end_s
            );
        }
        results.drill = Some(r);
    }
    results.thresholds = threshold::evaluate(thresholds, results);
    if let Some(r) = &results.drill {
        // A drill fails when the target does not come back in time.
        results.thresholds.insert(
            0,
            threshold::Verdict {
                threshold: "recovery: back to the baseline before the observation ends".into(),
                ok: r.recovery_time.is_some(),
                observed: r.recovery_time.map(|d| d.as_secs_f64() * 1000.0),
                unit: "ms".into(),
                windows: None,
                abort_on_fail: false,
                agg: "recovery_time".into(),
                note: Some(r.verdict.clone()),
            },
        );
    }
}

/// Compares with a baseline run and judges the regression limits (their
/// verdicts join the thresholds: a failed one makes the exit code 99).
pub fn against_baseline(
    results: &mut Results,
    baseline: &Results,
    dir: &str,
    limits: &[threshold::Regression],
) {
    results.comparison = Some(threshold::compare(results, baseline, dir));
    for g in limits {
        let v = threshold::judge_regression(g, results, baseline);
        results.thresholds.push(v);
    }
}

/// Runs the plan with live progress on stderr; Ctrl-C stops it gracefully,
/// a lost threshold with abort_on_fail stops it early.
pub fn execute(
    plan: Arc<Plan>,
    opts: ReplayOptions,
    auth: Option<Arc<Auth>>,
    (shutdown, watcher, live): (Shutdown, Option<Watcher>, Option<crate::live::Live>),
    mut meta: RunMeta,
    interrupts: &Interrupts,
    quiet: bool,
) -> Results {
    interrupts.arm(&shutdown);
    meta.start = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut progress = Live::new(&plan, quiet);
    let mut results = replay::run(plan, opts, auth, (watcher, live), shutdown, |p| {
        progress.show(p)
    });
    progress.done();
    interrupts.disarm();
    meta.end = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    meta.workers = results.meta.workers;
    meta.planned = results.meta.planned;
    meta.elapsed = results.meta.elapsed;
    meta.interrupted = results.meta.interrupted;
    meta.aborted = results.meta.aborted.take();
    meta.abort_code = results.meta.abort_code;
    meta.schedule_cut = results.meta.schedule_cut;
    results.meta = meta;
    results
}

/// Writes the run directory (and `--junit`, `--html`) and prints the summary; the
/// exit code: 130 when interrupted, 99 when a threshold failed (or aborted
/// the run), the abort's code, else 0.
pub fn finish(results: &Results, outputs: &Outputs, quiet: bool) -> Result<u8> {
    let run = Run::new(results);
    let out = outputs.dir.as_deref();
    if let Some(dir) = out {
        report::write_dir(dir, &run, &report::standard())
            .with_context(|| format!("writing the results to {}", dir.display()))?;
    }
    outputs.write_files(&run)?;
    if !quiet {
        let text = report::terminal::render(&run.summary, 10);
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        if let Some(dir) = out {
            writeln!(stdout, "\n  results in {}", dir.display())?;
        }
    }
    if results.meta.interrupted {
        return Ok(exit::INTERRUPTED);
    }
    let failed = results.thresholds.iter().filter(|v| !v.ok).count();
    if let Some(reason) = &results.meta.aborted {
        crate::say!("error: {reason}");
        return Ok(if failed > 0 {
            exit::THRESHOLDS
        } else {
            results.meta.abort_code.max(exit::FAILURE)
        });
    }
    if failed > 0 {
        crate::say!(
            "error: {failed} of {} thresholds failed (exit code {})",
            results.thresholds.len(),
            exit::THRESHOLDS
        );
        return Ok(exit::THRESHOLDS);
    }
    Ok(exit::OK)
}

/// Progress on stderr: a bar on a terminal, a line every few seconds
/// otherwise (CI logs).
struct Live {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    last_line: Instant,
    stages: Option<usize>,
    profile: Option<crate::plan::Profile>,
}

impl Live {
    fn new(plan: &Plan, quiet: bool) -> Live {
        let profile = match &plan.cfg.mode {
            Mode::Stages(p) => Some(p.clone()),
            _ => None,
        };
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(plan.length().as_millis() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:30.cyan/blue} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Live {
            bar,
            quiet,
            last_line: Instant::now(),
            stages: profile.as_ref().map(|p| p.stages.len()),
            profile,
        }
    }

    fn show(&mut self, p: &Progress) {
        if self.quiet {
            return;
        }
        let stage = match (&self.profile, self.stages) {
            (Some(pr), Some(n)) => {
                format!("  stage {}/{n}", pr.stage_at(p.elapsed.as_secs_f64()) + 1)
            }
            _ => String::new(),
        };
        let msg = format!(
            "{}/{}  {:.0} req/s  p95 {}  {} requests  {} failed  {} sessions open  {} in flight{stage}",
            human_duration(p.elapsed),
            human_duration(p.planned),
            p.rate,
            p.p95_ms.map_or("-".to_string(), crate::output::human_ms),
            thousands(p.requests),
            thousands(p.failed),
            thousands(p.active_sessions),
            thousands(p.in_flight),
        );
        match &self.bar {
            Some(b) => {
                b.set_position(p.elapsed.as_millis().min(u128::from(u64::MAX)) as u64);
                b.set_message(msg);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(5) => {
                self.last_line = Instant::now();
                crate::say!("[reprise] {msg}");
            }
            None => {}
        }
    }

    fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Refuses targets the capture was recorded on, unless allowed: production
/// must never be hit by accident.
fn refuse_capture_hosts(plan: &Plan, cfg: &RunConfig) -> Result<(), UsageError> {
    let recorded = &plan.model.capture.hosts;
    let allowed = |host: &str| {
        cfg.allow_hosts
            .iter()
            .any(|a| same_host(a, host) || same_host(strip_port(a).0, host))
    };
    for origin in replay::origins(plan, &cfg.target) {
        let hit = recorded.iter().find(|h| {
            let (host, port) = strip_port(h);
            same_host(host, &origin.host) && port.is_none_or(|p| p == origin.port)
        });
        if let Some(h) = hit
            && !allowed(&origin.host)
        {
            return Err(UsageError(format!(
                "refusing to send traffic to {origin}: the capture was recorded on {h}, which may be production. \
                 If it really is a test target, pass --allow-host {}",
                origin.host
            )));
        }
    }
    Ok(())
}

/// Whether two spellings name the same host: case, a trailing root dot
/// (`shop.example.` is `shop.example` to DNS), brackets, and an IPv4
/// address written as IPv6 (`::ffff:10.0.0.1`) do not make a host new.
fn same_host(a: &str, b: &str) -> bool {
    canonical_host(a) == canonical_host(b)
}

fn canonical_host(h: &str) -> String {
    let h = h.trim().trim_start_matches('[').trim_end_matches(']');
    let h = h.trim_end_matches('.');
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        Ok(ip) => ip.to_string(),
        Err(_) => h.to_ascii_lowercase(),
    }
}

/// `host:port` → (host, port); brackets of IPv6 literals dropped.
fn strip_port(h: &str) -> (&str, Option<u16>) {
    let h = h.trim();
    if let Some(rest) = h.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (h, None),
        },
        _ => (h, None),
    }
}

/// Tenants the target will not be able to tell apart, said before the run.
fn placement_warnings(plan: &Plan, cfg: &RunConfig) -> Vec<String> {
    let mut out = Vec::new();
    for t in &plan.tenants {
        let place = &t.place;
        let by_header = cfg.placement.tenant_header.is_some();
        let w = match place {
            TenantPlace::Host if !cfg.target.per_tenant() && !by_header => Some(
                "tenants were told apart by host subdomain, but --target has no {tenant} in its host: put it there (https://{tenant}.staging.example.com) or add --tenant-header NAME".to_string(),
            ),
            TenantPlace::Nowhere if cfg.target.per_tenant() => Some(format!(
                "the capture gave tenant `{}` no place of its own, so --target's {{tenant}} host sends its requests to {}",
                t.name,
                cfg.target.origin(&t.name)
            )),
            TenantPlace::Token(claim) if !by_header => Some(format!(
                "tenants were told apart by the `{claim}` claim of bearer tokens; recorded tokens are never replayed, so the target sees no tenant unless --tenant-header NAME is given"
            )),
            _ => None,
        };
        if let Some(w) = w
            && !out.contains(&w)
        {
            out.push(w);
        }
    }
    out
}

/// How the load is driven, in words.
pub fn describe(p: &PlanConfig) -> String {
    let mut s = match &p.mode {
        Mode::Speed(n) => format!("speed ×{n}{}", if p.looped { ", looped" } else { "" }),
        Mode::Rate(n) => format!("rate ×{n}"),
        Mode::Stages(pr) => {
            let unit = match pr.unit {
                Unit::Multiplier => "× recorded rate",
                Unit::SessionsPerSec => "sessions/s",
                Unit::Users => "users",
            };
            let targets: Vec<String> = pr
                .stages
                .iter()
                .map(|s| format!("{}→{}", human_duration(s.duration), s.target))
                .collect();
            format!("profile ({unit}) {}", targets.join(", "))
        }
    };
    if p.think_scale != 1.0 {
        s.push_str(&format!(", think ×{}", p.think_scale));
    }
    for (t, m) in &p.tenant_mult {
        s.push_str(&format!(", {t} ×{m}"));
    }
    if !p.only_tenants.is_empty() {
        s.push_str(&format!(", only {}", p.only_tenants.join(",")));
    }
    s
}

/// The plan as a table: sessions/s and requests/s per tenant over time.
pub fn dry_run(plan: &Plan, cfg: &RunConfig) -> String {
    let len = plan.length();
    let window = nice_window(len);
    let expected = plan.expected(window);
    let share = cfg.plan.segment.map_or(1.0, |s| 1.0 / f64::from(s.count));
    let w = window.as_secs_f64();
    let mut o = String::new();
    o.push_str(&format!(
        "plan: {} for {}, target {}, seed {}{}\n\n",
        describe(&cfg.plan),
        human_duration(len),
        cfg.target.raw,
        cfg.plan.seed,
        cfg.plan.segment.map_or(String::new(), |s| format!(
            ", segment {s} (about 1/{} of it)",
            s.count
        ))
    ));
    o.push_str(&format!("{:>9}", "from"));
    for t in &plan.tenants {
        o.push_str(&format!(
            "  {:>14}",
            format!("{} sess/s", truncate(&t.name, 7))
        ));
    }
    o.push_str(&format!("  {:>12}  {:>12}\n", "sessions/s", "requests/s"));
    let windows = expected.first().map_or(0, |(_, rows)| rows.len());
    let mut totals = vec![(0.0, 0.0); plan.tenants.len()];
    for k in 0..windows {
        let start = Duration::from_secs_f64(k as f64 * w);
        let span = (len.as_secs_f64() - k as f64 * w).min(w).max(1e-9);
        let from = if start.is_zero() {
            "0s".to_string()
        } else {
            human_duration(start)
        };
        o.push_str(&format!("{from:>9}"));
        let (mut sess, mut reqs) = (0.0, 0.0);
        for (t, rows) in &expected {
            let (s, r) = rows[k];
            totals[*t].0 += s * share;
            totals[*t].1 += r * share;
            sess += s;
            reqs += r;
            o.push_str(&format!("  {:>14.2}", s * share / span));
        }
        o.push_str(&format!(
            "  {:>12.2}  {:>12.1}\n",
            sess * share / span,
            reqs * share / span
        ));
    }
    o.push_str("\nexpected in total\n");
    let (mut all_s, mut all_r) = (0.0, 0.0);
    for (t, (s, r)) in plan.tenants.iter().zip(&totals) {
        o.push_str(&format!(
            "  {:<16} {:>10} sessions  {:>12} requests\n",
            t.name,
            thousands(s.round() as u64),
            thousands(r.round() as u64)
        ));
        all_s += s;
        all_r += r;
    }
    o.push_str(&format!(
        "  {:<16} {:>10} sessions  {:>12} requests\n",
        "all",
        thousands(all_s.round() as u64),
        thousands(all_r.round() as u64)
    ));
    o.push_str("\nnothing was sent (--dry-run)\n");
    o
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// About a dozen rows: 1 s, 5 s, 10 s, 30 s, 1 m, 5 m, ... windows.
fn nice_window(len: Duration) -> Duration {
    let target = len.as_secs_f64() / 12.0;
    let steps = [
        1u64, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 86_400,
    ];
    Duration::from_secs(
        steps
            .iter()
            .copied()
            .find(|s| *s as f64 >= target)
            .unwrap_or(86_400),
    )
}

/// The command line for the record, with header values that look like
/// credentials masked.
pub fn masked_command(args: impl Iterator<Item = String>) -> String {
    let mut out = Vec::new();
    let mut header_next = false;
    for a in args {
        let masked = if header_next || a.starts_with("--header=") {
            let body = a.strip_prefix("--header=").unwrap_or(&a);
            let prefix = if a.starts_with("--header=") {
                "--header="
            } else {
                ""
            };
            match body.split_once(':') {
                Some((name, _))
                    if crate::model::redact::is_secret_name(&name.trim().to_ascii_lowercase()) =>
                {
                    format!("{prefix}{name}: ***")
                }
                _ => a.clone(),
            }
        } else if a.contains("://") {
            crate::model::redact::mask_url(&a)
        } else {
            a.clone()
        };
        header_next = a == "--header";
        out.push(masked);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_told_from_hosts() {
        assert_eq!(strip_port("shop.example.com"), ("shop.example.com", None));
        assert_eq!(
            strip_port("shop.example.com:8443"),
            ("shop.example.com", Some(8443))
        );
        assert_eq!(strip_port("[::1]:80"), ("::1", Some(80)));
        assert_eq!(strip_port("::1"), ("::1", None));
    }

    /// A drill stopped before its observation ended is not judged as a
    /// target that did not recover (it had no spike yet).
    #[test]
    fn a_drill_stopped_early_is_not_judged_on_recovery() {
        let d = SpikeDrill {
            baseline: 2.0,
            spike: 10.0,
            baseline_for: Duration::from_secs(5),
            spike_for: Duration::from_secs(5),
            observe: Duration::from_secs(10),
            tolerance: 0.2,
            sustain: Duration::from_secs(2),
            window: Duration::from_secs(2),
        };
        let mut r = Results::default();
        r.meta.interrupted = true;
        r.meta.elapsed = Duration::from_secs(4);
        let user = threshold::parse("recovery_time: value<5s").unwrap();
        judge(&mut r, &user, Some(&d));
        let verdict = &r.drill.as_ref().unwrap().verdict;
        assert!(
            verdict.starts_with("not judged: the drill stopped at 4"),
            "{verdict}"
        );
        assert_eq!(r.thresholds[0].note.as_deref(), Some(verdict.as_str()));
        // The user's recovery_time threshold says the same, not "did not
        // recover".
        assert_eq!(r.thresholds[1].note.as_deref(), Some(verdict.as_str()));
        // Run to its end, the same timeline did not recover.
        let mut r = Results::default();
        r.meta.elapsed = Duration::from_secs(20);
        judge(&mut r, &user, Some(&d));
        assert_eq!(r.thresholds[1].note.as_deref(), Some("did not recover"));
        assert!(!r.drill.unwrap().verdict.starts_with("not judged"));
    }

    #[test]
    fn one_host_spelled_differently_is_the_same_host() {
        for (a, b) in [
            ("shop.example.com", "SHOP.example.com."),
            ("shop.example.com.", "shop.example.com"),
            ("10.0.0.1", "::ffff:10.0.0.1"),
            ("10.0.0.1", "[::ffff:a00:1]"),
            ("::1", "0:0:0:0:0:0:0:1"),
        ] {
            assert!(same_host(a, b), "{a} / {b}");
        }
        assert!(!same_host("shop.example.com", "shop.example.co"));
        assert!(!same_host("10.0.0.1", "10.0.0.2"));
    }

    #[test]
    fn credentials_in_headers_are_masked() {
        let args = [
            "reprise",
            "replay",
            "--header",
            "Authorization: Bearer abc",
            "--header=X-Api-Key: k",
            "--header",
            "X-Env: ci",
        ];
        let s = masked_command(args.iter().map(|s| s.to_string()));
        assert!(!s.contains("abc") && !s.contains(": k"), "{s}");
        assert!(s.contains("X-Env: ci"), "{s}");
    }

    #[test]
    fn credentials_in_urls_are_masked() {
        assert_eq!(
            crate::model::redact::mask_url(
                "https://loadtest:s3cret@staging.example.com/api?x=1&api_key=k1&token=t#f"
            ),
            "https://loadtest:***@staging.example.com/api?x=1&api_key=***&token=***#f"
        );
        assert_eq!(
            crate::model::redact::mask_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            crate::model::redact::mask_url(
                "--influx=http://u:p@influx:8086/api/v2/write?org=o&bucket=b"
            ),
            "--influx=http://u:***@influx:8086/api/v2/write?org=o&bucket=b"
        );
        // A password with an unencoded `/`, `?` or `#` still masked.
        for (raw, shown) in [
            ("http://ci:12/34@host/x", "http://ci:***@host/x"),
            ("http://ci:a?b@host", "http://ci:***@host"),
            (
                "http://ci:p#ss@host:81/p?token=t",
                "http://ci:***@host:81/p?token=***",
            ),
        ] {
            assert_eq!(crate::model::redact::mask_url(raw), shown);
        }
        let args = [
            "reprise",
            "replay",
            "--target",
            "https://a:pw@x.test",
            "--watch",
            "db=http://x/metrics?password=p",
        ];
        let s = masked_command(args.iter().map(|s| s.to_string()));
        assert!(!s.contains("pw@") && !s.contains("password=p"), "{s}");
    }
}
