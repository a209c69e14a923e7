//! Reports of a run: the terminal summary (snapshot), the run directory's
//! files, summary.json against its committed schema, and histograms that
//! read back exactly.

use std::time::Duration;

use reprise::http::ErrorKind;
use reprise::metrics::{Measured, Recorder, Results, RunMeta};
use reprise::report::{self, Run, Summary, decode_histogram};
use serde_json::Value;

use crate::util;

fn measured(endpoint: u32, tenant: u32, ms: u64, status: Option<u16>) -> Measured {
    Measured {
        endpoint,
        tenant,
        status,
        error: status.is_none().then_some(ErrorKind::Refused),
        duration: Duration::from_millis(ms),
        service: Duration::from_millis(ms.saturating_sub(1)),
        lag: Duration::from_micros(150),
        waiting: status.map(|_| Duration::from_millis(ms.saturating_sub(2))),
        receiving: status.map(|_| Duration::from_micros(300)),
        connecting: ms.is_multiple_of(50).then(|| Duration::from_micros(120)),
        tls: None,
        bytes_received: 1200,
        bytes_sent: 180,
    }
}

/// A run with known numbers: two tenants, three endpoints, some 5xx and
/// some refused connections.
fn results() -> Results {
    let mut r = Results::default();
    r.names.endpoints = vec![
        "GET /api/products".into(),
        "GET /api/products/{id}".into(),
        "POST /api/orders".into(),
    ];
    r.names.tenants = vec!["acme".into(), "globex".into()];
    let mut rec = Recorder::default();
    for i in 0..1000u64 {
        let endpoint = (i % 3) as u32;
        let tenant = u32::from(i % 4 == 0);
        let status = match i % 100 {
            0 => None,
            1..=3 => Some(503),
            _ => Some(200),
        };
        let msg = status
            .is_none()
            .then_some("connecting to 127.0.0.1:8080: Connection refused (os error 111)");
        rec.request(&measured(endpoint, tenant, 5 + i % 200, status), msg);
    }
    for i in 0..300u64 {
        rec.session_started(i % 100 == 0);
        rec.session_ended(Duration::from_secs(2 + i % 7), i % 50 != 0);
    }
    rec.session_dropped();
    r.absorb(rec);
    r.meta = RunMeta {
        version: "0.1.0".into(),
        command: "reprise replay model.json --target http://127.0.0.1:8080".into(),
        model: "model.json".into(),
        target: "http://127.0.0.1:8080".into(),
        profile: "rate ×2".into(),
        seed: 1,
        segment: None,
        workers: 2,
        start: "2026-11-27T12:00:00.000Z".into(),
        end: "2026-11-27T12:00:20.000Z".into(),
        planned: Duration::from_secs(20),
        elapsed: Duration::from_secs(20),
        interrupted: false,
        aborted: None,
        abort_code: 0,
        schedule_cut: false,
    };
    r.check_names = vec!["status as recorded".into(), "has items".into()];
    r.checks = vec![(980, 20), (300, 0)];
    let thresholds: Vec<_> = [
        "http_req_duration: p(95)<500",
        "http_req_failed{tenant:acme}: rate<0.01",
        "http_req_duration: p(99)<100 over 5s",
    ]
    .iter()
    .flat_map(|t| reprise::threshold::parse(t).expect("parses"))
    .collect();
    r.thresholds = reprise::threshold::evaluate(&thresholds, &r);
    let mut auth_duration = reprise::metrics::hist();
    for ms in [18u64, 22, 25, 31, 40] {
        auth_duration.record(ms * 1000).expect("in range");
    }
    r.auth = Some(reprise::auth::AuthReport {
        kind: reprise::auth::AuthKind::JsonLogin,
        identities: 3,
        duration: auth_duration,
        logins: 3,
        refreshes: 2,
        failures: 0,
        cut_short: 0,
        retries: 1,
        sessions_denied: 0,
        examples: Vec::new(),
    });
    r
}

#[test]
fn the_terminal_summary() {
    let r = results();
    let s = Summary::of(&r);
    insta::assert_snapshot!(report::terminal::render(&s, 10));
}

/// A generator that fell behind says so; one that kept up (the fixture's
/// 150 µs lag) does not.
#[test]
fn the_terminal_summary_says_when_reprise_fell_behind() {
    let mut s = Summary::of(&results());
    let kept_up = report::terminal::render(&s, 10);
    assert!(!kept_up.contains("fell behind"), "{kept_up}");
    let lag = s
        .metrics
        .iter_mut()
        .find(|m| m.name == "generator_lag")
        .expect("a lag metric");
    lag.stats.p99 = 108.0;
    let behind = report::terminal::render(&s, 10);
    assert!(
        behind.contains("reprise fell behind its plan: generator_lag p(99)=108ms"),
        "{behind}"
    );
}

