//! The command line: commands and flags. Doc comments are the help text.
//!
//! Values are parsed here, at the boundary (durations, rules, formats), so a
//! mistake is a usage error naming the flag, never a silent default.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::capture::Format;
use crate::capture::access_log::LogFormat;
use crate::capture::access_log::json::FieldMap;
use crate::model::identity::{SessionKeyRule, TenantRule};
use crate::model::template::SlotRule;

/// reprise replays production-shaped HTTP traffic against staging.
#[derive(Debug, Parser)]
#[command(name = "reprise", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read recorded traffic (HAR, access logs, packet captures) and build a
    /// model of it.
    Import(Box<ImportArgs>),
    /// Summarise a model: tenants, endpoints, sessions, arrivals, think times.
    Inspect(InspectArgs),
    /// Drive a model against a target: sessions arrive on schedule (open
    /// workload), latency is measured from when each request was due.
    Replay(Box<ReplayCommand>),
    /// Run the built-in demo target: a small multi-tenant API with a limited
    /// worker pool, to replay against.
    DemoTarget(DemoTargetArgs),
    /// The whole product in one command: starts the demo target, imports the
    /// bundled capture, replays it with a ramp and a spike, shows the summary.
    Demo(DemoArgs),
    /// Drills: `reprise drill spike MODEL --target URL --spike 5` measures
    /// how long the target takes to recover from a spike.
    Drill(DrillArgs),
    /// Re-render a saved run (`--out DIR`) without re-running it: the
    /// terminal summary (or JSON with --json), and JUnit and HTML files.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory written by `replay --out`, `drill --out` or `demo --out`.
    pub dir: PathBuf,

    /// Print summary.json instead of the terminal summary.
    #[arg(long)]
    pub json: bool,

    /// Write a JUnit XML report here: a testcase per threshold and check.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write the HTML report here: charts over time, tables, the run.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Compare with this earlier run directory.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,

    /// How much worse than the baseline is allowed, else exit 99 (see
    /// `replay --help`). Needs --baseline.
    #[arg(long = "max-regression", value_name = "EXPR", value_parser = parse_regression, requires = "baseline")]
    pub max_regressions: Vec<crate::threshold::Regression>,

    /// Endpoints listed in the terminal summary.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
}

/// `reprise replay`: the run, and what to compare it with.
#[derive(Debug, Args)]
pub struct ReplayCommand {
    #[command(flatten)]
    pub run: ReplayArgs,
    #[command(flatten)]
    pub compare: CompareArgs,
}

/// Comparing a run with a baseline run.
#[derive(Debug, Args, Default)]
pub struct CompareArgs {
    /// Compare with this earlier run (its --out directory): distributions,
    /// error rates and throughput per metric, tenant and endpoint.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,

    /// How much worse than the baseline is allowed, else exit 99:
    /// `http_req_duration: p(95)+10%`, `http_req_failed: rate+0.01`,
    /// `http_reqs: rate-5%`. Repeatable; needs --baseline.
    #[arg(long = "max-regression", value_name = "EXPR", value_parser = parse_regression, requires = "baseline")]
    pub max_regressions: Vec<crate::threshold::Regression>,
}

#[derive(Debug, Args, Default)]
pub struct ReplayArgs {
    /// The model to replay (made by `reprise import`).
    pub model: PathBuf,

    /// Where to send the traffic: `https://staging.example.com`, or
    /// `https://{tenant}.staging.example.com` to put each tenant in the host.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,

    /// A TOML file with any of these options and a load profile
    /// (`[profile]` with stages); flags override it. See docs/replay.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The recorded timeline N× faster: sessions start when the recording
    /// says, compressed by N; think times are divided by N.
    #[arg(long, value_name = "N", conflicts_with = "rate", value_parser = parse_speed)]
    pub speed: Option<f64>,

