//! Live metrics during a run: a Prometheus scrape while the run goes on,
//! and InfluxDB line protocol to a loopback receiver and a file.

use std::io::{BufRead, Read, Write};
use std::time::Duration;

use crate::util::server::{Behaviour, Recorder};
use crate::util::{self, text};

fn profile(target: &str, secs: u32) -> String {
    format!(
        "target = \"{target}\"\ngrace = \"1s\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 40\nstages = [{{ duration = \"{secs}s\", target = 40 }}]\n"
    )
}

/// A five-session ping model and a `run.toml` replaying it for 2 s
/// against a recording server of its own, which is returned.
fn short_run(dir: &std::path::Path) -> Recorder {
    let server = Recorder::start(Behaviour::default());
    util::ping_model(dir, 5);
    std::fs::write(dir.join("run.toml"), profile(&server.url(), 2)).expect("writes");
    server
}

/// `GET path` over a plain TCP connection; the body.
fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("reads");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Starts `reprise replay` of a 60-session ping model for `secs` seconds
/// against `server`, with a Prometheus endpoint on a free port and `extra`
/// flags; the child and its stderr.
fn with_prometheus(
    dir: &std::path::Path,
    server: &Recorder,
    secs: u32,
    extra: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    util::ping_model(dir, 60);
    std::fs::write(dir.join("run.toml"), profile(&server.url(), secs)).expect("writes");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("reprise"))
        .args(["replay", "model.json", "--config", "run.toml", "--quiet"])
        .args(["--out", "out", "--prometheus-listen", "127.0.0.1:0"])
        .args(extra)
        .current_dir(dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    (child, stderr)
}

