//! The computed summary of a run: what summary.json holds and what the
//! terminal shows. Its shape is committed in docs/summary.schema.json.

use hdrhistogram::{Counter, Histogram};
use serde::Serialize;

use crate::http::ErrorKind;
use crate::metrics::{Class, Key, Results, RunMeta, SmallHist, small_hist};
use crate::model::time::round3;

/// The version of summary.json's layout.
pub const SCHEMA: &str = "reprise.summary/1";

/// A distribution in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub count: u64,
    pub avg: f64,
    pub min: f64,
    pub med: f64,
    pub max: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Stats {
    /// From a histogram of microseconds. Quantiles are the histogram's
    /// representative values (within its precision of the exact ones).
    pub fn of<T: Counter>(h: &Histogram<T>) -> Stats {
        if h.is_empty() {
            return Stats::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        let q = |x: f64| ms(h.median_equivalent(h.value_at_quantile(x)));
        Stats {
            count: h.len(),
            avg: round3(h.mean() / 1000.0),
            min: ms(h.min()),
            med: q(0.5),
            max: ms(h.max()),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
        }
    }

    /// Kept within `run`'s range: a group's histogram (2 significant
    /// digits) can put its max at a bucket's upper edge, past the run-wide
    /// (3 digits) max, which no group can really exceed.
    fn within(mut self, run: &Stats) -> Stats {
        if run.count == 0 {
            return self;
        }
        for v in [
            &mut self.min,
            &mut self.med,
            &mut self.max,
            &mut self.p90,
            &mut self.p95,
            &mut self.p99,
            &mut self.p999,
            &mut self.avg,
        ] {
            *v = v.clamp(run.min, run.max);
        }
        self
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    pub name: &'static str,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Requests {
    pub total: u64,
    pub per_sec: f64,
    pub failed: u64,
    /// k6's `http_req_failed`: failed ÷ total.
    pub failed_rate: f64,
    /// Responses by status class (`none` for no response).
    pub by_class: Vec<(String, u64)>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// In flight when the run stopped: sent, never answered, not in `total`.
    pub cut_short: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sessions {
    pub started: u64,
    pub completed: u64,
    pub late: u64,
    pub dropped: u64,
    pub interrupted: u64,
    /// Arrivals with nothing to send (all left out by `--methods`).
    pub empty: u64,
}

/// A group of requests: one tenant, or one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    pub requests: u64,
    /// Of all requests.
    pub share: f64,
    pub failed: u64,
    pub failed_rate: f64,
    pub duration: Stats,
    pub service_time: Stats,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorGroup {
    /// refused, reset, timeout, tls, connect, protocol, 4xx, 5xx.
    pub kind: String,
    pub count: u64,
    /// A few of the first seen: endpoint and message.
    pub examples: Vec<(String, String)>,
}

/// What summary.json holds.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub schema: &'static str,
    pub run: RunMeta,
    pub requests: Requests,
    pub sessions: Sessions,
    /// Latency metrics by k6 name, in milliseconds.
    pub metrics: Vec<Metric>,
    pub tenants: Vec<Group>,
    /// Every endpoint that was sent, most requests first.
    pub endpoints: Vec<Group>,
    pub errors: Vec<ErrorGroup>,
    /// Auth traffic, when auth was configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSummary>,
    /// Every check with its passes and failures.
    pub checks: Vec<crate::check::CheckSummary>,
    /// Every threshold, judged.
    pub thresholds: Vec<crate::threshold::Verdict>,
    /// A drill's analysis (`reprise drill`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<crate::drill::DrillReport>,
    /// Against a baseline run (`--baseline DIR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<crate::threshold::Comparison>,
}

/// The token manager's traffic: its own group, never in the business
/// metrics.
#[derive(Clone, Debug, Serialize)]
pub struct AuthSummary {
    pub kind: &'static str,
    pub identities: usize,
    pub auth_req_duration: Stats,
    pub logins: u64,
    pub token_refreshes: u64,
    pub auth_failures: u64,
    /// Logins still waiting for an answer when the run ended.
    pub auth_cut_short: u64,
    pub auth_retries: u64,
    pub sessions_denied: u64,
    pub examples: Vec<String>,
}

impl Summary {
    pub fn of(r: &Results) -> Summary {
        let c = &r.counts;
        let secs = r.meta.elapsed.as_secs_f64().max(1e-9);
        let rate = |n: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                round6(n as f64 / of as f64)
            }
        };
        Summary {
            schema: SCHEMA,
            run: r.meta.clone(),
            requests: Requests {
                total: c.requests,
                per_sec: round3(c.requests as f64 / secs),
                failed: c.failed,
                failed_rate: rate(c.failed, c.requests),
                by_class: Class::ALL
                    .iter()
                    .filter(|k| c.class(**k) > 0)
                    .map(|k| (k.name().to_string(), c.class(*k)))
                    .collect(),
                bytes_received: c.bytes_received,
                bytes_sent: c.bytes_sent,
                cut_short: c.requests_cut,
            },
            sessions: Sessions {
                started: c.sessions_started,
                completed: c.sessions_completed,
                late: c.sessions_late,
                dropped: c.sessions_dropped,
                interrupted: c.sessions_interrupted,
                empty: c.sessions_empty,
            },
            metrics: r
                .metrics
                .named()
                .into_iter()
                .map(|(name, h)| Metric {
                    name,
                    stats: Stats::of(h),
                })
                .collect(),
            tenants: groups(r, |k| k.tenant as usize, &r.names.tenants),
            endpoints: groups(r, |k| k.endpoint as usize, &r.names.endpoints),
            errors: errors(r),
            auth: r.auth.as_ref().map(|a| AuthSummary {
                kind: a.kind.name(),
                identities: a.identities,
                auth_req_duration: Stats::of(&a.duration),
                logins: a.logins,
                token_refreshes: a.refreshes,
                auth_failures: a.failures,
                auth_cut_short: a.cut_short,
                auth_retries: a.retries,
                sessions_denied: a.sessions_denied,
                examples: a.examples.clone(),
            }),
            checks: crate::check::summarise(&r.check_names, &r.checks, &r.checks_cut),
            thresholds: r.thresholds.clone(),
            drill: r.drill.clone(),
            comparison: r.comparison.clone(),
        }
    }

    pub fn metric(&self, name: &str) -> Option<&Stats> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| &m.stats)
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Keys grouped by `by` (tenant or endpoint), most requests first.
fn groups(r: &Results, by: impl Fn(&Key) -> usize, names: &[String]) -> Vec<Group> {
    struct Acc {
        requests: u64,
        failed: u64,
        duration: SmallHist,
        service: SmallHist,
    }
    let mut acc: Vec<Option<Acc>> = (0..names.len()).map(|_| None).collect();
    for (k, s) in &r.keys {
        let Some(slot) = acc.get_mut(by(k)) else {
            continue;
        };
        let a = slot.get_or_insert_with(|| Acc {
            requests: 0,
            failed: 0,
            duration: small_hist(),
            service: small_hist(),
        });
        a.requests += s.requests;
        if k.class.failed() {
            a.failed += s.requests;
        }
        let _ = a.duration.add(&s.duration);
        let _ = a.service.add(&s.service);
    }
    let total = r.counts.requests.max(1) as f64;
    let (run_duration, run_service) = (
        Stats::of(&r.metrics.duration),
        Stats::of(&r.metrics.service),
    );
    let mut out: Vec<Group> = acc
        .into_iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let a = a?;
            Some(Group {
                name: names[i].clone(),
                requests: a.requests,
                share: round6(a.requests as f64 / total),
                failed: a.failed,
                failed_rate: round6(a.failed as f64 / a.requests.max(1) as f64),
                duration: Stats::of(&a.duration).within(&run_duration),
                service_time: Stats::of(&a.service).within(&run_service),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

fn errors(r: &Results) -> Vec<ErrorGroup> {
    let c = &r.counts;
    let kinds = ErrorKind::ALL
        .iter()
        .map(|k| (k.name(), c.error(*k)))
        .chain([
            ("4xx", c.class(Class::ClientError)),
            ("5xx", c.class(Class::ServerError)),
        ]);
    kinds
        .filter(|(_, n)| *n > 0)
        .map(|(kind, count)| ErrorGroup {
            kind: kind.to_string(),
            count,
            examples: r
                .examples
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| (e.endpoint.clone(), e.message.clone()))
                .collect(),
        })
        .collect()
}
