//! Thresholds, checks, JUnit and the spike drill, end to end with the
//! binary against loopback servers and the demo target.

use std::time::Duration;

use reprise::demo::TargetConfig;
use serde_json::Value;

use crate::replay::replay;
use crate::util::server::{Behaviour, Recorder};
use crate::util::{self, text};

fn flat(target: &str, rate: u32, secs: u32, extra: &str) -> String {
    format!(
        "target = \"{target}\"\ngrace = \"2s\"\n{extra}\n[profile]\nunit = \"sessions_per_sec\"\nstart = {rate}\nstages = [{{ duration = \"{secs}s\", target = {rate} }}]\n"
    )
}

fn verdicts(summary: &Value) -> Vec<(String, bool)> {
    summary["thresholds"]
        .as_array()
        .expect("thresholds")
        .iter()
        .map(|v| {
            (
                v["threshold"].as_str().expect("text").to_string(),
                v["ok"].as_bool().expect("ok"),
            )
        })
        .collect()
}

#[test]
fn a_slow_target_breaks_its_thresholds_and_the_exit_code_is_99() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    let server = Recorder::start(Behaviour {
        delay: Some(Duration::from_millis(120)),
        ..Behaviour::default()
    });
    let junit = dir.path().join("junit.xml");
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &flat(&server.url(), 50, 3, ""),
        &[
            "--threshold",
            "http_req_duration: p(95)<100, p(95)<1s",
            "--threshold",
            "http_req_failed: rate<0.01",
            "--threshold",
            "http_reqs: count>10",
            "--junit",
            junit.to_str().expect("utf-8"),
        ],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{stderr}");
    assert!(stderr.contains("1 of 4 thresholds failed"), "{stderr}");
    assert_eq!(
        verdicts(&summary),
        vec![
            ("http_req_duration: p(95)<100".to_string(), false),
            ("http_req_duration: p(95)<1s".to_string(), true),
            ("http_req_failed: rate<0.01".to_string(), true),
            ("http_reqs: count>10".to_string(), true),
        ]
    );
    let p95 = summary["thresholds"][0]["observed"]
        .as_f64()
        .expect("observed");
    assert!((119.0..400.0).contains(&p95), "{p95}");
    assert!(
        stdout.contains("✗ http_req_duration: p(95)<100"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ http_req_failed: rate<0.01"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("tests=\"5\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains("name=\"http_req_duration: p(95)&lt;100\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure type=\"threshold\" message=\"observed p(95)="),
        "{xml}"
    );
    assert!(
        xml.contains("classname=\"checks\" name=\"status as recorded\" time="),
        "{xml}"
    );

    // The same run with thresholds it meets: exit 0.
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &flat(
            &server.url(),
            50,
            2,
            "[thresholds]\nhttp_req_duration = [\"p(95)<2s\"]\nchecks = [\"rate>0.99\"]",
        ),
        &["--quiet"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(verdicts(&summary).iter().all(|(_, ok)| *ok));
}

/// A threshold on one stage of the profile judges that stage's seconds
/// alone: a stall in the second stage fails it, and leaves the first, and
/// a stage-less threshold over the whole run, to their own values.
#[test]
fn a_threshold_on_a_stage_judges_that_stage_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    // Requests arriving 2.5–3.5 s after the first are held until 3.5 s.
    let server = Recorder::stalling(Duration::from_millis(2500), Duration::from_millis(3500));
    let config = format!(
        "target = \"{}\"\ngrace = \"3s\"\n[profile]\nunit = \"sessions_per_sec\"\nstart = 40\nstages = [{{ duration = \"2s\", target = 40 }}, {{ duration = \"3s\", target = 40 }}]\n",
        server.url()
    );
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &config,
        &[
            "--threshold",
            "http_req_duration{stage:1}: p(99)<300",
            "--threshold",
            "http_req_duration{stage:2}: p(99)<300",
            "--threshold",
            "http_reqs{stage:1}: count>60",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{stderr}");
    assert_eq!(
        verdicts(&summary),
        vec![
            ("http_req_duration{stage:1}: p(99)<300".to_string(), true),
            ("http_req_duration{stage:2}: p(99)<300".to_string(), false),
            ("http_reqs{stage:1}: count>60".to_string(), true),
        ]
    );
    let p99 = summary["thresholds"][1]["observed"]
        .as_f64()
        .expect("observed");
    assert!(p99 > 500.0, "the stall shows in stage 2: {p99}");
}