    /// N× the recorded session arrival rate, following its shape over time,
    /// with real think times (the default, at 1).
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Multiplies think times (on its own, whatever the arrival rate).
    #[arg(long, value_name = "F", value_parser = parse_think_scale)]
    pub think_scale: Option<f64>,

    /// How long to run (cuts the timeline short; with --rate or --loop, how
    /// long to keep going).
    #[arg(long, value_name = "DURATION", value_parser = parse_run_length)]
    pub duration: Option<Duration>,

    /// Repeat the recorded timeline (with --speed) until --duration.
    #[arg(long = "loop")]
    pub looped: bool,

    /// A per-tenant multiplier, e.g. `acme=5` (repeatable): noisy neighbours.
    #[arg(long = "tenant", value_name = "NAME=MULT", value_parser = parse_tenant_mult)]
    pub tenant_mult: Vec<(String, f64)>,

    /// Replay only this tenant (repeatable).
    #[arg(long = "only-tenant", value_name = "NAME")]
    pub only_tenants: Vec<String>,

    /// Replay the recorded session shapes by weight, or synthesise sessions
    /// from the transition model.
    #[arg(long, value_name = "recorded|synth")]
    pub sessions: Option<crate::plan::SessionMode>,

    /// Also send each tenant in this header (when staging routes by header).
    #[arg(long, value_name = "NAME")]
    pub tenant_header: Option<String>,

    /// Add or override a header on every request: `'X-Env: staging'`
    /// (repeatable). (Parsed with the config, so that an error never
    /// repeats a credential the value holds, as clap's own message would.)
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,

    /// Run share I of N (for N processes that together replay the whole):
    /// `--segment 2/4`. All N need the same model, options and --seed.
    #[arg(long, value_name = "I/N")]
    pub segment: Option<crate::plan::Segment>,

    /// Seed of the generator: the same seed gives the same sessions.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Print the plan (sessions/s and requests/s per tenant over time, the
    /// total expected) and send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Requests in flight at once; past it, requests wait (and their waiting
    /// counts in the latency).
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<usize>,

    /// Sessions open at once; arrivals past it are dropped and counted.
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,

    /// A session whose first request leaves later than this behind schedule
    /// is counted late.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub late_after: Option<Duration>,

    /// How long sessions still running at the end may finish.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<Duration>,

    /// Longest a request may take, connecting included.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Longest connecting (and the TLS handshake) may take.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,

    /// Speak HTTP/2 only (prior knowledge on http, h2 by ALPN on https).
    #[arg(long)]
    pub http2: bool,

    /// Do not verify TLS certificates (self-signed staging).
    #[arg(long)]
    pub insecure: bool,

    /// Allow a host the capture was recorded on as target (repeatable):
    /// otherwise refused, so production is not hit by accident.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,

    /// Only these methods (comma-separated, e.g. GET,HEAD).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub methods: Vec<String>,

    /// Worker threads (default: the CPUs this process may run on).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Write summary.json, timeline.csv and the histograms here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// A pass/fail criterion, k6's syntax: `http_req_duration: p(95)<500`,
    /// `http_req_failed{tenant:acme}: rate<0.01`, `http_req_duration:
    /// p(95)<500 over 1m` (every minute must hold). Repeatable; any that
    /// fails makes the exit code 99. See docs/thresholds.md.
    #[arg(long = "threshold", value_name = "EXPR", value_parser = parse_threshold)]
    pub thresholds: Vec<Vec<crate::threshold::Threshold>>,

    /// Write a JUnit XML report here: a testcase per threshold and check.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Serve live metrics for Prometheus at http://ADDR/metrics during the
    /// run (port 0 picks one; the address is printed).
    #[arg(long, value_name = "ADDR")]
    pub prometheus_listen: Option<std::net::SocketAddr>,

    /// After the run, keep serving the final totals until Prometheus has
    /// scraped them once, at most this long (default 15s; 0s stops at
    /// once). A scrape interval shorter than this sees the end of the run.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub prometheus_linger: Option<Duration>,

