//! Live metrics during a run, for Grafana: a Prometheus scrape endpoint
//! (`--prometheus-listen`) and InfluxDB line protocol every second
//! (`--influx URL`, InfluxDB v2's write API, and/or `--influx-file FILE`).
//!
//! Fed once per complete second from the collector (the same ticks the
//! timeline is made of), off the workers' hot path. Labels are tenant,
//! endpoint and status class; cardinality is bounded: the most recorded
//! endpoints and tenants keep their names (`max_series` each), the rest are
//! `other`. The scrape server and the Influx writer run on a thread of
//! their own; a write that fails is counted and reported, never fatal.

use crate::background::Background;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::metrics::{Class, SmallHist, Tick, small_hist};

/// What live outputs to run.
#[derive(Clone, Debug, Default)]
pub struct LiveOptions {
    pub prometheus: Option<SocketAddr>,
    /// How long the final totals stay up for a last scrape.
    pub prometheus_linger: Duration,
    /// The write URL: `http://influx:8086/api/v2/write?org=ORG&bucket=BUCKET`.
    pub influx_url: Option<String>,
    /// From the INFLUX_TOKEN environment variable, never a flag.
    pub influx_token: Option<String>,
    pub influx_file: Option<PathBuf>,
    /// `--quiet`: no warnings about failed Influx writes (the address and
    /// the linger still show: a scraper needs them).
    pub quiet: bool,
}

impl LiveOptions {
    pub fn any(&self) -> bool {
        self.prometheus.is_some() || self.influx_url.is_some() || self.influx_file.is_some()
    }

    /// What a run would find wrong when it starts its outputs, found
    /// without starting them (a dry run): an Influx URL that is not one,
    /// an Influx file in a directory that is not there, a Prometheus
    /// address that cannot be bound (bound and let go at once).
    pub fn check(&self) -> Result<(), String> {
        if let Some(u) = &self.influx_url {
            influx_url_ok(u)?;
        }
        if let Some(p) = &self.influx_file {
            crate::output::file_place("--influx-file", p, false)?;
        }
        if let Some(a) = self.prometheus {
            drop(
                std::net::TcpListener::bind(a)
                    .map_err(|e| format!("--prometheus-listen {a}: {e}"))?,
            );
        }
        Ok(())
    }
}

/// An `--influx` URL that parses (named masked when it does not).
fn influx_url_ok(u: &str) -> Result<(), String> {
    let shown = || crate::model::redact::mask_url(u);
    let url = url::Url::parse(u).map_err(|e| format!("--influx {}: {e}", shown()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "--influx {}: InfluxDB's write API is http:// or https://",
            shown()
        ));
    }
    Ok(())
}

/// Series kept apart before the rest become `other`.
pub const MAX_SERIES: usize = 50;

/// Latency buckets of the Prometheus histogram, seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct State {
    /// (tenant label, endpoint label, class) → requests.
    requests: BTreeMap<(usize, usize, Class), u64>,
    /// The run's counters so far.
    counts: crate::metrics::Counts,
    in_flight: u64,
    active_sessions: u64,
    duration: Option<SmallHist>,
    last_p95_s: f64,
    last_lag_p99_s: f64,
    seconds: u64,
    influx_failures: u64,
    /// The run is over: these are the final totals.
    ended: bool,
    /// Scraped since they were final.
    final_scraped: bool,
}

/// The running live outputs.
pub struct Live {
    state: Arc<Mutex<State>>,
    tenants: Vec<String>,
    endpoints: Vec<String>,
    /// Plan/model index → label index.
    tenant_label: Vec<usize>,
    endpoint_label: Vec<usize>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    influx: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    epoch: SystemTime,
    thread: Option<Background>,
    /// Where the scrape endpoint listens (port 0 resolved).
    pub addr: Option<SocketAddr>,
    linger: Duration,
    pub quiet: bool,
}