#[test]
fn thresholds_that_could_never_be_judged_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 10);
    let server = Recorder::start(Behaviour::default());
    for (threshold, expect) in [
        (
            "http_req_duration{tenant:nobody}: p(95)<100",
            "tenant:nobody matches nothing",
        ),
        (
            "http_req_duration{endpoint:GET /pong}: p(95)<100",
            "endpoint:GET /pong matches nothing",
        ),
        (
            "http_req_durations: p(95)<100",
            "column 1: unknown metric `http_req_durations` (did you mean http_req_duration?)",
        ),
        ("http_req_duration: p(95)<100 over 1.5s", "whole number"),
        ("recovery_time: value<1m", "only in `reprise drill`"),
        ("checks{check:nope}: rate>0.9", "check:nope matches nothing"),
        (
            "http_req_duration{stage:2}: p(95)<100",
            "stage:2 matches nothing in this run: its profile has 1 stage",
        ),
    ] {
        let (out, _) = replay(
            dir.path(),
            &dir.path().join("model.json"),
            &flat(&server.url(), 5, 1, ""),
            &["--threshold", threshold],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{threshold}: {stderr}");
        assert!(stderr.contains(expect), "{threshold}: {stderr}");
    }
    assert!(server.seen().is_empty(), "nothing was sent");
}

#[test]
fn a_lost_threshold_with_abort_on_fail_stops_the_run_early() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    let server = Recorder::start(Behaviour {
        delay: Some(Duration::from_millis(60)),
        ..Behaviour::default()
    });
    let toml = flat(
        &server.url(),
        20,
        60,
        "[thresholds]\nhttp_req_duration = [{ threshold = \"p(95)<20 over 2s\", abort_on_fail = true, delay_abort_eval = \"3s\" }]",
    );
    let started = std::time::Instant::now();
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &toml,
        &["--quiet"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped long before 60 s"
    );
    let reason = summary["run"]["aborted"].as_str().expect("aborted");
    assert!(
        reason.contains("http_req_duration: p(95)<20 over 2s") && reason.contains("abort_on_fail"),
        "{reason}"
    );
    assert!(summary["run"]["elapsed_ms"].as_f64().expect("elapsed") < 15_000.0);
    assert_eq!(summary["thresholds"][0]["ok"], false);
}

#[test]
fn custom_checks_count_passes_and_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    // The server answers {"ok":true} with a JSON content type... or not:
    // the recording server sets no content type, so the header check fails.
    let server = Recorder::start(Behaviour::default());
    let toml = flat(
        &server.url(),
        40,
        2,
        r#"
[[checks]]
name = "ok is true"
endpoint = "GET /ping"
status = [200]
json_pointer = "/ok"
json_equals = true

[[checks]]
name = "says hello"
body_contains = "hello"

[[checks]]
name = "has a content type"
header = "content-type"

[[checks]]
name = "fast"
duration_under = "5s"

[thresholds]
"checks{check:ok is true}" = ["rate==1"]
"checks{check:says hello}" = ["rate<0.01"]
"#,
    );
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &toml,
        &["--quiet"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let checks = summary["checks"].as_array().expect("checks");
    let by_name = |n: &str| {
        checks
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("check {n}"))
    };
    let total = summary["requests"]["total"].as_u64().expect("total");
    assert!(total > 50);
    assert_eq!(by_name("status as recorded")["passes"], total);
    assert_eq!(by_name("ok is true")["passes"], total);
    assert_eq!(by_name("says hello")["fails"], total);
    assert_eq!(by_name("has a content type")["fails"], total);
    assert_eq!(by_name("fast")["passes"], total);
    // Mistakes in checks are usage errors.
    let (out, _) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &flat(
            &server.url(),
            5,
            1,
            "[[checks]]\nname = \"x\"\nendpoint = \"GET /nope\"\nstatus = [200]",
        ),
        &["--quiet"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("endpoint `GET /nope` is not in the model"));
    // So are checks that could never pass, or never fail.
    for (check, needle) in [
        ("status = []", "allows no status"),
        ("status = [200, 999]", "status 999 is not an HTTP status"),
        ("body_contains = \"\"", "is in every body"),
        ("duration_under = \"0s\"", "could never pass"),
        (
            "header = \"bad header\"",
            "`bad header` is not a header name",
        ),
    ] {
        let (out, _) = replay(
            dir.path(),
            &dir.path().join("model.json"),
            &flat(
                &server.url(),
                5,
                1,
                &format!("[[checks]]\nname = \"x\"\n{check}"),
            ),
            &["--quiet"],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{check}: {err}");
        assert!(
            err.contains("[[checks]] `x`") && err.contains(needle),
            "{check}: {err}"
        );
    }
}

