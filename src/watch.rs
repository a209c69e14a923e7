//! The target's own metrics beside latency: `--watch NAME=URL` scrapes a
//! Prometheus endpoint of the target (or of its exporters: node, postgres,
//! the Go runtime) every few seconds during the run and keeps the series
//! named by `--watch-metric` (globs), so the report draws them on the same
//! time axis as latency and errors. Counters become per-second rates.
//!
//! A scrape that fails is counted and the run goes on: the target being
//! overloaded is exactly when its metrics endpoint may be slow.

use crate::background::Background;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{HttpLogin, LoginRequest, LoginTransport};

/// Series kept per watched endpoint (the first matching ones).
pub const MAX_SERIES: usize = 30;

/// `--watch NAME=URL`.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchTarget {
    pub name: String,
    pub url: url::Url,
}

impl std::str::FromStr for WatchTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<WatchTarget, String> {
        let said = crate::model::redact::mask_url(s);
        let (name, url) = s.split_once('=').ok_or_else(|| {
            format!("`{said}`: expected NAME=URL, like db=http://10.0.0.5:9187/metrics")
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{said}`: the name is empty"));
        }
        if name.contains([':', '/', '?']) {
            // A URL without a name (whose query held the first `=`).
            return Err(format!(
                "`{said}`: expected NAME=URL, like db=http://10.0.0.5:9187/metrics"
            ));
        }
        let shown = crate::model::redact::mask_url(url.trim());
        let url = url::Url::parse(url.trim()).map_err(|e| format!("`{shown}`: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{shown}`: an http or https URL"));
        }
        Ok(WatchTarget {
            name: name.to_string(),
            url,
        })
    }
}

/// What to watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    pub targets: Vec<WatchTarget>,
    /// Metric name globs (`go_sql_*`); none: every series (up to the cap).
    pub metrics: Vec<String>,
    pub every: Duration,
}

/// One watched series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// `name{labels}` as the endpoint wrote it.
    pub metric: String,
    /// A counter, shown as its rate per second.
    pub rate: bool,
    /// One value per scrape time of its target (null: missing then).
    pub values: Vec<Option<f64>>,
}

/// One watched endpoint's samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Watched {
    pub name: String,
    pub url: String,
    /// Scrape times, seconds into the run.
    pub times: Vec<f64>,
    pub series: Vec<Series>,
    pub scrapes_failed: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// `*` matches any run of characters.
pub fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Prometheus text format: (series as written, metric name, value) per
/// sample line, and the names declared counters.
pub fn parse(text: &str) -> (Vec<(String, String, f64)>, Vec<String>) {
    let mut samples = Vec::new();
    let mut counters = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(name), Some("counter")) = (it.next(), it.next()) {
                counters.push(name.to_string());
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The series ends at the closing brace (label values may hold
        // spaces) or at the first space.
        let end = match line.find('{') {
            Some(open) => {
                let mut in_quotes = false;
                let mut escaped = false;
                let mut close = None;
                for (i, c) in line[open..].char_indices() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => in_quotes = !in_quotes,
                        '}' if !in_quotes => {
                            close = Some(open + i + 1);
                            break;
                        }
                        _ => {}
                    }
                }
                match close {
                    Some(c) => c,
                    None => continue,
                }
            }
            None => match line.find(char::is_whitespace) {
                Some(i) => i,
                None => continue,
            },
        };
        let series = &line[..end];
        let name = series.split('{').next().unwrap_or(series);
        let Some(value) = line[end..].split_whitespace().next() else {
            continue;
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse::<f64>() {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        if value.is_finite() {
            samples.push((series.to_string(), name.to_string(), value));
        }
    }
    (samples, counters)
}

#[derive(Default)]
struct Raw {
    times: Vec<f64>,
    /// series → (is counter, value per scrape).
    series: BTreeMap<String, (bool, Vec<Option<f64>>)>,
    order: Vec<String>,
    failed: u64,
    last_error: Option<String>,
}

/// The scraping thread.
pub struct WatchRun {
    raw: Vec<Arc<Mutex<Raw>>>,
    targets: Vec<WatchTarget>,
    thread: Option<Background>,
}