    /// Write live metrics every second to InfluxDB v2:
    /// `http://influx:8086/api/v2/write?org=ORG&bucket=BUCKET`; the token
    /// comes from the INFLUX_TOKEN environment variable.
    #[arg(long, value_name = "URL")]
    pub influx: Option<String>,

    /// Write the same InfluxDB line protocol to a file.
    #[arg(long, value_name = "FILE")]
    pub influx_file: Option<PathBuf>,

    /// Scrape the target's own Prometheus metrics during the run and draw
    /// them beside latency: `db=http://10.0.0.5:9187/metrics`. Repeatable.
    /// (Parsed with the config, so that an error never repeats a password
    /// the URL holds, as clap's own message would.)
    #[arg(long = "watch", value_name = "NAME=URL")]
    pub watch: Vec<String>,

    /// Which watched series to keep, by metric name (globs:
    /// `go_sql_open_connections`, `process_*`). Repeatable; none keeps the
    /// first 30 series of each endpoint.
    #[arg(long = "watch-metric", value_name = "GLOB")]
    pub watch_metrics: Vec<String>,

    /// How often to scrape the watched endpoints.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub watch_every: Option<Duration>,

    /// Write the HTML report here (also report.html in --out).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// No progress, no summary (results still go to --out).
    #[arg(short, long)]
    pub quiet: bool,
}

fn parse_regression(s: &str) -> Result<crate::threshold::Regression, String> {
    crate::threshold::parse_regression(s)
}

fn parse_threshold(s: &str) -> Result<Vec<crate::threshold::Threshold>, String> {
    crate::threshold::parse(s).map_err(|e| e.to_string())
}

/// `reprise drill ...`
#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(subcommand)]
    pub kind: DrillKind,
}

#[derive(Debug, Subcommand)]
pub enum DrillKind {
    /// Baseline load, a spike of N× the baseline, the baseline again: how
    /// bad it gets and how long the target takes to recover.
    // The drill sets the load itself: the replay flags that would set it
    // are refused, so they are not offered.
    #[command(
        mut_arg("speed", |a| a.hide(true)),
        mut_arg("rate", |a| a.hide(true)),
        mut_arg("duration", |a| a.hide(true)),
        mut_arg("looped", |a| a.hide(true))
    )]
    Spike(Box<SpikeArgs>),
}

#[derive(Debug, Args)]
pub struct SpikeArgs {
    /// The baseline, as a multiple of the recorded arrival rate.
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub baseline: f64,

    /// The spike, as a multiple of the recorded arrival rate.
    #[arg(long, value_name = "N")]
    pub spike: f64,

    /// How long the baseline runs before the spike (its last four fifths
    /// are the baseline measurement).
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = parse_duration)]
    pub baseline_for: Duration,

    /// How long the spike lasts.
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = parse_duration)]
    pub spike_for: Duration,

    /// How long to watch for recovery after the spike.
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    pub observe: Duration,

    /// How far p95 and the error rate may stay above the baseline and still
    /// count as recovered: `20%` or `0.2`.
    #[arg(long, default_value = "20%", value_name = "PCT", value_parser = parse_fraction)]
    pub tolerance: f64,

    /// How long the target must stay within tolerance to count as recovered.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub sustain: Duration,

    /// The trailing window each second after the spike is judged on.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub window: Duration,

    /// Everything `reprise replay` takes, except how the load is driven
    /// (the drill sets it).
    #[command(flatten)]
    pub replay: ReplayArgs,
}

/// A number within one of the plan's limits.
fn parse_within(s: &str, range: (f64, f64)) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    crate::plan::limits::check(v, range).map(|()| v)
}

fn parse_speed(s: &str) -> Result<f64, String> {
    parse_within(s, crate::plan::limits::SPEED)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    parse_within(s, crate::plan::limits::RATE)
}

