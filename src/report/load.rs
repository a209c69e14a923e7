//! Reading a run directory back into [`Results`]: summary.json for what the
//! run was and how it was judged, histograms.json for every measurement,
//! exactly. `reprise report DIR` renders from this, through the same
//! exporters as the run itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::decode_histogram;
use super::files::HistFile;
use crate::config::UsageError;
use crate::metrics::{Class, Example, Key, KeyStats, Results, RunMeta, Tick};

#[derive(Deserialize)]
struct SummaryIn {
    schema: String,
    run: RunMeta,
    #[serde(default)]
    thresholds: Vec<crate::threshold::Verdict>,
    #[serde(default)]
    drill: Option<crate::drill::DrillReport>,
    #[serde(default)]
    comparison: Option<crate::threshold::Comparison>,
    #[serde(default)]
    errors: Vec<ErrorIn>,
}

#[derive(Deserialize)]
struct ErrorIn {
    kind: String,
    examples: Vec<(String, String)>,
}

/// The results saved in `dir` (by `--out`).
pub fn load(dir: &Path) -> Result<Results, UsageError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| {
            UsageError(format!(
                "{}: {e} (is {} a run directory written by --out?)",
                path.display(),
                dir.display()
            ))
        })
    };
    let json_err = |name: &str, e: serde_json::Error| {
        UsageError(format!(
            "{}:{}:{}: {e}",
            dir.join(name).display(),
            e.line(),
            e.column()
        ))
    };
    let summary: SummaryIn =
        serde_json::from_slice(&read("summary.json")?).map_err(|e| json_err("summary.json", e))?;
    if summary.schema != super::summary::SCHEMA {
        return Err(UsageError(format!(
            "{}: schema `{}`, this reprise reads `{}`",
            dir.join("summary.json").display(),
            summary.schema,
            super::summary::SCHEMA
        )));
    }
    let file: HistFile = serde_json::from_slice(&read("histograms.json")?)
        .map_err(|e| json_err("histograms.json", e))?;
    let bad = |what: &str, e: String| {
        UsageError(format!(
            "{}: {what}: {e}",
            dir.join("histograms.json").display()
        ))
    };
    let mut r = Results {
        meta: summary.run,
        counts: file.counts,
        thresholds: summary.thresholds,
        drill: summary.drill,
        comparison: summary.comparison,
        ..Results::default()
    };
    if file.elapsed_ns > 0 {
        r.meta.elapsed = Duration::from_nanos(file.elapsed_ns);
    }
    r.planned_sessions = file.planned_sessions;
    r.stages = file.stages_s;
    r.watch = file.watch;
    r.names.endpoints = file.endpoints;
    r.names.tenants = file.tenants;
    let mut metrics: BTreeMap<String, String> = file.metrics.into_iter().collect();
    for (name, h) in r.metrics.named_mut_by_name() {
        if let Some(enc) = metrics.remove(name) {
            *h = decode_histogram(&enc).map_err(|e| bad(name, e))?;
        }
    }
    let index = |names: &[String], n: &str, what: &str| {
        names
            .iter()
            .position(|x| x == n)
            .map(|i| i as u32)
            .ok_or_else(|| bad("keys", format!("{what} `{n}` is not listed")))
    };
    for k in file.keys {
        let key = Key {
            endpoint: index(&r.names.endpoints, &k.endpoint, "endpoint")?,
            tenant: index(&r.names.tenants, &k.tenant, "tenant")?,
            class: Class::from_name(&k.status)
                .ok_or_else(|| bad("keys", format!("status `{}`", k.status)))?,
        };
        r.keys.insert(
            key,
            KeyStats {
                requests: k.requests,
                bytes_received: k.bytes_received,
                duration: decode_histogram(&k.duration).map_err(|e| bad("keys", e))?,
                service: decode_histogram(&k.service_time).map_err(|e| bad("keys", e))?,
                ..KeyStats::new()
            },
        );
    }
    // A run lasts at most its length and the grace period after it; a
    // second far past that is damage, and would make every per-second
    // series that long.
    let last_second = r
        .meta
        .elapsed
        .max(Duration::from_secs(1))
        .min(crate::plan::limits::LENGTH * 2)
        .as_secs()
        + 1;
    for s in file.timeline {
        if s.second > last_second {
            return Err(bad(
                "timeline",
                format!(
                    "second {} is past the run's end ({} s)",
                    s.second,
                    r.meta.elapsed.as_secs()
                ),
            ));
        }
        let mut t = Tick::new(s.second);
        t.counts = s.counts;
        t.in_flight = s.in_flight;
        t.active_sessions = s.active_sessions;
        t.duration = decode_histogram(&s.duration).map_err(|e| bad("timeline", e))?;
        t.service = decode_histogram(&s.service_time).map_err(|e| bad("timeline", e))?;
        t.lag = decode_histogram(&s.generator_lag).map_err(|e| bad("timeline", e))?;
        r.timeline.add(t);
    }
    for (name, p, f) in file.checks {
        r.check_names.push(name);
        r.checks.push((p, f));
    }
    r.checks_cut = file.checks_cut;
    if let Some(a) = file.auth {
        r.auth = Some(crate::auth::AuthReport {
            kind: a.kind,
            identities: a.identities,
            duration: decode_histogram(&a.duration).map_err(|e| bad("auth", e))?,
            logins: a.logins,
            refreshes: a.refreshes,
            failures: a.failures,
            cut_short: a.cut_short,
            retries: a.retries,
            sessions_denied: a.sessions_denied,
            examples: a.examples,
        });
    }
    for e in summary.errors {
        for (endpoint, message) in e.examples {
            r.examples.push(Example {
                kind: e.kind.clone(),
                endpoint,
                message,
            });
        }
    }
    Ok(r)
}