#[test]
fn a_spike_drill_on_the_demo_target_measures_degradation_and_recovery() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Without `GET /api/me`, which answers 401 to a replay without a login:
    // its share of failures would be noise in every window's error rate.
    util::import(
        dir.path(),
        &[
            util::repo("captures/demo-shop.har.gz")
                .to_str()
                .expect("utf-8"),
            "--exclude",
            "^/api/me$",
        ],
    );
    // One worker, twice slower than by default: requests queue deep in the
    // spike (far above any noise of a busy test machine in the baseline)
    // and the pool drains after.
    let (_rt, target) = util::demo(TargetConfig {
        workers: 1,
        queue: 32,
        service_scale: 2.0,
        ..TargetConfig::default()
    });
    let out = util::reprise()
        .args([
            "drill",
            "spike",
            "model.json",
            "--target",
            &target.url(),
            "--allow-host",
            "127.0.0.1",
            "--tenant-header",
            "x-tenant-id",
            "--methods",
            "GET",
            "--think-scale",
            "0.2",
            "--grace",
            "1s",
            "--baseline",
            "1",
            "--spike",
            "20",
            "--baseline-for",
            "6s",
            "--spike-for",
            "4s",
            "--observe",
            "14s",
            "--sustain",
            "3s",
            "--window",
            "3s",
            "--tolerance",
            "50%",
            "--threshold",
            "recovery_time: value<14s",
            "--out",
            "out",
        ])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(120))
        .output()
        .expect("runs");
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let summary: Value = util::read_json(&dir.path().join("out/summary.json"));
    crate::report::assert_schema(&summary);
    let d = &summary["drill"];
    assert_eq!(
        (d["spike_start_s"].as_u64(), d["spike_end_s"].as_u64()),
        (Some(6), Some(10))
    );
    let base = d["baseline"]["p95_ms"].as_f64().expect("baseline p95");
    let peak = d["peak_p95_ms"].as_f64().expect("peak");
    assert!(
        peak > 2.0 * base,
        "the spike degraded the target: {base} → {peak}"
    );
    let rec = d["recovery_time_ms"].as_f64().expect("recovered");
    assert!(rec < 14_000.0);
    assert_eq!(
        d["recovered_at_s"].as_u64(),
        Some(10 + (rec / 1000.0) as u64)
    );
    assert_eq!(summary["thresholds"][0]["ok"], true);
    assert!(stdout.contains("spike drill: ×1 → ×20"), "{stdout}");
    assert!(stdout.contains("recovered"), "{stdout}");
    // The drill's own flags are checked.
    let bad = util::reprise()
        .args([
            "drill",
            "spike",
            "model.json",
            "--target",
            &target.url(),
            "--spike",
            "3",
            "--rate",
            "2",
        ])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("the drill sets the load itself"));
}

/// A server that answers every request with a status line and headers,
/// then breaks off: `Content-Length: 100` with 10 bytes of body, then a
/// close. Serves `max` connections, then stops.
fn breaking_server(max: usize) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        }
    });
    (url, thread)
}

#[test]
fn a_response_that_breaks_off_is_a_failed_request_whatever_its_status_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 60);
    // 20 sessions/s for 2 s: 40 requests, each on a connection of its own
    // (the server closes every one).
    let (url, server) = breaking_server(1000);
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &flat(&url, 20, 2, ""),
        &["--quiet", "--threshold", "http_req_failed: rate<0.01"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{stderr}");
    let total = summary["requests"]["total"].as_u64().expect("a total");
    assert!(total >= 30, "{total} requests");
    assert_eq!(summary["requests"]["failed"], total, "{summary}");
    assert_eq!(
        verdicts(&summary),
        vec![("http_req_failed: rate<0.01".to_string(), false)]
    );
    // Counted as no answer, not as a 2xx, and the recorded-status check
    // fails with it.
    let by_class = summary["requests"]["by_class"].as_array().expect("classes");
    assert!(by_class.iter().all(|c| c[0] != "2xx"), "{by_class:?}");
    let checks = summary["checks"].as_array().expect("checks");
    assert_eq!(checks[0]["passes"], 0, "{checks:?}");
    // What broke is said: the connection closed inside the body.
    let errors = summary["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{summary}");
    drop(server);
}

/// A body longer than what is kept for checks (1 MiB): a check that fails
/// on its cut end says so, in the summary and on the screen.
#[test]
fn checks_failed_on_a_cut_body_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::path_model(dir.path(), 20, "/big");
    let server = Recorder::start(Behaviour::default());
    let toml = flat(
        &server.url(),
        5,
        2,
        r#"
[[checks]]
name = "has its end"
body_contains = '"end":true'

[[checks]]
name = "has its start"
body_contains = '{"pad":"xxx'
"#,
    );
    let (out, summary) = replay(dir.path(), &dir.path().join("model.json"), &toml, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let checks = summary["checks"].as_array().expect("checks");
    let end = checks
        .iter()
        .find(|c| c["name"] == "has its end")
        .expect("end");
    let total = summary["requests"]["total"].as_u64().expect("total");
    assert!(total >= 5, "{summary}");
    assert_eq!(end["fails"], total, "{end}");
    assert_eq!(end["cut"], total, "{end}");
    let start = checks
        .iter()
        .find(|c| c["name"] == "has its start")
        .expect("start");
    assert_eq!(start["passes"], total, "{start}");
    assert!(start.get("cut").is_none(), "{start}");
    assert!(
        stdout.contains(&format!(
            "{total} of the failures on a body longer than 1 MiB, judged on its first 1 MiB"
        )),
        "{stdout}"
    );
}