#[test]
fn prometheus_scrapes_during_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Recorder::start(Behaviour::default());
    let (mut child, mut stderr) = with_prometheus(dir.path(), &server, 6, &[]);
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the address");
    let addr = line
        .trim()
        .strip_prefix("live metrics: http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    std::thread::sleep(Duration::from_secs(3));
    let body = get(&addr, "/metrics");
    // After the run, the final totals stay up until scraped once.
    line.clear();
    stderr.read_line(&mut line).expect("the linger line");
    assert!(
        line.contains("the final totals stay on") && line.contains("until scraped"),
        "{line}"
    );
    let last = get(&addr, "/metrics");
    let scraped = std::time::Instant::now();
    let status = child.wait().expect("ends");
    assert!(status.success());
    assert!(
        scraped.elapsed() < Duration::from_secs(5),
        "it stops once the final totals were scraped"
    );
    assert!(
        body.contains("# TYPE reprise_requests_total counter"),
        "{body}"
    );
    let count = |body: &str| -> u64 {
        body.lines()
            .filter(|l| l.starts_with("reprise_requests_total{"))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .expect("value")
                    .parse::<u64>()
                    .expect("a count")
            })
            .sum()
    };
    let counted = count(&body);
    assert!(counted > 20, "requests counted mid-run: {counted}\n{body}");
    assert!(body.contains("reprise_http_req_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(body.contains("# TYPE reprise_in_flight gauge"));
    let summary: serde_json::Value = util::read_json(&dir.path().join("out/summary.json"));
    let total = summary["requests"]["total"].as_u64().expect("total");
    assert!(counted < total, "mid-run, less than at the end");
    assert_eq!(count(&last), total, "the last scrape has the final totals");
}

#[test]
fn influx_line_protocol_to_a_receiver_and_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    let target = Recorder::start(Behaviour::default());
    let influx = Recorder::start(Behaviour::default());
    std::fs::write(dir.path().join("run.toml"), profile(&target.url(), 3)).expect("writes");
    let token = "influx-planted-t0ken";
    let out = util::replay_in(dir.path())
        .env("INFLUX_TOKEN", token)
        .args([
            "--influx",
            &format!("{}/api/v2/write?org=o&bucket=b&precision=s", influx.url()),
        ])
        .args(["--influx-file", "live.lp"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = util::read_json(&dir.path().join("out/summary.json"));
    let total = summary["requests"]["total"].as_u64().expect("total");
    let file = std::fs::read_to_string(dir.path().join("live.lp")).expect("line protocol file");
    // Every request is in exactly one second's line.
    let field = |line: &str, name: &str| -> u64 {
        line.split([' ', ','])
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim_end_matches('i').parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    let run_lines: Vec<&str> = file.lines().filter(|l| l.starts_with("reprise ")).collect();
    assert!(run_lines.len() >= 3, "{file}");
    assert_eq!(
        run_lines.iter().map(|l| field(l, "requests")).sum::<u64>(),
        total
    );
    let key_lines: u64 = file
        .lines()
        .filter(|l| {
            l.starts_with("reprise_requests,tenant=default,endpoint=GET\\ /ping,status=2xx ")
        })
        .map(|l| field(l, "count"))
        .sum();
    assert_eq!(key_lines, total);
    // Each line ends with a timestamp in seconds, within the run.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for l in file.lines() {
        let ts: u64 = l
            .rsplit(' ')
            .next()
            .expect("ts")
            .parse()
            .expect("a timestamp");
        assert!(ts <= now && ts + 120 > now, "{l}");
    }
    // The receiver got the same lines, with the token.
    let posts = influx.seen();
    assert!(!posts.is_empty());
    assert!(
        posts
            .iter()
            .all(|p| p.method == "POST" && p.target.starts_with("/api/v2/write?org=o&bucket=b"))
    );
    assert!(
        posts
            .iter()
            .all(|p| p.header("authorization") == Some(&format!("Token {token}")[..]))
    );
    let received: String = posts.iter().map(|p| text(&p.body)).collect();
    assert_eq!(received, file);
    // The token never shows.
    let all = format!(
        "{}{}{}",
        text(&out.stdout),
        text(&out.stderr),
        std::fs::read_to_string(dir.path().join("out/summary.json")).expect("summary")
    );
    assert!(!all.contains(token));
}

#[test]
fn the_targets_own_metrics_are_watched_beside_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::demo_model(dir.path());
    let (_rt, target) = util::demo(reprise::demo::TargetConfig::default());
    // A port nobody listens on: that watch fails, the run does not.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let dead = format!("http://{}/metrics", closed.local_addr().expect("addr"));
    drop(closed);
    let out = util::reprise()
        .args([
            "replay",
            "model.json",
            "--target",
            &target.url(),
            "--allow-host",
            "127.0.0.1",
        ])
        .args([
            "--tenant-header",
            "x-tenant-id",
            "--rate",
            "5",
            "--duration",
            "4s",
            "--grace",
            "1s",
        ])
        .args(["--watch", &format!("demo={}/metrics", target.url())])
        .args(["--watch", &format!("gone={dead}")])
        .args([
            "--watch-metric",
            "demo_pool_*",
            "--watch-metric",
            "demo_requests_total",
        ])
        .args(["--watch-every", "250ms", "--out", "out", "--quiet"])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let h: serde_json::Value = util::read_json(&dir.path().join("out/histograms.json"));
    let demo = &h["watch"][0];
    assert_eq!(demo["name"], "demo");
    let times = demo["times"].as_array().expect("times").len();
    assert!(times >= 10, "{times} scrapes in 5 s at 250 ms");
    let series: Vec<&serde_json::Value> =
        demo["series"].as_array().expect("series").iter().collect();
    let named = |m: &str| {
        series
            .iter()
            .find(|s| s["metric"].as_str().is_some_and(|x| x.starts_with(m)))
    };
    let size = named("demo_pool_size").expect("pool size watched");
    assert_eq!(size["rate"], false);
    assert!(
        size["values"]
            .as_array()
            .expect("values")
            .iter()
            .all(|v| v.is_null() || v == 32.0)
    );
    assert!(named("demo_pool_in_use").is_some());
    let requests = named("demo_requests_total").expect("a counter watched");
    assert_eq!(requests["rate"], true, "counters become rates");
    assert!(
        series.iter().all(|s| !s["metric"]
            .as_str()
            .expect("name")
            .starts_with("demo_queue")),
        "only the globs asked for"
    );
    let gone = &h["watch"][1];
    assert!(gone["scrapes_failed"].as_u64().expect("failures") >= 10);
    assert!(gone["series"].as_array().expect("series").is_empty());
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).expect("report");
    assert!(html.contains("Target: demo") && html.contains("chart-watch-0"));
    // Not NAME=URL: a usage error.
    let bad = util::reprise()
        .args([
            "replay",
            "model.json",
            "--target",
            &target.url(),
            "--watch",
            "http://x/metrics",
        ])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("expected NAME=URL"));
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binds")
        .local_addr()
        .expect("addr")
        .port()
}