fn parse_think_scale(s: &str) -> Result<f64, String> {
    parse_within(s, crate::plan::limits::THINK_SCALE)
}

/// A run's length: more than zero, at most a year.
fn parse_run_length(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    crate::plan::limits::check_length(d).map(|()| d)
}

/// `20%` or `0.2`.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a fraction (0.2) or a percentage (20%)"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be zero or more"))
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long the replay runs.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Duration,

    /// Write the run's results here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoTargetArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,

    /// Requests served at once.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub workers: usize,

    /// Requests waiting for a worker before further ones are refused (503).
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub queue: usize,

    /// Multiplies the simulated service times (2 is twice as slow).
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub service_scale: f64,

    /// Lifetime of the tokens `POST /api/login` issues.
    #[arg(long, default_value = "15m", value_name = "DURATION", value_parser = parse_duration)]
    pub token_ttl: Duration,

    /// Refuse requests without a valid bearer token (401).
    #[arg(long)]
    pub require_auth: bool,

    /// The password every demo user logs in with.
    #[arg(long, default_value = crate::demo::target::DEFAULT_PASSWORD, value_name = "PASSWORD")]
    pub password: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Captures to read: HAR files, access logs, pcap/pcapng packet captures
    /// (`.gz` read transparently), `-` for standard input. Several inputs
    /// merge into one model.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Where to write the model (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// The input format, instead of detecting it from the content.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// An nginx `log_format` (`$remote_addr ... "$request" $status`) or
    /// Apache `LogFormat` (`%h %l %u %t \"%r\" %>s %b`) string describing the
    /// access log.
    #[arg(long, value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,

    /// Where fields are in JSON-lines logs that are not Caddy, Traefik or
    /// Envoy: `time=ts,method=req.method,uri=req.uri,status=code,duration=took:ms,client=ip,header.X-Tenant=tenant`.
    /// `time=ts:end` when the time is written as the request ends (the
    /// start is then that time less the duration).
    #[arg(long, value_name = "MAP", value_parser = parse_field_map)]
    pub json_fields: Option<FieldMap>,

    /// Packet captures: read only connections to these server ports
    /// (comma-separated or repeated). Without it, HTTP/1.x is found on any
    /// port by its content.
    #[arg(long = "port", value_name = "PORT", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,

    /// Packet captures: most bytes one TCP connection may hold (segments
    /// waiting behind a lost one, a message head, a request body kept for
    /// templating). Past it, the hole is given up on and what is cut is
    /// reported. Suffixes k, M, G (powers of 1024).
    #[arg(long, value_name = "BYTES", default_value = "16M", value_parser = parse_bytes)]
    pub max_flow_bytes: usize,

    /// Packet captures: most bytes all connections together may hold.
    #[arg(long, value_name = "BYTES", default_value = "512M", value_parser = parse_bytes)]
    pub max_buffered_bytes: usize,

    /// How to find a request's tenant; repeat for a list, first match wins:
    /// header:NAME, jwt:CLAIM, host:subdomain, path:N, query:NAME, cookie:NAME.
    /// Without any, tenant-like headers, claims, parameters, paths and
    /// subdomains are looked for automatically.
    #[arg(long = "tenant", value_name = "RULE", value_parser = parse_tenant_rule)]
    pub tenants: Vec<TenantRule>,

    /// How to group requests into sessions; repeat for a list, first match
    /// wins: auth, header:NAME, cookie:NAME, jwt:CLAIM, query:NAME, user, ip,
    /// ip+ua. Default: auth (bearer subject, session cookie, API key), then
    /// the logged user, then client address + user agent.
    #[arg(long = "session-key", value_name = "RULE", value_parser = parse_session_rule)]
    pub session_keys: Vec<SessionKeyRule>,

    /// Idle time that ends a session.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub session_gap: Duration,

    /// Keep static assets (images, stylesheets, scripts, fonts).
    #[arg(long)]
    pub keep_assets: bool,

    /// A templating rule: path segments (and query values) matching REGEX
    /// become `{NAME}` slots. Repeatable; tried before the built-in kinds.
    #[arg(long = "slot", value_name = "NAME=REGEX", value_parser = parse_slot_rule)]
    pub slots: Vec<SlotRule>,

    /// Keep a header that would be left out (not Authorization, Cookie or
    /// Set-Cookie: credentials are obtained fresh at replay).
    #[arg(long = "keep-header", value_name = "NAME", value_parser = parse_keep_header)]
    pub keep_headers: Vec<String>,

    /// Only requests whose path matches this regular expression.
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub include: Option<regex::Regex>,

    /// Leave out requests whose path matches this regular expression.
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub exclude: Option<regex::Regex>,

    /// Only these methods (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub methods: Vec<String>,

    /// Most endpoints in a model; requests to further endpoints are counted
    /// and left out.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub max_endpoints: usize,

    /// Most distinct values kept per value pool.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_pool_values: usize,

    /// Most session shapes kept per tenant.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_shapes: usize,

    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model file.
    pub model: PathBuf,

    /// Machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// How many endpoints and shapes to list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); use e.g. 500ms, 30s, 5m, 1h30m"))
}

