//! `reprise inspect`: what a model says, for people (text) and machines
//! (JSON). One [`Summary`] is computed and rendered either way.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::model::{Distribution, Model};
use crate::output::{human_duration, human_ms, percent, sparkline, thousands};

#[derive(Debug, Serialize)]
pub struct Summary {
    pub version: u32,
    pub start: String,
    pub end: String,
    pub span_ms: f64,
    pub requests: u64,
    pub sessions: u64,
    pub endpoints: usize,
    pub hosts: Vec<String>,
    pub sources: Vec<SourceLine>,
    pub filtered: BTreeMap<String, u64>,
    pub tenant_rules: Vec<String>,
    pub tenant_rules_automatic: bool,
    pub tenants: Vec<TenantLine>,
    pub arrivals: Arrivals,
    pub top_endpoints: Vec<EndpointLine>,
    pub top_shapes: Vec<ShapeLine>,
    pub redactions: Vec<RedactionLine>,
}

#[derive(Debug, Serialize)]
pub struct SourceLine {
    pub name: String,
    pub format: String,
    pub records: u64,
    pub accepted: u64,
    pub skipped: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub first_skips: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TenantLine {
    pub name: String,
    pub matched_by: Option<String>,
    pub sessions: u64,
    pub requests: u64,
    pub session_share: f64,
    pub request_share: f64,
    pub think_ms: Option<Quantiles>,
    pub session_length: Option<LengthStats>,
}

#[derive(Debug, Serialize)]
pub struct Quantiles {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl From<&Distribution> for Quantiles {
    fn from(d: &Distribution) -> Self {
        Quantiles {
            p10: d.p10,
            p50: d.p50,
            p90: d.p90,
            p99: d.p99,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LengthStats {
    pub median: u32,
    pub p90: u32,
    pub max: u32,
}

#[derive(Debug, Serialize)]
pub struct Arrivals {
    pub bucket_ms: u64,
    /// Sessions started per bucket, all tenants.
    pub sessions: Vec<u64>,
    pub peak_per_bucket: u64,
    pub mean_sessions_per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct EndpointLine {
    pub endpoint: String,
    pub requests: u64,
    pub share: f64,
    pub status: BTreeMap<String, u64>,
    pub latency_ms: Option<Quantiles>,
}

#[derive(Debug, Serialize)]
pub struct ShapeLine {
    pub tenant: String,
    pub sessions: u64,
    /// Share of the tenant's sessions.
    pub share: f64,
    pub steps: Vec<String>,
    pub truncated: bool,
}

#[derive(Debug, Serialize)]
pub struct RedactionLine {
    pub kind: String,
    pub name: String,
    pub count: u64,
}

fn lengths(m: &BTreeMap<u32, u64>) -> Option<LengthStats> {
    let total: u64 = m.values().sum();
    if total == 0 {
        return None;
    }
    let at = |q: f64| {
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (len, n) in m {
            seen += n;
            if seen >= want {
                return *len;
            }
        }
        *m.keys().last().expect("non-empty")
    };
    Some(LengthStats {
        median: at(0.5),
        p90: at(0.9),
        max: *m.keys().last().expect("non-empty"),
    })
}

pub fn summarise(model: &Model, top: usize) -> Summary {
    let c = &model.capture;
    let mut arrivals: Vec<u64> = Vec::new();
    let mut bucket_ms = c.requests_series.bucket_ms;
    for t in &model.tenants {
        bucket_ms = t.arrivals.bucket_ms;
        if arrivals.len() < t.arrivals.counts.len() {
            arrivals.resize(t.arrivals.counts.len(), 0);
        }
        for (i, n) in t.arrivals.counts.iter().enumerate() {
            arrivals[i] += n;
        }
    }
    let span_s = (arrivals.len() as f64 * bucket_ms as f64 / 1000.0).max(1.0);
    let mut endpoints: Vec<(usize, &crate::model::Endpoint)> =
        model.endpoints.iter().enumerate().collect();
    endpoints.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
    let name = |i: usize| {
        model
            .endpoints
            .get(i)
            .map_or_else(|| format!("#{i}"), |e| e.name())
    };
    let mut shapes: Vec<ShapeLine> = model
        .tenants
        .iter()
        .flat_map(|t| {
            t.shapes.iter().map(move |s| ShapeLine {
                tenant: t.name.clone(),
                sessions: s.sessions,
                share: s.sessions as f64 / t.sessions.max(1) as f64,
                steps: s.steps.iter().map(|&i| name(i)).collect(),
                truncated: s.truncated,
            })
        })
        .collect();
    shapes.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| a.tenant.cmp(&b.tenant))
    });
    shapes.truncate(top);
    let mut tenants: Vec<TenantLine> = model
        .tenants
        .iter()
        .map(|t| TenantLine {
            name: t.name.clone(),
            matched_by: t.matched_by.clone(),
            sessions: t.sessions,
            requests: t.requests,
            session_share: t.session_share,
            request_share: t.request_share,
            think_ms: t.think_ms.as_ref().map(Quantiles::from),
            session_length: lengths(&t.session_lengths),
        })
        .collect();
    tenants.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| a.name.cmp(&b.name))
    });
    Summary {
        version: model.version,
        start: c.start.to_rfc3339(),
        end: c.end.to_rfc3339(),
        span_ms: c.span.as_secs_f64() * 1000.0,
        requests: c.requests,
        sessions: c.sessions,
        endpoints: model.endpoints.len(),
        hosts: c.hosts.clone(),
        sources: c
            .sources
            .iter()
            .map(|s| SourceLine {
                name: s.name.clone(),
                format: s.format.clone(),
                records: s.records,
                accepted: s.accepted,
                skipped: s.skipped.values().sum(),
                skipped_by_reason: s.skipped.clone(),
                first_skips: s.first_skips.clone(),
            })
            .collect(),
        filtered: c.filtered.clone(),
        tenant_rules: model.settings.tenant_rules.clone(),
        tenant_rules_automatic: model.settings.tenant_rules_automatic,
        tenants,
        arrivals: Arrivals {
            bucket_ms,
            peak_per_bucket: arrivals.iter().copied().max().unwrap_or(0),
            mean_sessions_per_sec: c.sessions as f64 / span_s,
            sessions: arrivals,
        },
        top_endpoints: endpoints
            .iter()
            .take(top)
            .map(|(_, e)| EndpointLine {
                endpoint: e.name(),
                requests: e.requests,
                share: e.requests as f64 / c.requests.max(1) as f64,
                status: status_classes(&e.status),
                latency_ms: e.latency_ms.as_ref().map(Quantiles::from),
            })
            .collect(),
        top_shapes: shapes,
        redactions: model
            .redactions
            .iter()
            .map(|r| RedactionLine {
                kind: r.kind.clone(),
                name: r.name.clone(),
                count: r.count,
            })
            .collect(),
    }
}