/// Opt-in (REPRISE_INTEROP_PROMETHEUS=1, with Debian's `prometheus`
/// package): a real Prometheus scrapes a run and its query API answers
/// with reprise's series.
#[test]
fn a_real_prometheus_scrapes_a_run() {
    if std::env::var_os("REPRISE_INTEROP_PROMETHEUS").is_none() {
        eprintln!("SKIPPED (opt-in): set REPRISE_INTEROP_PROMETHEUS=1 with prometheus installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    let server = Recorder::start(Behaviour::default());
    let (scrape_port, api_port) = (free_port(), free_port());
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: reprise\n    static_configs:\n      - targets: ['127.0.0.1:{scrape_port}']\n"
        ),
    )
    .expect("writes");
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{api_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus starts (apt-get install prometheus)");
    std::fs::write(dir.path().join("run.toml"), profile(&server.url(), 8)).expect("writes");
    let out = util::reprise()
        .args([
            "replay",
            "model.json",
            "--config",
            "run.toml",
            "--quiet",
            "--out",
            "out",
        ])
        .args(["--prometheus-listen", &format!("127.0.0.1:{scrape_port}")])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let query = |q: &str| -> serde_json::Value {
        let body = get(
            &format!("127.0.0.1:{api_port}"),
            &format!(
                "/api/v1/query?query={}",
                url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
            ),
        );
        serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null)
    };
    let value = |v: &serde_json::Value| -> f64 {
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0)
    };
    let seconds = value(&query("max_over_time(reprise_seconds[5m])"));
    let requests = value(&query(
        "sum(max_over_time(reprise_requests_total{endpoint=\"GET /ping\"}[5m]))",
    ));
    let _ = prom.kill();
    let _ = prom.wait();
    assert!(
        seconds >= 5.0,
        "Prometheus saw the run's seconds: {seconds}"
    );
    let summary: serde_json::Value = util::read_json(&dir.path().join("out/summary.json"));
    let total = summary["requests"]["total"].as_f64().expect("total");
    assert!(
        requests > total * 0.5 && requests <= total,
        "Prometheus scraped {requests} of {total} requests"
    );
}

/// Ctrl-C while the final totals wait for their scrape ends the wait at
/// once; the run itself was complete, so it is not marked interrupted.
#[test]
fn ctrl_c_during_the_prometheus_linger_ends_it_and_the_run_stands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Recorder::start(Behaviour::default());
    let (mut child, mut stderr) =
        with_prometheus(dir.path(), &server, 2, &["--prometheus-linger", "60s"]);
    let mut line = String::new();
    while !line.contains("until scraped") {
        line.clear();
        assert!(stderr.read_line(&mut line).expect("reads") > 0, "no linger");
    }
    let signalled = std::time::Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().expect("ends");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "the wait ended"
    );
    assert_eq!(status.code(), Some(0), "a complete run");
    let summary = util::read_json(&dir.path().join("out/summary.json"));
    assert_eq!(summary["run"]["interrupted"], false, "{}", summary["run"]);
}

/// A Prometheus address that is taken is a mistake found before the run
/// (exit 2), and the `--out` directory is not left behind empty.
#[test]
fn a_taken_prometheus_address_leaves_no_empty_run_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = short_run(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = util::reprise()
        .args(["replay", "model.json", "--config", "run.toml", "--quiet"])
        .args(["--out", "out", "--prometheus-listen", &addr])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!dir.path().join("out").exists(), "no empty run directory");
    assert!(server.seen().is_empty());
}

