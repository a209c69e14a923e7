//! The end-of-run summary for people, k6-like: every metric with
//! avg/min/med/max/p90/p95/p99, then tenants, the top endpoints and errors
//! by kind. Also saved as summary.txt next to the JSON.

use std::fmt::Write;

use super::summary::{Group, Stats, Summary};
use super::{Exporter, ReportError, Run};
use crate::output::{human_ms as ms, thousands};

/// Renders the summary as text; `top` endpoints are listed.
pub struct Terminal {
    pub top: usize,
}

impl Exporter for Terminal {
    fn file_name(&self) -> &'static str {
        "summary.txt"
    }

    fn render(&self, run: &Run<'_>) -> Result<Vec<u8>, ReportError> {
        Ok(render(&run.summary, self.top).into_bytes())
    }
}

fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn bytes(n: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{} {}", trim(v, 1), units[u])
}

fn pct(x: f64) -> String {
    format!("{}%", trim(x * 100.0, 2))
}

fn dots(name: &str) -> String {
    let mut s = name.to_string();
    s.push_str(&".".repeat(30usize.saturating_sub(name.len()).max(2)));
    s.push(':');
    s
}

fn stats_line(s: &Stats) -> String {
    format!(
        "avg={:<9} min={:<9} med={:<9} max={:<9} p(90)={:<9} p(95)={:<9} p(99)={}",
        ms(s.avg),
        ms(s.min),
        ms(s.med),
        ms(s.max),
        ms(s.p90),
        ms(s.p95),
        ms(s.p99)
    )
}

/// The summary as text.
/// Past this generator lag p99 (ms), the summary says that reprise, not
/// only the target, was slow: five times the 2 ms bound its lag p99 stays
/// under on one core at 20,000 requests/s (docs/performance.md).
const BEHIND_MS: f64 = 10.0;