/// A byte count: `65536`, `64k`, `16M`, `1G` (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1usize << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: usize = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a byte count (e.g. 65536, 64k, 16M, 1G)"))?;
    match n.checked_mul(mult) {
        Some(0) => Err("must be more than zero".into()),
        Some(v) => Ok(v),
        None => Err(format!("`{s}` is too large")),
    }
}

fn parse_tenant_mult(s: &str) -> Result<(String, f64), String> {
    let (name, mult) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=MULTIPLIER, e.g. acme=5"))?;
    let m = parse_within(mult, crate::plan::limits::TENANT_MULT)
        .map_err(|e| format!("`{s}`: the multiplier: {e}"))?;
    if name.trim().is_empty() {
        return Err(format!("`{s}`: no tenant name"));
    }
    Ok((name.trim().to_string(), m))
}

pub(crate) fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        // The whole text could be a credential (`Bearer …` with the name
        // left out): it is not repeated.
        .ok_or_else(|| "expected 'NAME: VALUE'".to_string())?;
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
    {
        // Named, not its value: the value is often a credential.
        return Err(format!("`{name}` is not a header name"));
    }
    let value = value.trim().to_string();
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        // It would be dropped from every request (it cannot be sent).
        return Err(format!(
            "`{name}`: a header value cannot hold a line break or NUL"
        ));
    }
    if name == "host" && value.parse::<hyper::http::uri::Authority>().is_err() {
        return Err(format!("`host: {value}`: a Host header is a host[:port]"));
    }
    Ok((name, value))
}

fn parse_regex(s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| e.to_string())
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    LogFormat::parse(s).map_err(|e| e.to_string())
}

fn parse_field_map(s: &str) -> Result<FieldMap, String> {
    s.parse::<FieldMap>().map_err(|e| e.to_string())
}

fn parse_tenant_rule(s: &str) -> Result<TenantRule, String> {
    s.parse()
        .map_err(|e: crate::model::identity::RuleError| e.to_string())
}

fn parse_session_rule(s: &str) -> Result<SessionKeyRule, String> {
    s.parse()
        .map_err(|e: crate::model::identity::RuleError| e.to_string())
}

fn parse_slot_rule(s: &str) -> Result<SlotRule, String> {
    s.parse()
}

fn parse_keep_header(s: &str) -> Result<String, String> {
    let h = s.trim().to_ascii_lowercase();
    if h.is_empty()
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("`{s}` is not a header name"));
    }
    if crate::model::redact::CREDENTIAL_HEADERS.contains(&h.as_str()) {
        return Err(format!(
            "{s} carries credentials and is never kept; replay obtains fresh ones (see docs/auth.md)"
        ));
    }
    Ok(h)
}