#[test]
fn the_summary_counts_what_was_recorded() {
    let s = Summary::of(&results());
    assert_eq!(s.requests.total, 1000);
    assert_eq!(s.requests.failed, 40, "10 refused + 30 503s");
    assert!((s.requests.failed_rate - 0.04).abs() < 1e-9);
    assert!((s.requests.per_sec - 50.0).abs() < 1e-9);
    assert_eq!(s.sessions.started, 300);
    assert_eq!(s.sessions.late, 3);
    assert_eq!(s.sessions.dropped, 1);
    assert_eq!(s.sessions.interrupted, 6);
    let kinds: Vec<(&str, u64)> = s
        .errors
        .iter()
        .map(|e| (e.kind.as_str(), e.count))
        .collect();
    assert_eq!(kinds, [("refused", 10), ("5xx", 30)]);
    let acme = s.tenants.iter().find(|t| t.name == "acme").expect("acme");
    assert_eq!(acme.requests, 750);
    let d = s.metric("http_req_duration").expect("duration");
    // 5 + i % 200 ms over i in 0..1000: uniform on 5..=204 ms.
    assert!(
        (d.med - 104.5).abs() <= 1.0 && (d.p99 - 203.0).abs() <= 1.5,
        "{d:?}"
    );
    assert_eq!(d.min, 5.0);
    // No tenant or endpoint is slower than the run as a whole (their
    // histograms are coarser, and their max used to land past it).
    for g in s.tenants.iter().chain(&s.endpoints) {
        assert!(
            g.duration.max <= d.max && g.duration.p99 <= d.max,
            "{}: {:?} against {d:?}",
            g.name,
            g.duration
        );
    }
}

#[test]
fn a_run_directory_holds_every_file_and_histograms_read_back_exactly() {
    let r = results();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = Run::new(&r);
    let written = report::write_dir(dir.path(), &run, &report::standard()).expect("written");
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "summary.json",
            "timeline.csv",
            "histograms.json",
            "summary.txt",
            "report.html"
        ]
    );
    let h: Value = util::read_json(&dir.path().join("histograms.json"));
    let duration = h["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m[0] == "http_req_duration")
        .expect("http_req_duration");
    let back = decode_histogram::<u64>(duration[1].as_str().expect("base64")).expect("decodes");
    assert_eq!(back.len(), 1000);
    assert_eq!(
        back.value_at_quantile(0.99),
        r.metrics.duration.value_at_quantile(0.99)
    );
    assert_eq!(back.max(), r.metrics.duration.max());
    let keys = h["keys"].as_array().expect("keys");
    let total: u64 = keys
        .iter()
        .map(|k| k["requests"].as_u64().expect("requests"))
        .sum();
    assert_eq!(total, 1000);
    let per_key: u64 = keys
        .iter()
        .map(|k| {
            decode_histogram::<u64>(k["duration"].as_str().expect("b64"))
                .expect("decodes")
                .len()
        })
        .sum();
    assert_eq!(per_key, 1000, "per-key histograms hold every request");
}