impl WatchRun {
    /// Starts scraping now; times are measured from `epoch`.
    pub fn start(opts: &WatchOptions, epoch: std::time::Instant) -> WatchRun {
        let raw: Vec<Arc<Mutex<Raw>>> = opts
            .targets
            .iter()
            .map(|_| Arc::new(Mutex::new(Raw::default())))
            .collect();
        let (targets, patterns, every, shared) = (
            opts.targets.clone(),
            opts.metrics.clone(),
            opts.every.max(Duration::from_millis(100)),
            raw.clone(),
        );
        let thread = Background::spawn("watch", move |mut stop_rx| async move {
            let client = HttpLogin {
                tls: crate::http::tls_config(false, &[b"http/1.1"]).ok(),
                timeout: every.min(Duration::from_secs(5)),
                connect_timeout: Duration::from_secs(2),
            };
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stop_rx => return,
                }
                let at = epoch.elapsed().as_secs_f64();
                let scrapes = targets.iter().map(|t| {
                    let mut headers = vec![("accept".into(), "text/plain".into())];
                    // `http://user:password@host/metrics`: basic auth, as
                    // Prometheus' own scrape config would send it.
                    headers.extend(
                        crate::http::basic_auth(&t.url).map(|b| ("authorization".into(), b)),
                    );
                    client.send(LoginRequest {
                        method: "GET".into(),
                        url: t.url.clone(),
                        headers,
                        body: None,
                    })
                });
                let answers = futures_join_all(scrapes).await;
                for (i, a) in answers.into_iter().enumerate() {
                    let mut r = shared[i].lock().unwrap_or_else(|p| p.into_inner());
                    record(&mut r, at, a, &patterns);
                }
            }
        })
        .ok();
        WatchRun {
            raw,
            targets: opts.targets.clone(),
            thread,
        }
    }

    /// Stops and returns what was watched.
    pub fn finish(mut self) -> Vec<Watched> {
        if let Some(t) = &mut self.thread {
            t.stop();
        }
        self.targets
            .iter()
            .zip(&self.raw)
            .map(|(t, raw)| {
                let r = raw.lock().unwrap_or_else(|p| p.into_inner());
                let series = r
                    .order
                    .iter()
                    .filter_map(|name| {
                        let (counter, values) = r.series.get(name)?;
                        let values = if *counter {
                            rates(&r.times, values)
                        } else {
                            values.clone()
                        };
                        Some(Series {
                            metric: name.clone(),
                            rate: *counter,
                            values,
                        })
                    })
                    .collect();
                Watched {
                    name: t.name.clone(),
                    // Never a password in results.
                    url: crate::model::redact::mask_url(t.url.as_str()),
                    times: r
                        .times
                        .iter()
                        .map(|x| (x * 1000.0).round() / 1000.0)
                        .collect(),
                    series,
                    scrapes_failed: r.failed,
                    last_error: r.last_error.clone(),
                }
            })
            .collect()
    }
}

/// Runs the scrapes at once (each has its own timeout) and returns their
/// answers in order.
async fn futures_join_all(
    fs: impl Iterator<Item = crate::auth::login::LoginFuture>,
) -> Vec<Result<crate::auth::LoginResponse, String>> {
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

fn record(
    r: &mut Raw,
    at: f64,
    answer: Result<crate::auth::LoginResponse, String>,
    patterns: &[String],
) {
    let text = match answer {
        Ok(a) if (200..300).contains(&a.status) => String::from_utf8_lossy(&a.body).into_owned(),
        Ok(a) => {
            r.failed += 1;
            r.last_error = Some(format!("status {}", a.status));
            return;
        }
        Err(e) => {
            r.failed += 1;
            r.last_error = Some(e);
            return;
        }
    };
    let (samples, counters) = parse(&text);
    let slot = r.times.len();
    r.times.push(at);
    for (series, name, value) in samples {
        if !patterns.is_empty() && !patterns.iter().any(|p| glob(p, &name)) {
            continue;
        }
        if !r.series.contains_key(&series) {
            if r.series.len() >= MAX_SERIES {
                continue;
            }
            let counter = counters.contains(&name) || name.ends_with("_total");
            r.series.insert(series.clone(), (counter, Vec::new()));
            r.order.push(series.clone());
        }
        if let Some((_, values)) = r.series.get_mut(&series) {
            values.resize(slot, None);
            values.push(Some(value));
        }
    }
    for (_, values) in r.series.values_mut() {
        values.resize(slot + 1, None);
    }
}

/// A counter's samples → its rate per second between scrapes (a reset,
/// where the counter went down, leaves a gap).
fn rates(times: &[f64], values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    for i in 1..values.len() {
        if let (Some(a), Some(b)) = (values[i - 1], values[i]) {
            let dt = times[i] - times[i - 1];
            if b >= a && dt > 0.0 {
                out[i] = Some(((b - a) / dt * 1000.0).round() / 1000.0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_is_read() {
        let (s, counters) = parse(
            "# HELP x y\n# TYPE demo_requests_total counter\ndemo_requests_total{route=\"a b\",status=\"200\"} 12\ngo_goroutines 8 1700000000000\nbad line\nnan_metric NaN\nq{le=\"+Inf\"} +Inf\n",
        );
        assert_eq!(counters, vec!["demo_requests_total"]);
        assert_eq!(
            s,
            vec![
                (
                    "demo_requests_total{route=\"a b\",status=\"200\"}".to_string(),
                    "demo_requests_total".to_string(),
                    12.0
                ),
                (
                    "go_goroutines".to_string(),
                    "go_goroutines".to_string(),
                    8.0
                ),
            ]
        );
    }

    #[test]
    fn globs() {
        assert!(glob("go_sql_*", "go_sql_open_connections"));
        assert!(glob("*_connections", "go_sql_open_connections"));
        assert!(glob("go_*_open_*", "go_sql_open_connections"));
        assert!(!glob("go_sql_*", "pg_up"));
        assert!(glob("pg_up", "pg_up") && !glob("pg_up", "pg_upx"));
    }

    #[test]
    fn counters_become_rates_and_resets_leave_gaps() {
        let r = rates(
            &[0.0, 1.0, 2.0, 4.0, 5.0],
            &[Some(10.0), Some(30.0), None, Some(50.0), Some(5.0)],
        );
        assert_eq!(r, vec![None, Some(20.0), None, None, None]);
    }

    #[test]
    fn targets_parse() {
        let t: WatchTarget = "db=http://10.0.0.5:9187/metrics".parse().unwrap();
        assert_eq!(t.name, "db");
        assert!("http://x".parse::<WatchTarget>().is_err());
        assert!("x=ftp://y".parse::<WatchTarget>().is_err());
        assert!("=http://y".parse::<WatchTarget>().is_err());
    }
}