/// A second in which the target answered nothing has no latency: the
/// timeline's cells are empty and the line protocol leaves the fields out
/// (they read 0, drawing a stalled target as the fastest second of the
/// run).
#[test]
fn a_stalled_second_has_no_latency_rather_than_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    // Answers for the first second, then holds everything for 20 s.
    let target = Recorder::stalling(Duration::from_millis(900), Duration::from_secs(20));
    std::fs::write(dir.path().join("run.toml"), profile(&target.url(), 4)).expect("writes");
    let out = util::reprise()
        .args(["replay", "model.json", "--config", "run.toml", "--quiet"])
        .args([
            "--out",
            "out",
            "--influx-file",
            "live.lp",
            "--grace",
            "500ms",
        ])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(dir.path().join("out/timeline.csv")).expect("timeline");
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows[0][1] != "0" && !rows[0][4].is_empty(), "{csv}");
    let stalled: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == "0").collect();
    assert!(stalled.len() >= 2, "{csv}");
    for r in &stalled {
        // p50, p95, p99 and service p99 of a second with no answers.
        assert_eq!(r[3..7], ["", "", "", ""], "{csv}");
    }
    let lp = std::fs::read_to_string(dir.path().join("live.lp")).expect("line protocol");
    let quiet: Vec<&str> = lp
        .lines()
        .filter(|l| l.starts_with("reprise requests=0i,"))
        .collect();
    assert!(quiet.len() >= 2, "{lp}");
    assert!(quiet.iter().all(|l| !l.contains("p95_ms=")), "{lp}");
}

/// A dry run finds what the run would refuse when it starts its live
/// outputs (it passed them, and the run then exited 2); `--quiet` keeps
/// failed Influx writes to itself.
#[test]
fn a_dry_run_checks_the_live_outputs_and_quiet_keeps_influx_warnings_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _server = short_run(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("addr").to_string();
    for (flag, value) in [
        ("--influx-file", "no/such/dir/x.lp"),
        ("--influx", "not a url"),
        ("--influx", "ftp://influx:8086/api/v2/write"),
        ("--prometheus-listen", addr.as_str()),
    ] {
        let out = util::reprise()
            .args(["replay", "model.json", "--config", "run.toml", "--dry-run"])
            .args([flag, value])
            .current_dir(dir.path())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(flag), "{}", text(&out.stderr));
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let nobody = format!(
        "http://{}/api/v2/write?org=o&bucket=b",
        closed.local_addr().expect("addr")
    );
    drop(closed);
    let out = util::reprise()
        .args(["replay", "model.json", "--config", "run.toml", "--quiet"])
        .args(["--influx", &nobody])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}

/// An InfluxDB that accepts connections and never answers: the run goes
/// on, ends on time, and its results are written a moment after it ends,
/// not after one 5 s timeout per second of the run still queued.
#[test]
fn a_stalled_influx_holds_back_neither_the_run_nor_its_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = Recorder::start(Behaviour::default());
    util::ping_model(dir.path(), 5);
    std::fs::write(dir.path().join("run.toml"), profile(&target.url(), 4)).expect("writes");
    let influx = Recorder::stalling(Duration::ZERO, Duration::from_secs(600));
    let started = std::time::Instant::now();
    let out = util::replay_in(dir.path())
        .args([
            "--influx",
            &format!("{}/api/v2/write?org=o&bucket=b", influx.url()),
        ])
        .output()
        .expect("runs");
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("writes to --influx failed"), "{stderr}");
    let summary: serde_json::Value = util::read_json(&dir.path().join("out/summary.json"));
    let elapsed = summary["run"]["elapsed_ms"].as_f64().expect("elapsed");
    assert!(elapsed < 6_000.0, "4 s and the grace: {elapsed} ms");
    // 4 s run, 1 s grace, then at most one 5 s write timeout's worth of
    // waiting; each queued second cost 5 s before (about 30 s in all).
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// The Prometheus linger after the run is not run time: rates are per
/// second of the run.
#[test]
fn the_prometheus_linger_is_not_counted_as_run_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Recorder::start(Behaviour::default());
    let started = std::time::Instant::now();
    let (mut child, _stderr) =
        with_prometheus(dir.path(), &server, 2, &["--prometheus-linger", "3s"]);
    assert!(child.wait().expect("ends").success());
    assert!(started.elapsed() >= Duration::from_secs(5), "it lingered");
    let summary: serde_json::Value = util::read_json(&dir.path().join("out/summary.json"));
    let elapsed = summary["run"]["elapsed_ms"].as_f64().expect("elapsed");
    assert!(
        elapsed < 3_500.0,
        "2 s and the grace, no linger: {elapsed} ms"
    );
    let rate = summary["requests"]["per_sec"].as_f64().expect("rate");
    assert!(rate > 25.0, "40 sessions/s for 2 s, per second run: {rate}");
}