fn schema_errors(v: &jsonschema::Validator, json: &Value) -> Vec<String> {
    v.iter_errors(json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Fails unless `json` follows docs/summary.schema.json.
pub fn assert_schema(json: &Value) {
    let schema: Value = util::read_json(&util::repo("docs/summary.schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    assert_eq!(schema_errors(&validator, json), Vec::<String>::new());
}

#[test]
fn summary_json_follows_the_committed_schema() {
    let schema: Value = util::read_json(&util::repo("docs/summary.schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let r = results();
    let json: Value = serde_json::to_value(Summary::of(&r)).expect("serialises");
    assert_eq!(schema_errors(&validator, &json), Vec::<String>::new());
    // The schema is strict: a field it does not know is an error.
    let mut extra = json.clone();
    extra["requests"]["surprise"] = Value::from(1);
    assert!(!validator.is_valid(&extra));
    // And a run that sent nothing is still valid.
    let nothing = Results {
        meta: r.meta.clone(),
        ..Results::default()
    };
    let empty: Value = serde_json::to_value(Summary::of(&nothing)).expect("serialises");
    assert_eq!(schema_errors(&validator, &empty), Vec::<String>::new());
}

#[test]
fn a_saved_run_renders_again_exactly() {
    use crate::util::server::{Behaviour, Recorder};
    let dir = tempfile::tempdir().expect("tempdir");
    crate::util::ping_model(dir.path(), 60);
    let server = Recorder::start(Behaviour::default());
    // One threshold that holds and one, windowed, that no answer can meet:
    // the run fails with 99 and its report has both kinds to render.
    let toml = format!(
        "target = \"{}\"\ngrace = \"1s\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 40\nstages = [{{ duration = \"3s\", target = 40 }}]\n[thresholds]\nhttp_req_duration = [\"p(95)<2s\", \"p(99)<1us over 1s\"]\n",
        server.url()
    );
    let (out, _) = crate::replay::replay(
        dir.path(),
        &dir.path().join("model.json"),
        &toml,
        &[
            "--quiet",
            "--junit",
            dir.path().join("run.xml").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}",
        crate::util::text(&out.stderr)
    );
    let run_dir = dir.path().join("out");
    let report = |args: &[&str]| {
        let o = crate::util::reprise()
            .arg("report")
            .arg(&run_dir)
            .args(args)
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", crate::util::text(&o.stderr));
        o.stdout
    };
    assert_eq!(
        crate::util::text(&report(&["--json"])),
        std::fs::read_to_string(run_dir.join("summary.json")).expect("summary")
    );
    assert_eq!(
        crate::util::text(&report(&["--top", "20"])),
        std::fs::read_to_string(run_dir.join("summary.txt")).expect("summary.txt")
    );
    let xml = dir.path().join("again.xml");
    report(&["--junit", xml.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read_to_string(xml).expect("junit"),
        std::fs::read_to_string(dir.path().join("run.xml")).expect("run junit")
    );
    // A JUnit file in a directory that is not there: exit 2, naming it.
    let nowhere = dir.path().join("no/such/dir/run.xml");
    let bad = crate::util::reprise()
        .arg("report")
        .arg(&run_dir)
        .arg("--junit")
        .arg(&nowhere)
        .output()
        .expect("runs");
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        crate::util::text(&bad.stderr)
    );
    assert!(crate::util::text(&bad.stderr).contains("--junit"));
    // Not a run directory: exit 2, naming the file.
    let bad = crate::util::reprise()
        .arg("report")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(crate::util::text(&bad.stderr).contains("summary.json"));
    // A timeline second far past the run's end (damage): exit 2 naming the
    // file, not an 8 TB allocation for the HTML's per-second series.
    let hist = run_dir.join("histograms.json");
    let mut h: Value = util::read_json(&hist);
    let last = h["timeline"].as_array().expect("timeline").len() - 1;
    h["timeline"][last]["second"] = Value::from(u64::MAX);
    std::fs::write(&hist, serde_json::to_vec(&h).expect("JSON")).expect("writes");
    let html = dir.path().join("damaged.html");
    let damaged = crate::util::reprise()
        .arg("report")
        .arg(&run_dir)
        .arg("--html")
        .arg(&html)
        .output()
        .expect("runs");
    let err = crate::util::text(&damaged.stderr);
    assert_eq!(damaged.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "histograms.json: timeline: second 18446744073709551615 is past the run's end"
        ),
        "{err}"
    );
}

/// The HTML report's structure: sections, headings, tables and charts, with
/// the data and the vendored library left out.
fn skeleton(html: &str) -> String {
    let re = regex::Regex::new(
        r#"<(section id=[a-z-]+|h[123]>[^<]*|table[^>]*|th[^>]*>[^<]*|div class=chart id="[a-z-]+"|script[^>]*)"#,
    )
    .expect("regex");
    re.find_iter(html)
        .map(|m| m.as_str().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_html_report_structure() {
    let r = results();
    let run = Run::new(&r);
    let html = String::from_utf8(report::Exporter::render(&report::Html, &run).expect("renders"))
        .expect("utf-8");
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        !html.contains("<script src=") && !html.contains("<img src=\"http"),
        "nothing is fetched"
    );
    assert!(!html.contains("<link "), "no external stylesheet");
    insta::assert_snapshot!(skeleton(&html));
}

/// Chromium from Debian's package: present in CI (.ci/run installs it and
/// sets REPRISE_REQUIRE_CHROMIUM); skipped loudly elsewhere.
fn chromium() -> Option<&'static str> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    if std::env::var_os("REPRISE_REQUIRE_CHROMIUM").is_some() {
        panic!("chromium is required (REPRISE_REQUIRE_CHROMIUM) but not installed");
    }
    eprintln!("SKIPPED: the HTML report's browser test: chromium is not installed");
    None
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    use crate::util::server::{Behaviour, Recorder};
    let Some(browser) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    crate::util::ping_model(dir.path(), 60);
    let server = Recorder::start(Behaviour::default());
    let toml = format!(
        "target = \"{}\"\ngrace = \"1s\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 10\nstages = [{{ duration = \"2s\", target = 30 }}, {{ duration = \"2s\", target = 10 }}]\n",
        server.url()
    );
    let html = dir.path().join("report.html");
    let (out, _) = crate::replay::replay(
        dir.path(),
        &dir.path().join("model.json"),
        &toml,
        &["--quiet", "--html", html.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{}", crate::util::text(&out.stderr));
    let page = format!("file://{}", html.display());
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
    ];
    let dom = std::process::Command::new(browser)
        .args(flags)
        .args(["--dump-dom", &page])
        .output()
        .expect("chromium runs");
    let dom = crate::util::text(&dom.stdout);
    let body = regex::Regex::new(r"<body[^>]*>")
        .expect("regex")
        .find(&dom)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    assert!(!body.contains("data-error"), "a script error: {body}");
    assert!(
        body.contains(r#"data-rendered="5""#),
        "charts drawn: {body}"
    );
    assert!(dom.matches("<canvas").count() >= 5, "five uPlot canvases");
    let shot = dir.path().join("report.png");
    let status = std::process::Command::new(browser)
        .args(flags)
        .args([
            "--window-size=1280,2400",
            &format!("--screenshot={}", shot.display()),
            &page,
        ])
        .output()
        .expect("chromium runs");
    assert!(status.status.success());
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn a_run_compared_with_its_baseline_fails_on_a_regression() {
    use crate::util::server::{Behaviour, Recorder};
    let dir = tempfile::tempdir().expect("tempdir");
    crate::util::ping_model(dir.path(), 60);
    let toml = |url: String, out: &str| {
        format!(
            "target = \"{url}\"\ngrace = \"1s\"\nout = \"{out}\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 40\nstages = [{{ duration = \"3s\", target = 40 }}]\n"
        )
    };
    let run = |behaviour: Behaviour, out: &str, args: &[&str]| {
        let server = Recorder::start(behaviour);
        std::fs::write(
            dir.path().join(format!("{out}.toml")),
            toml(server.url(), out),
        )
        .expect("writes");
        crate::util::reprise()
            .args([
                "replay",
                "model.json",
                "--config",
                &format!("{out}.toml"),
                "--quiet",
            ])
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("runs")
    };
    let base = run(Behaviour::default(), "base", &[]);
    assert!(base.status.success(), "{}", crate::util::text(&base.stderr));
    // The same traffic against a server 40 ms slower, gated on the baseline.
    let slow = Behaviour {
        delay: Some(std::time::Duration::from_millis(40)),
        ..Behaviour::default()
    };
    let now = run(
        slow,
        "now",
        &[
            "--baseline",
            "base",
            "--max-regression",
            "http_req_duration: p(95)+10%",
            "--max-regression",
            "http_req_failed: rate+0.01",
        ],
    );
    assert_eq!(
        now.status.code(),
        Some(99),
        "{}",
        crate::util::text(&now.stderr)
    );
    let summary: serde_json::Value = util::read_json(&dir.path().join("now/summary.json"));
    assert_schema(&summary);
    let c = &summary["comparison"];
    assert_eq!(c["baseline"], "base");
    let d = util::metric(c, "http_req_duration");
    assert!(
        d["ks"].as_f64().expect("ks") > 0.9,
        "the distributions no longer overlap: {d}"
    );
    assert!(d["p95"][1].as_f64().expect("now") > d["p95"][0].as_f64().expect("then") + 30.0);
    let verdicts: Vec<(String, bool)> = summary["thresholds"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|v| {
            (
                v["threshold"].as_str().expect("text").to_string(),
                v["ok"] == true,
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("regression http_req_duration: p(95)+10%".to_string(), false),
            ("regression http_req_failed: rate+0.01".to_string(), true),
        ]
    );
    // `report --baseline` judges the same, from the saved runs.
    let again = crate::util::reprise()
        .args([
            "report",
            "now",
            "--baseline",
            "base",
            "--max-regression",
            "http_req_duration: p(95)+10%",
        ])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(again.status.code(), Some(99));
    let text = crate::util::text(&again.stdout);
    assert!(text.contains("compared with the baseline base"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("✗ regression http_req_duration: p(95)+10%"))
        .unwrap_or_else(|| panic!("{text}"));
    // The baseline's value and the change, not only today's value.
    assert!(
        line.contains("baseline ") && line.contains(", now ") && line.contains("ms: +"),
        "{line}"
    );
    // Judged once each: the saved verdicts are replaced, not repeated.
    assert_eq!(
        text.matches("regression http_req_duration").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("regression http_req_failed"), "{text}");
    // Without --baseline, the saved comparison is shown as it was.
    let saved = crate::util::reprise()
        .args(["report", "now", "--json"])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    let shown: serde_json::Value = serde_json::from_slice(&saved.stdout).expect("JSON");
    assert_eq!(shown["comparison"], summary["comparison"]);
    assert_eq!(shown["thresholds"], summary["thresholds"]);
    let fine = crate::util::reprise()
        .args([
            "report",
            "base",
            "--baseline",
            "base",
            "--max-regression",
            "http_req_duration: p(99)+0%",
        ])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(
        fine.status.code(),
        Some(0),
        "a run against itself has not regressed"
    );
    // A baseline that is not there: exit 2 before anything is sent.
    let server = Recorder::start(Behaviour::default());
    std::fs::write(dir.path().join("x.toml"), toml(server.url(), "x")).expect("writes");
    let missing = crate::util::reprise()
        .args([
            "replay",
            "model.json",
            "--config",
            "x.toml",
            "--baseline",
            "nowhere",
        ])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(2));
    // A limit on an endpoint the model does not have: exit 2 before the
    // run, as a threshold on it is (it ran the whole load, then failed 99).
    let nothing = crate::util::reprise()
        .args(["replay", "model.json", "--config", "x.toml"])
        .args(["--baseline", "base", "--max-regression"])
        .arg("http_req_duration{endpoint:GET /nowhere}: p(95)+10%")
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(nothing.status.code(), Some(2));
    let said = crate::util::text(&nothing.stderr);
    assert!(
        said.contains("--max-regression `http_req_duration{endpoint:GET /nowhere}"),
        "{said}"
    );
    for limit in [
        "http_req_duration{tenant:nobody}: p(95)+10%",
        // Both runs have one stage: a second one is in neither.
        "http_req_duration{stage:2}: p(95)+10%",
    ] {
        let nothing = crate::util::reprise()
            .args(["report", "now", "--baseline", "base", "--max-regression"])
            .arg(limit)
            .current_dir(dir.path())
            .output()
            .expect("runs");
        assert_eq!(nothing.status.code(), Some(2), "{limit}");
        let said = crate::util::text(&nothing.stderr);
        assert!(
            !limit.contains("stage") || said.contains("is not in both runs"),
            "{said}"
        );
    }
    assert!(server.seen().is_empty());
}

#[test]
fn the_grafana_dashboards_query_what_reprise_exports() {
    let re = regex::Regex::new(r"reprise_[a-z0-9_]+").expect("regex");
    for (file, names) in [
        (
            "docs/grafana/reprise-prometheus.json",
            vec![
                "reprise_requests_total",
                "reprise_http_req_duration_seconds_bucket",
                "reprise_errors_total",
                "reprise_in_flight",
                "reprise_active_sessions",
                "reprise_generator_lag_p99_seconds",
                "reprise_sessions_dropped_total",
                "reprise_http_req_duration_p95_seconds",
            ],
        ),
        (
            "docs/grafana/reprise-influxdb.json",
            vec![
                "p95_ms",
                "requests",
                "in_flight",
                "lag_p99_ms",
                "reprise_requests",
            ],
        ),
    ] {
        let dash: Value = util::read_json(&util::repo(file));
        let text = dash.to_string();
        for n in names {
            assert!(text.contains(n), "{file} queries {n}");
        }
        // Every Prometheus metric it names is one reprise serves.
        let served = [
            "reprise_requests_total",
            "reprise_requests_failed_total",
            "reprise_errors_total",
            "reprise_http_req_duration_seconds_bucket",
            "reprise_http_req_duration_seconds_sum",
            "reprise_http_req_duration_seconds_count",
            "reprise_http_req_duration_p95_seconds",
            "reprise_generator_lag_p99_seconds",
            "reprise_in_flight",
            "reprise_active_sessions",
            "reprise_sessions_started_total",
            "reprise_sessions_dropped_total",
            "reprise_checks_total",
            "reprise_seconds",
            "reprise_requests",
            "reprise_prometheus",
            "reprise_influxdb",
        ];
        for m in re.find_iter(&text) {
            assert!(
                served.contains(&m.as_str()),
                "{file}: {} is not served",
                m.as_str()
            );
        }
        assert!(dash["panels"].as_array().expect("panels").len() >= 6);
    }
}