/// Labels for the names weighed by `weights`: the heaviest `MAX_SERIES`
/// keep their name, the rest share `other`.
fn labels(names: &[String], weights: &[u64]) -> (Vec<String>, Vec<usize>) {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|a, b| weights[*b].cmp(&weights[*a]).then(a.cmp(b)));
    let mut label = vec![0; names.len()];
    let mut out = Vec::new();
    for (rank, i) in order.into_iter().enumerate() {
        if rank < MAX_SERIES {
            label[i] = out.len();
            out.push(names[i].clone());
        } else {
            if out.len() == MAX_SERIES {
                out.push("other".to_string());
            }
            label[i] = MAX_SERIES;
        }
    }
    (out, label)
}

impl Live {
    /// Starts the outputs. `tenants`/`endpoints` are the model's names with
    /// their recorded request counts (for the cardinality bound).
    pub fn start(
        opts: &LiveOptions,
        tenants: (&[String], &[u64]),
        endpoints: (&[String], &[u64]),
    ) -> Result<Live, String> {
        let (tenant_names, tenant_label) = labels(tenants.0, tenants.1);
        let (endpoint_names, endpoint_label) = labels(endpoints.0, endpoints.1);
        if let Some(u) = &opts.influx_url {
            influx_url_ok(u)?;
        }
        let file = match &opts.influx_file {
            Some(p) => Some(std::io::BufWriter::new(
                std::fs::File::create(p)
                    .map_err(|e| format!("--influx-file {}: {e}", p.display()))?,
            )),
            None => None,
        };
        let listener = match opts.prometheus {
            Some(a) => Some(
                std::net::TcpListener::bind(a)
                    .map_err(|e| format!("--prometheus-listen {a}: {e}"))?,
            ),
            None => None,
        };
        let addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let state = Arc::new(Mutex::new(State::default()));
        let (influx_tx, influx_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let needs_thread = listener.is_some() || opts.influx_url.is_some();
        let thread = if needs_thread {
            let shared = state.clone();
            let labels = (tenant_names.clone(), endpoint_names.clone());
            let influx = opts
                .influx_url
                .clone()
                .map(|u| (u, opts.influx_token.clone()));
            let quiet = opts.quiet;
            Some(
                Background::spawn("live metrics", move |stop| {
                    serve(listener, shared, labels, (influx, quiet), influx_rx, stop)
                })
                .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        Ok(Live {
            state,
            tenants: tenant_names,
            endpoints: endpoint_names,
            tenant_label,
            endpoint_label,
            file,
            influx: opts.influx_url.as_ref().map(|_| influx_tx),
            epoch: SystemTime::now(),
            thread,
            addr,
            linger: opts.prometheus_linger,
            quiet: opts.quiet,
        })
    }

    /// The wall-clock time of second 0 (for line protocol timestamps).
    pub fn begin(&mut self, epoch: SystemTime) {
        self.epoch = epoch;
    }

    /// The next second to feed.
    pub fn fed(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).seconds
    }

    /// Takes in one complete second.
    pub fn second(&mut self, t: &Tick) {
        // A second with nothing back has no latency: not a 0 that draws a
        // stalled target as a fast one.
        let ms = |h: &SmallHist, q: f64| {
            (!h.is_empty()).then(|| h.median_equivalent(h.value_at_quantile(q)) as f64 / 1000.0)
        };
        let mut per_key: BTreeMap<(usize, usize, Class), u64> = BTreeMap::new();
        for (k, n) in &t.keys {
            let tl = self
                .tenant_label
                .get(k.tenant as usize)
                .copied()
                .unwrap_or(0);
            let el = self
                .endpoint_label
                .get(k.endpoint as usize)
                .copied()
                .unwrap_or(0);
            *per_key.entry((tl, el, k.class)).or_default() += n;
        }
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            for (k, n) in &per_key {
                *s.requests.entry(*k).or_default() += n;
            }
            s.counts.merge(&t.counts);
            s.in_flight = t.in_flight;
            s.active_sessions = t.active_sessions;
            let _ = s.duration.get_or_insert_with(small_hist).add(&t.duration);
            s.last_p95_s = ms(&t.duration, 0.95).map_or(f64::NAN, |v| v / 1000.0);
            s.last_lag_p99_s = ms(&t.lag, 0.99).map_or(f64::NAN, |v| v / 1000.0);
            s.seconds = t.second + 1;
        }
        if self.file.is_none() && self.influx.is_none() {
            return;
        }
        let ts = self
            .epoch
            .checked_add(Duration::from_secs(t.second))
            .and_then(|w| w.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let c = &t.counts;
        // Line protocol leaves out a field with no value.
        let latencies: String = [
            ("p50_ms", ms(&t.duration, 0.5)),
            ("p95_ms", ms(&t.duration, 0.95)),
            ("p99_ms", ms(&t.duration, 0.99)),
            ("service_p99_ms", ms(&t.service, 0.99)),
            ("lag_p99_ms", ms(&t.lag, 0.99)),
        ]
        .iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name}={v},")))
        .collect();
        let mut lines = format!(
            "reprise requests={}i,failed={}i,{latencies}in_flight={}i,active_sessions={}i,sessions_started={}i,sessions_dropped={}i,checks_passed={}i,checks_failed={}i,status_4xx={}i,status_5xx={}i,refused={}i,reset={}i,timeout={}i {ts}\n",
            c.requests,
            c.failed,
            t.in_flight,
            t.active_sessions,
            c.sessions_started,
            c.sessions_dropped,
            c.checks_passed,
            c.checks_failed,
            c.class(Class::ClientError),
            c.class(Class::ServerError),
            c.errors[0],
            c.errors[1],
            c.errors[2],
        );
        for ((tl, el, class), n) in &per_key {
            lines.push_str(&format!(
                "reprise_requests,tenant={},endpoint={},status={} count={n}i {ts}\n",
                tag(&self.tenants[*tl]),
                tag(&self.endpoints[*el]),
                class.name()
            ));
        }
        if let Some(f) = &mut self.file {
            let _ = f.write_all(lines.as_bytes());
            let _ = f.flush();
        }
        if let Some(tx) = &self.influx {
            let _ = tx.send(lines);
        }
    }

    /// Flushes, waits (briefly) for the last Influx writes, keeps the
    /// final totals up until scraped (at most the linger; `stop` cuts it
    /// short: a Ctrl-C), stops the server. Returns how many Influx writes
    /// failed.
    pub fn finish(mut self, stop: impl Fn() -> bool) -> u64 {
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
        if let Some(addr) = self.addr
            && !self.linger.is_zero()
            && !stop()
        {
            self.state.lock().unwrap_or_else(|p| p.into_inner()).ended = true;
            crate::say!(
                "live metrics: the final totals stay on http://{addr}/metrics until scraped (at most {})",
                crate::output::human_duration(self.linger)
            );
            let until = std::time::Instant::now().checked_add(self.linger);
            while until.is_none_or(|u| std::time::Instant::now() < u)
                && !stop()
                && !self
                    .state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .final_scraped
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Closing the channel lets the writer drain and stop.
        self.influx = None;
        if let Some(t) = &mut self.thread {
            t.stop();
        }
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .influx_failures
    }
}

/// An Influx tag value: commas, spaces and `=` escaped.
fn tag(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ' ' | '=' | '\\') {
            out.push('\\');
        }
        if c != '\n' {
            out.push(c);
        }
    }
    if out.is_empty() { "none".into() } else { out }
}