pub fn render(s: &Summary, top: usize) -> String {
    let mut o = String::new();
    let run = &s.run;
    let _ = writeln!(o, "\nreprise replay · {} → {}", run.model, run.target);
    let _ = writeln!(
        o,
        "  {} · {} planned, {} run · seed {}{} · {} worker{}{}",
        run.profile,
        ms(run.planned.as_secs_f64() * 1000.0),
        ms(run.elapsed.as_secs_f64() * 1000.0),
        run.seed,
        run.segment
            .as_ref()
            .map_or(String::new(), |g| format!(" · segment {g}")),
        run.workers,
        if run.workers == 1 { "" } else { "s" },
        if run.interrupted {
            " · INTERRUPTED (Ctrl-C or a stop signal): partial results"
        } else {
            ""
        }
    );
    if let Some(reason) = &run.aborted {
        let _ = writeln!(o, "  STOPPED EARLY: {reason}");
    }
    let _ = writeln!(o);
    let r = &s.requests;
    let secs = run.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        o,
        "  {} {:<12} {}/s",
        dots("http_reqs"),
        thousands(r.total),
        trim(r.per_sec, 1)
    );
    let _ = writeln!(
        o,
        "  {} {:<12} {} of {}",
        dots("http_req_failed"),
        pct(r.failed_rate),
        thousands(r.failed),
        thousands(r.total)
    );
    if r.cut_short > 0 {
        let _ = writeln!(
            o,
            "  {} {:<12} in flight when the run stopped, never answered",
            dots("http_reqs_cut_short"),
            thousands(r.cut_short)
        );
    }
    for m in &s.metrics {
        if m.stats.count > 0 {
            let _ = writeln!(o, "  {} {}", dots(m.name), stats_line(&m.stats));
        }
    }
    let ss = &s.sessions;
    let _ = writeln!(
        o,
        "  {} {} started, {} completed, {} late, {} dropped, {} interrupted",
        dots("sessions"),
        thousands(ss.started),
        thousands(ss.completed),
        thousands(ss.late),
        thousands(ss.dropped),
        thousands(ss.interrupted)
    );
    if ss.empty > 0 {
        let _ = writeln!(
            o,
            "  {:31} {} arrivals sent nothing (their requests were all left out by --methods, or a recorded login the token manager does instead)",
            "",
            thousands(ss.empty)
        );
    }
    let (passed, failed): (u64, u64) = s
        .checks
        .iter()
        .fold((0, 0), |(p, f), c| (p + c.passes, f + c.fails));
    if passed + failed > 0 {
        let _ = writeln!(
            o,
            "  {} {:<12} ✓ {} ✗ {}",
            dots("checks"),
            pct(passed as f64 / (passed + failed) as f64),
            thousands(passed),
            thousands(failed)
        );
        for c in &s.checks {
            let _ = writeln!(
                o,
                "    {} {:<40} {:>8}  ({} of {} failed)",
                if c.fails == 0 { "✓" } else { "✗" },
                c.name,
                pct(c.rate),
                thousands(c.fails),
                thousands(c.passes + c.fails)
            );
            if let Some(note) = c.cut_note() {
                let _ = writeln!(o, "      {note}");
            }
        }
    }
    for (name, n) in [
        ("data_received", r.bytes_received),
        ("data_sent", r.bytes_sent),
    ] {
        let _ = writeln!(
            o,
            "  {} {:<12} {}/s",
            dots(name),
            bytes(n as f64),
            bytes(n as f64 / secs)
        );
    }
    if let Some(a) = &s.auth {
        let _ = writeln!(
            o,
            "\n  auth ({}, {} user{})",
            a.kind,
            thousands(a.identities as u64),
            if a.identities == 1 { "" } else { "s" }
        );
        if a.auth_req_duration.count > 0 {
            let _ = writeln!(
                o,
                "  {} {}",
                dots("auth_req_duration"),
                stats_line(&a.auth_req_duration)
            );
        }
        let _ = writeln!(
            o,
            "  {} {} logins, {} token_refreshes, {} auth_failures, {} auth_retries, {} sessions denied",
            dots("auth"),
            thousands(a.logins),
            thousands(a.token_refreshes),
            thousands(a.auth_failures),
            thousands(a.auth_retries),
            thousands(a.sessions_denied)
        );
        if a.auth_cut_short > 0 {
            let _ = writeln!(
                o,
                "  {:31} {} login{} still waiting for an answer when the run ended",
                "",
                thousands(a.auth_cut_short),
                if a.auth_cut_short == 1 {
                    " was"
                } else {
                    "s were"
                }
            );
        }
        if let Some(e) = a.examples.first() {
            let _ = writeln!(o, "    e.g. {e}");
        }
    }
    let _ = writeln!(
        o,
        "\n  http_req_duration counts from when each request was due, so a slow or stalled\n  target shows in it; service_time counts from the send; generator_lag is the\n  difference (reprise's own lateness)."
    );
    if let Some(lag) = s.metric("generator_lag")
        && lag.count > 0
        && lag.p99 > BEHIND_MS
    {
        let _ = writeln!(
            o,
            "\n  ! reprise fell behind its plan: generator_lag p(99)={}. The requests it sent\n    late count from when they were due, so part of their latency is reprise's\n    own. Give it more CPU, or split the run with --segment, before reading the\n    target's latency from this run.",
            ms(lag.p99)
        );
    }
    table(&mut o, "tenant", &s.tenants, usize::MAX);
    table(&mut o, "endpoint", &s.endpoints, top);
    if s.endpoints.len() > top {
        let _ = writeln!(
            o,
            "  … and {} more endpoints (all in summary.json)",
            s.endpoints.len() - top
        );
    }
    if let Some(d) = &s.drill {
        drill(&mut o, d);
    }
    if let Some(c) = &s.comparison {
        comparison(&mut o, c, top);
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(o, "\n  thresholds");
        let width = s
            .thresholds
            .iter()
            .map(|v| v.threshold.chars().count())
            .max()
            .unwrap_or(0)
            .min(70);
        for v in &s.thresholds {
            let seen = v.shown();
            let _ = writeln!(
                o,
                "    {} {:<width$}  {seen}",
                if v.ok { "✓" } else { "✗" },
                v.threshold
            );
        }
    }
    if s.errors.is_empty() {
        let _ = writeln!(o, "\n  errors: none");
    } else {
        let _ = writeln!(o, "\n  errors");
        for e in &s.errors {
            let _ = write!(o, "    {:<9} {:>9}", e.kind, thousands(e.count));
            if let Some((endpoint, message)) = e.examples.first() {
                let _ = write!(o, "   e.g. {endpoint}: {message}");
            }
            let _ = writeln!(o);
        }
    }
    o
}

/// `45ms → 61ms (+35.6%)`.
pub(crate) fn then_now(then: f64, now: f64) -> String {
    let rel = if then > 0.0 {
        format!(" ({:+.1}%)", (now - then) / then * 100.0)
    } else {
        String::new()
    };
    format!("{} → {}{rel}", ms(then), ms(now))
}

/// A tenant or endpoint only one of the two runs had: said so, not
/// compared with a latency of 0 and a KS distance of 1.
pub(crate) fn one_sided(d: &crate::threshold::DistChange) -> Option<String> {
    match d.count {
        (0, n) => Some(format!(
            "new in this run ({} requests, p50 {}, p95 {}, p99 {})",
            thousands(n),
            ms(d.p50.1),
            ms(d.p95.1),
            ms(d.p99.1)
        )),
        (n, 0) => Some(format!(
            "not in this run (the baseline had {} requests)",
            thousands(n)
        )),
        _ => None,
    }
}

