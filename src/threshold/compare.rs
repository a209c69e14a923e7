//! Comparing a run with a baseline run: every latency distribution side by
//! side (quantiles, and the Kolmogorov–Smirnov distance between the two
//! HDR histograms, so a shift anywhere in the distribution shows, not only
//! in the mean), error rates and throughput, per metric, tenant and
//! endpoint; and `--max-regression` limits that fail the run (exit 99).

use hdrhistogram::{Counter, Histogram};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::parse::Agg;
use super::parse::{Threshold, parse_selector};
use super::{Verdict, observe, unit};
use crate::metrics::{Results, SmallHist, small_hist};

/// A limit on how much worse than the baseline a value may get:
/// `http_req_duration: p(95)+10%`, `http_req_failed: rate+0.01`,
/// `http_reqs: rate-5%`.
#[derive(Clone, Debug, PartialEq)]
pub struct Regression {
    pub source: String,
    /// The metric, tags and aggregation to compare (op and bound unused).
    pub what: Threshold,
    /// Up (`+`: must not rise by more) or down (`-`: must not fall by more).
    pub up: bool,
    /// Relative (`10%` → 0.1) or absolute (in the metric's unit).
    pub relative: bool,
    pub amount: f64,
}

/// Parses `--max-regression`.
pub fn parse_regression(input: &str) -> Result<Regression, String> {
    let err = |m: String| format!("--max-regression `{input}`: {m}");
    let (sel, rest) = split_selector(input).ok_or_else(|| {
        err(
            "expected METRIC[{tags}]: AGGREGATION+LIMIT, like `http_req_duration: p(95)+10%`"
                .into(),
        )
    })?;
    let (metric, tags) = parse_selector(sel.trim()).map_err(|e| err(e.message))?;
    let rest = rest.trim();
    let sign_at = rest
        .rfind(['+', '-'])
        .filter(|i| *i > 0)
        .ok_or_else(|| err("expected `+` or `-` and a limit after the aggregation".into()))?;
    let (agg_text, limit) = rest.split_at(sign_at);
    let up = limit.starts_with('+');
    let limit = limit[1..].trim();
    let relative = limit.ends_with('%');
    // Reuse the threshold parser for the aggregation and an absolute
    // limit's unit. A relative limit is a share of the baseline's value,
    // whatever the metric's range (`rate+50%` on a failure rate), so it is
    // not checked as a value of the metric.
    let probe = if relative {
        format!("{agg_text}<0")
    } else {
        format!("{agg_text}<{limit}")
    };
    let what = super::parse::parse_expression(&probe, metric, &tags).map_err(|e| err(e.message))?;
    if what.window.is_some() {
        return Err(err("regressions compare whole runs: no `over`".into()));
    }
    let amount = if relative {
        limit
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
            .map_err(|_| err(format!("`{limit}` is not a percentage")))?
            / 100.0
    } else {
        what.bound
    };
    if !(amount.is_finite() && amount >= 0.0) {
        return Err(err("the limit is zero or more".into()));
    }
    let source = format!(
        "{}: {}{}{}",
        super::parse::selector_text(metric, &tags),
        agg_text.trim(),
        if up { "+" } else { "-" },
        limit
    );
    Ok(Regression {
        source,
        what,
        up,
        relative,
        amount,
    })
}