/// A Prometheus label value.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn prometheus_text(s: &State, tenants: &[String], endpoints: &[String]) -> String {
    let mut o = String::new();
    o.push_str("# HELP reprise_requests_total Requests answered or failed, by tenant, endpoint and status class (none = no response).\n# TYPE reprise_requests_total counter\n");
    for ((t, e, c), n) in &s.requests {
        o.push_str(&format!(
            "reprise_requests_total{{tenant=\"{}\",endpoint=\"{}\",status=\"{}\"}} {n}\n",
            label(&tenants[*t]),
            label(&endpoints[*e]),
            c.name()
        ));
    }
    o.push_str("# HELP reprise_errors_total Requests with no response, by kind.\n# TYPE reprise_errors_total counter\n");
    for (i, k) in crate::http::ErrorKind::ALL.iter().enumerate() {
        o.push_str(&format!(
            "reprise_errors_total{{kind=\"{}\"}} {}\n",
            k.name(),
            s.counts.errors[i]
        ));
    }
    for (name, help, kind, v) in [
        (
            "reprise_requests_failed_total",
            "Requests with no response or a status of 400 or more.",
            "counter",
            s.counts.failed as f64,
        ),
        (
            "reprise_sessions_started_total",
            "Sessions started.",
            "counter",
            s.counts.sessions_started as f64,
        ),
        (
            "reprise_sessions_dropped_total",
            "Sessions not started: too many open (--max-sessions).",
            "counter",
            s.counts.sessions_dropped as f64,
        ),
        (
            "reprise_in_flight",
            "Requests in flight at the end of the last second.",
            "gauge",
            s.in_flight as f64,
        ),
        (
            "reprise_active_sessions",
            "Sessions open at the end of the last second.",
            "gauge",
            s.active_sessions as f64,
        ),
        (
            "reprise_http_req_duration_p95_seconds",
            "p95 of http_req_duration (from due time) over the last second; NaN when nothing came back in it.",
            "gauge",
            s.last_p95_s,
        ),
        (
            "reprise_generator_lag_p99_seconds",
            "p99 of generator lag over the last second; NaN when nothing was sent in it.",
            "gauge",
            s.last_lag_p99_s,
        ),
        (
            "reprise_seconds",
            "Seconds of the run complete.",
            "gauge",
            s.seconds as f64,
        ),
    ] {
        o.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        ));
    }
    o.push_str("# HELP reprise_checks_total Check results.\n# TYPE reprise_checks_total counter\n");
    o.push_str(&format!(
        "reprise_checks_total{{result=\"pass\"}} {}\nreprise_checks_total{{result=\"fail\"}} {}\n",
        s.counts.checks_passed, s.counts.checks_failed
    ));
    o.push_str("# HELP reprise_http_req_duration_seconds Latency from each request's due time (coordinated-omission safe).\n# TYPE reprise_http_req_duration_seconds histogram\n");
    let h = s.duration.clone().unwrap_or_else(small_hist);
    for le in BUCKETS {
        let upto = (le * 1e6) as u64;
        let n: u64 = if h.is_empty() {
            0
        } else {
            h.iter_recorded()
                .filter(|v| v.value_iterated_to() <= upto)
                .map(|v| v.count_at_value() as u64)
                .sum()
        };
        o.push_str(&format!(
            "reprise_http_req_duration_seconds_bucket{{le=\"{le}\"}} {n}\n"
        ));
    }
    o.push_str(&format!(
        "reprise_http_req_duration_seconds_bucket{{le=\"+Inf\"}} {}\nreprise_http_req_duration_seconds_sum {}\nreprise_http_req_duration_seconds_count {}\n",
        h.len(),
        h.mean() * h.len() as f64 / 1e6,
        h.len()
    ));
    o
}