fn status_classes(s: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (code, n) in s {
        let class = format!("{}xx", code.chars().next().unwrap_or('?'));
        *out.entry(class).or_default() += n;
    }
    out
}

/// The text rendering.
pub fn render(s: &Summary) -> String {
    let mut o = String::new();
    let span = std::time::Duration::from_secs_f64(s.span_ms / 1000.0);
    let _ = writeln!(
        o,
        "capture    {} → {} ({})",
        s.start,
        s.end,
        human_duration(span)
    );
    let _ = writeln!(
        o,
        "           {} requests, {} sessions, {} endpoints",
        thousands(s.requests),
        thousands(s.sessions),
        s.endpoints
    );
    if !s.hosts.is_empty() {
        let shown: Vec<&str> = s.hosts.iter().take(5).map(String::as_str).collect();
        let more = if s.hosts.len() > 5 {
            format!(" and {} more", s.hosts.len() - 5)
        } else {
            String::new()
        };
        let _ = writeln!(o, "hosts      {}{more}", shown.join(", "));
    }
    for src in &s.sources {
        let _ = writeln!(
            o,
            "source     {} ({}): {} records, {} accepted, {} skipped",
            src.name,
            src.format,
            thousands(src.records),
            thousands(src.accepted),
            thousands(src.skipped)
        );
        for (r, n) in &src.skipped_by_reason {
            let _ = writeln!(o, "             skipped {}: {r}", thousands(*n));
        }
    }
    for (r, n) in &s.filtered {
        let _ = writeln!(o, "filtered   {}: {r}", thousands(*n));
    }
    let how = if s.tenant_rules_automatic {
        " (rules chosen automatically)"
    } else {
        ""
    };
    if s.tenant_rules.is_empty() {
        let _ = writeln!(o, "\ntenants    no tenant rule: one default tenant{how}");
    } else {
        let _ = writeln!(o, "\ntenants    by {}{how}", s.tenant_rules.join(", "));
    }
    let w = s
        .tenants
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    for t in &s.tenants {
        let think = t.think_ms.as_ref().map_or("-".to_string(), |q| {
            format!("think p50 {} p90 {}", human_ms(q.p50), human_ms(q.p90))
        });
        let len = t.session_length.as_ref().map_or(String::new(), |l| {
            format!(", length median {} p90 {} max {}", l.median, l.p90, l.max)
        });
        let _ = writeln!(
            o,
            "  {:<w$}  {:>6} of sessions ({:>7})  {:>6} of requests ({:>8})  {think}{len}",
            t.name,
            format!("{:.1}%", t.session_share * 100.0),
            thousands(t.sessions),
            format!("{:.1}%", t.request_share * 100.0),
            thousands(t.requests),
        );
    }
    let a = &s.arrivals;
    let _ = writeln!(
        o,
        "\narrivals   sessions per {}: {} (peak {}, mean {:.3}/s)",
        human_duration(std::time::Duration::from_millis(a.bucket_ms)),
        sparkline(&a.sessions, 60),
        a.peak_per_bucket,
        a.mean_sessions_per_sec
    );
    let _ = writeln!(o, "\ntop endpoints");
    for e in &s.top_endpoints {
        let status: Vec<String> = e
            .status
            .iter()
            .map(|(c, n)| format!("{c} {}", percent(*n, e.requests)))
            .collect();
        let lat = e.latency_ms.as_ref().map_or(String::new(), |q| {
            format!("  p50 {} p99 {}", human_ms(q.p50), human_ms(q.p99))
        });
        let _ = writeln!(
            o,
            "  {:>8} {:>6}  {}  [{}]{lat}",
            thousands(e.requests),
            format!("{:.1}%", e.share * 100.0),
            e.endpoint,
            status.join(" ")
        );
    }
    let _ = writeln!(o, "\ntop session shapes");
    for sh in &s.top_shapes {
        let steps = if sh.steps.len() > 6 {
            format!(
                "{} → … ({} steps) → {}",
                sh.steps[..3].join(" → "),
                sh.steps.len(),
                sh.steps[sh.steps.len() - 1]
            )
        } else {
            sh.steps.join(" → ")
        };
        let more = if sh.truncated { " → …" } else { "" };
        let _ = writeln!(
            o,
            "  {:>7} {:>6} of {}: {steps}{more}",
            thousands(sh.sessions),
            format!("{:.1}%", sh.share * 100.0),
            sh.tenant
        );
    }
    if !s.redactions.is_empty() {
        let _ = writeln!(o, "\nredacted (never stored)");
        for r in &s.redactions {
            let _ = writeln!(o, "  {:>8}  {} {}", thousands(r.count), r.kind, r.name);
        }
    }
    o
}