/// Splits `metric{tags}: rest` at the colon outside the braces.
fn split_selector(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Judges a regression limit: the current value against the baseline's.
pub fn judge_regression(g: &Regression, current: &Results, baseline: &Results) -> Verdict {
    let now = observe(&g.what, current);
    let then = observe(&g.what, baseline);
    let (ok, note) = match (now, then) {
        (Some(a), Some(b)) => {
            let allowed = if g.relative {
                b.abs() * g.amount
            } else {
                g.amount
            };
            let change = a - b;
            let ok = if g.up {
                change <= allowed + 1e-12
            } else {
                -change <= allowed + 1e-12
            };
            let rel = if b != 0.0 {
                format!(" ({:+.1}%)", change / b * 100.0)
            } else {
                String::new()
            };
            let u = unit(&g.what);
            (
                ok,
                Some(format!(
                    "baseline {}{u}, now {}{u}: {:+}{u}{rel}",
                    round(b),
                    round(a),
                    round(change)
                )),
            )
        }
        (None, _) => (false, Some("no data in this run".into())),
        (_, None) => (false, Some("no data in the baseline".into())),
    };
    Verdict {
        threshold: format!("{REGRESSION}{}", g.source),
        ok,
        observed: now.map(round),
        unit: unit(&g.what).to_string(),
        windows: None,
        abort_on_fail: false,
        agg: g.what.agg.to_string(),
        note,
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// One distribution, then and now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistChange {
    pub name: String,
    pub count: (u64, u64),
    /// (baseline, now) in milliseconds.
    pub p50: (f64, f64),
    pub p90: (f64, f64),
    pub p95: (f64, f64),
    pub p99: (f64, f64),
    pub max: (f64, f64),
    /// Largest difference between the two cumulative distributions (0 =
    /// the same shape, 1 = no overlap).
    pub ks: f64,
    /// Error rate (baseline, now), for groups.
    pub error_rate: Option<(f64, f64)>,
}

/// How a regression limit's verdict is named among the thresholds.
pub const REGRESSION: &str = "regression ";

/// A run against its baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline run's directory and when it ran.
    pub baseline: String,
    pub baseline_start: String,
    /// Requests per second (baseline, now).
    pub rate: (f64, f64),
    pub error_rate: (f64, f64),
    pub metrics: Vec<DistChange>,
    pub tenants: Vec<DistChange>,
    pub endpoints: Vec<DistChange>,
}

fn q<T: Counter>(h: &Histogram<T>, p: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        round(h.median_equivalent(h.value_at_quantile(p)) as f64 / 1000.0)
    }
}

/// The Kolmogorov–Smirnov distance between two HDR histograms.
pub fn ks<A: Counter, B: Counter>(a: &Histogram<A>, b: &Histogram<B>) -> f64 {
    if a.is_empty() || b.is_empty() {
        return if a.is_empty() && b.is_empty() {
            0.0
        } else {
            1.0
        };
    }
    // Walk both histograms' recorded values in order, tracking each CDF.
    let mut va: Vec<(u64, u64)> = a
        .iter_recorded()
        .map(|v| {
            (
                a.highest_equivalent(v.value_iterated_to()),
                v.count_at_value().as_u64(),
            )
        })
        .collect();
    let mut vb: Vec<(u64, u64)> = b
        .iter_recorded()
        .map(|v| {
            (
                b.highest_equivalent(v.value_iterated_to()),
                v.count_at_value().as_u64(),
            )
        })
        .collect();
    va.sort_unstable();
    vb.sort_unstable();
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let (mut ca, mut cb) = (0u64, 0u64);
    let mut d: f64 = 0.0;
    while i < va.len() || j < vb.len() {
        let x = match (va.get(i), vb.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => break,
        };
        while i < va.len() && va[i].0 == x {
            ca += va[i].1;
            i += 1;
        }
        while j < vb.len() && vb[j].0 == x {
            cb += vb[j].1;
            j += 1;
        }
        d = d.max((ca as f64 / na - cb as f64 / nb).abs());
    }
    round(d)
}

fn change<A: Counter, B: Counter>(
    name: &str,
    then: &Histogram<A>,
    now: &Histogram<B>,
) -> DistChange {
    DistChange {
        name: name.to_string(),
        count: (then.len(), now.len()),
        p50: (q(then, 0.5), q(now, 0.5)),
        p90: (q(then, 0.9), q(now, 0.9)),
        p95: (q(then, 0.95), q(now, 0.95)),
        p99: (q(then, 0.99), q(now, 0.99)),
        max: (q(then, 1.0), q(now, 1.0)),
        ks: ks(then, now),
        error_rate: None,
    }
}

/// Per group (tenant or endpoint name): merged duration histogram and
/// (failed, requests).
fn groups(
    r: &Results,
    by_tenant: bool,
) -> std::collections::BTreeMap<String, (SmallHist, u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for (k, s) in &r.keys {
        let names = if by_tenant {
            &r.names.tenants
        } else {
            &r.names.endpoints
        };
        let i = if by_tenant { k.tenant } else { k.endpoint } as usize;
        let name = names.get(i).cloned().unwrap_or_default();
        let e = out
            .entry(name)
            .or_insert_with(|| (small_hist(), 0u64, 0u64));
        let _ = e.0.add(&s.duration);
        if k.class.failed() {
            e.1 += s.requests;
        }
        e.2 += s.requests;
    }
    out
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        (n as f64 / d as f64 * 1e6).round() / 1e6
    }
}