/// The live thread: the scrape server and the Influx writer.
async fn serve(
    listener: Option<std::net::TcpListener>,
    state: Arc<Mutex<State>>,
    (tenants, endpoints): (Vec<String>, Vec<String>),
    (influx, quiet): (Option<(String, Option<String>)>, bool),
    mut lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let names = Arc::new((tenants, endpoints));
    let server = async {
        let Some(l) = listener else {
            return std::future::pending::<()>().await;
        };
        let _ = l.set_nonblocking(true);
        let Ok(l) = tokio::net::TcpListener::from_std(l) else {
            return;
        };
        loop {
            let Ok((stream, _)) = l.accept().await else {
                continue;
            };
            let (state, names) = (state.clone(), names.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (state, names) = (state.clone(), names.clone());
                        async move {
                            let (status, body) = if req.uri().path() == "/metrics" {
                                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                                s.final_scraped |= s.ended;
                                (200, prometheus_text(&s, &names.0, &names.1))
                            } else {
                                (404, "reprise serves /metrics\n".to_string())
                            };
                            let mut r = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from(body),
                            ));
                            *r.status_mut() =
                                hyper::StatusCode::from_u16(status).unwrap_or_default();
                            r.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static(
                                    "text/plain; version=0.0.4; charset=utf-8",
                                ),
                            );
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    };
    let writer = async {
        let Some((url, token)) = influx else {
            // Nothing to write: wait for the channel to close.
            while lines.recv().await.is_some() {}
            return;
        };
        let client = crate::auth::HttpLogin {
            tls: crate::http::tls_config(false, &[b"http/1.1"]).ok(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        };
        let Ok(parsed) = url::Url::parse(&url) else {
            return;
        };
        let mut warned = false;
        while let Some(mut body) = lines.recv().await {
            // Every second queued while the last write was out goes in
            // this one: a slow or stalled InfluxDB costs one write per 5 s
            // timeout, not a backlog that grows by a second every second.
            while let Ok(more) = lines.try_recv() {
                body.push_str(&more);
            }
            let mut headers = vec![(
                "content-type".to_string(),
                "text/plain; charset=utf-8".to_string(),
            )];
            if let Some(t) = &token {
                headers.push(("authorization".to_string(), format!("Token {t}")));
            }
            let req = crate::auth::LoginRequest {
                method: "POST".into(),
                url: parsed.clone(),
                headers,
                body: Some(body.into_bytes()),
            };
            let ok = matches!(
                crate::auth::LoginTransport::send(&client, req).await,
                Ok(r) if (200..300).contains(&r.status)
            );
            if !ok {
                state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .influx_failures += 1;
                if !warned && !quiet {
                    crate::say!(
                        "warning: --influx: a write to {} failed; the run goes on",
                        parsed.host_str().unwrap_or("?")
                    );
                    warned = true;
                }
            }
        }
    };
    let writer_then_stop = async {
        tokio::pin!(writer);
        tokio::select! {
            _ = &mut writer => {
                let _ = stop.await;
            }
            _ = &mut stop => {
                // The run is over: the last write gets a moment, not the
                // full timeout, so a stalled InfluxDB cannot hold back the
                // results (or a pod's stop) by more than that.
                if tokio::time::timeout(FINAL_WRITE, &mut writer).await.is_err() {
                    state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .influx_failures += 1;
                }
            }
        }
    };
    tokio::select! {
        _ = server => {}
        _ = writer_then_stop => {}
    }
}

/// How long the Influx writer may go on after the run to send what is left.
const FINAL_WRITE: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinality_is_bounded() {
        let names: Vec<String> = (0..120).map(|i| format!("GET /e{i}")).collect();
        let weights: Vec<u64> = (0..120).map(|i| i as u64).collect();
        let (labels, map) = labels(&names, &weights);
        assert_eq!(labels.len(), MAX_SERIES + 1);
        assert_eq!(labels[0], "GET /e119", "the heaviest first");
        assert_eq!(labels[MAX_SERIES], "other");
        assert_eq!(map[0], MAX_SERIES, "a light one is other");
        assert_eq!(labels[map[119]], "GET /e119");
    }

    #[test]
    fn escaping() {
        assert_eq!(tag("GET /a b,c=d"), "GET\\ /a\\ b\\,c\\=d");
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