fn comparison(o: &mut String, c: &crate::threshold::Comparison, top: usize) {
    let _ = writeln!(
        o,
        "\n  compared with the baseline {} (run {})",
        c.baseline, c.baseline_start
    );
    let _ = writeln!(
        o,
        "    requests/s {} → {}, error rate {} → {}",
        trim(c.rate.0, 1),
        trim(c.rate.1, 1),
        pct(c.error_rate.0),
        pct(c.error_rate.1)
    );
    let row = |o: &mut String, name: &str, d: &crate::threshold::DistChange| {
        if let Some(side) = one_sided(d) {
            let _ = writeln!(o, "    {name:<34} {side}");
            return;
        }
        let _ = writeln!(
            o,
            "    {:<34} p50 {:<28} p95 {:<28} p99 {:<28} KS {:.3}",
            name,
            then_now(d.p50.0, d.p50.1),
            then_now(d.p95.0, d.p95.1),
            then_now(d.p99.0, d.p99.1),
            d.ks
        );
    };
    for d in &c.metrics {
        if d.name == "http_req_duration" || d.name == "http_req_service_time" {
            row(o, &d.name, d);
        }
    }
    for d in &c.tenants {
        row(o, &format!("tenant {}", d.name), d);
    }
    // The endpoints that moved most (by the distance between distributions).
    let mut moved: Vec<&crate::threshold::DistChange> = c.endpoints.iter().collect();
    moved.sort_by(|a, b| b.ks.total_cmp(&a.ks).then_with(|| a.name.cmp(&b.name)));
    for d in moved.into_iter().take(top) {
        row(o, &d.name, d);
    }
    let _ = writeln!(
        o,
        "    (KS: the largest gap between the two latency distributions, 0 = same shape, 1 = no overlap)"
    );
}

fn drill(o: &mut String, d: &crate::drill::DrillReport) {
    let opt_ms = |v: Option<f64>| v.map_or_else(|| "none".to_string(), ms);
    let _ = writeln!(
        o,
        "\n  spike drill: ×{} → ×{} from {}s to {}s, observed to {}s",
        trim(d.baseline_multiplier, 2),
        trim(d.spike_multiplier, 2),
        d.spike_start_s,
        d.spike_end_s,
        d.observe_end_s
    );
    let _ = writeln!(
        o,
        "    baseline   p95 {}, errors {} ({} requests)",
        opt_ms(d.baseline.p95_ms),
        pct(d.baseline.error_rate),
        thousands(d.baseline.requests)
    );
    let _ = writeln!(
        o,
        "    spike      p95 {}, errors {}, peak p95 {}, {} sessions dropped",
        opt_ms(d.spike.p95_ms),
        pct(d.spike.error_rate),
        opt_ms(d.peak_p95_ms),
        thousands(d.spike_sessions_dropped)
    );
    let _ = writeln!(
        o,
        "    recovery   {} (back means p95 ≤ {} and errors ≤ {} over a {} window)",
        d.verdict,
        opt_ms(d.p95_limit_ms),
        pct(d.error_rate_limit),
        crate::output::human_duration(d.window)
    );
}

fn table(o: &mut String, what: &str, groups: &[Group], top: usize) {
    if groups.is_empty() {
        return;
    }
    let width = groups
        .iter()
        .take(top)
        .map(|g| g.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(what.len(), 48);
    let _ = writeln!(
        o,
        "\n  {what:<width$}  {:>9}  {:>6}  {:>7}  {:>9}  {:>9}  {:>9}",
        "requests", "share", "failed", "p50", "p95", "p99"
    );
    for g in groups.iter().take(top) {
        let name: String = if g.name.chars().count() > width {
            g.name.chars().take(width - 1).chain(['…']).collect()
        } else {
            g.name.clone()
        };
        let _ = writeln!(
            o,
            "  {name:<width$}  {:>9}  {:>6}  {:>7}  {:>9}  {:>9}  {:>9}",
            thousands(g.requests),
            pct(g.share),
            pct(g.failed_rate),
            ms(g.duration.med),
            ms(g.duration.p95),
            ms(g.duration.p99)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_lists_tenants_and_says_what_only_one_run_had() {
        let d = |name: &str, count: (u64, u64), p: (f64, f64)| crate::threshold::DistChange {
            name: name.into(),
            count,
            p50: p,
            p90: p,
            p95: p,
            p99: p,
            max: p,
            ks: 1.0,
            error_rate: Some((0.0, 0.0)),
        };
        let c = crate::threshold::Comparison {
            baseline: "base".into(),
            baseline_start: "then".into(),
            rate: (10.0, 10.0),
            error_rate: (0.0, 0.0),
            metrics: Vec::new(),
            tenants: vec![d("acme", (50, 60), (20.0, 30.0))],
            endpoints: vec![
                d("POST /api/login", (0, 107), (0.0, 22.0)),
                d("GET /old", (12, 0), (5.0, 0.0)),
            ],
        };
        let mut o = String::new();
        comparison(&mut o, &c, 10);
        assert!(
            o.contains("tenant acme") && o.contains("20ms → 30ms"),
            "{o}"
        );
        assert!(
            o.contains("POST /api/login") && o.contains("new in this run (107 requests, p50 22ms"),
            "{o}"
        );
        assert!(
            o.contains("not in this run (the baseline had 12 requests)"),
            "{o}"
        );
        assert!(!o.contains("0µs →"), "no change from a latency of 0: {o}");
    }

    #[test]
    fn sizes_and_shares() {
        assert_eq!(bytes(1_234_567.0), "1.2 MB");
        assert_eq!(bytes(999.0), "999 B");
        assert_eq!(pct(0.01234), "1.23%");
    }
}