/// Compares `now` with `then` (the baseline in `baseline_dir`).
pub fn compare(now: &Results, then: &Results, baseline_dir: &str) -> Comparison {
    let per_sec =
        |r: &Results| round(r.counts.requests as f64 / r.meta.elapsed.as_secs_f64().max(1e-9));
    let metrics = now
        .metrics
        .named()
        .into_iter()
        .zip(then.metrics.named())
        .filter(|((_, a), (_, b))| !(a.is_empty() && b.is_empty()))
        .map(|((name, a), (_, b))| change(name, b, a))
        .collect();
    let group_changes = |by_tenant: bool| {
        let (a, b) = (groups(now, by_tenant), groups(then, by_tenant));
        let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
        names.sort();
        names.dedup();
        let empty = (small_hist(), 0, 0);
        names
            .into_iter()
            .map(|n| {
                let x = a.get(n).unwrap_or(&empty);
                let y = b.get(n).unwrap_or(&empty);
                let mut c = change(n, &y.0, &x.0);
                c.error_rate = Some((ratio(y.1, y.2), ratio(x.1, x.2)));
                c
            })
            .collect::<Vec<_>>()
    };
    Comparison {
        baseline: baseline_dir.to_string(),
        baseline_start: then.meta.start.clone(),
        rate: (per_sec(then), per_sec(now)),
        error_rate: (
            ratio(then.counts.failed, then.counts.requests),
            ratio(now.counts.failed, now.counts.requests),
        ),
        metrics,
        tenants: group_changes(true),
        endpoints: group_changes(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_limits_parse() {
        let g = parse_regression("http_req_duration: p(95)+10%").unwrap();
        assert!(g.up && g.relative && (g.amount - 0.1).abs() < 1e-12);
        assert_eq!(g.what.agg, Agg::P(95.0));
        let g = parse_regression("http_req_failed{tenant:acme}: rate+0.01").unwrap();
        assert!(!g.relative && g.amount == 0.01);
        assert_eq!(g.source, "http_req_failed{tenant:acme}: rate+0.01");
        let g = parse_regression("http_reqs: rate-5%").unwrap();
        assert!(!g.up);
        // Relative limits on rates are shares of the baseline's rate, not
        // rates themselves: past 100% too.
        let g = parse_regression("http_req_failed: rate+50%").unwrap();
        assert!(g.up && g.relative && (g.amount - 0.5).abs() < 1e-12);
        let g = parse_regression("checks: rate-10%").unwrap();
        assert!(!g.up && g.relative && (g.amount - 0.1).abs() < 1e-12);
        assert!(parse_regression("http_req_failed: rate+200%").is_ok());
        // An absolute rise of a rate is still a rate.
        assert!(parse_regression("http_req_failed: rate+2").is_err());
        let g = parse_regression("http_req_duration: p(99)+50ms").unwrap();
        assert_eq!(g.amount, 50.0);
        assert!(parse_regression("http_req_duration p(95)+10%").is_err());
        assert!(
            parse_regression("http_req_durtion: p(95)+10%")
                .unwrap_err()
                .contains("unknown metric")
        );
        assert!(parse_regression("http_req_duration: p(95)").is_err());
        assert!(parse_regression("http_req_duration: p(95)+10% over 1m").is_err());
    }

    #[test]
    fn ks_distance() {
        let mut a = small_hist();
        let mut b = small_hist();
        for v in 1..=1000u64 {
            a.record(v * 100).unwrap();
            b.record(v * 100).unwrap();
        }
        assert_eq!(ks(&a, &b), 0.0);
        let mut c = small_hist();
        for v in 1..=1000u64 {
            c.record(v * 100 + 50_000).unwrap();
        }
        // Shifted by half the range: the CDFs differ by about a half.
        assert!((0.45..=0.55).contains(&ks(&a, &c)), "{}", ks(&a, &c));
        let mut far = small_hist();
        far.record(10_000_000).unwrap();
        assert_eq!(ks(&a, &far), 1.0);
    }
}
