//! The command line: exit codes, messages that name the place, stdin and
//! gzip, determinism, merging inputs.

use std::io::Write;

use crate::util::synth::{self, Truth};
use crate::util::{import, reprise, text};

fn synthetic_log(dir: &std::path::Path) -> std::path::PathBuf {
    let events = synth::generate(&Truth::standard());
    let p = dir.join("access.log");
    std::fs::write(&p, synth::access_log(&events)).unwrap();
    p
}

fn fails_with(args: &[&str], code: i32, needle: &str) {
    let out = reprise().args(args).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let log = synthetic_log(dir.path());
    let log = log.to_str().unwrap();
    let out = dir.path().join("m.json");
    let out = out.to_str().unwrap();
    fails_with(&["import"], 2, "INPUT");
    fails_with(
        &["import", "no-such-file.log", "-o", out],
        2,
        "no-such-file.log",
    );
    fails_with(
        &["import", log, "-o", out, "--tenant", "bogus:x"],
        2,
        "header:NAME",
    );
    fails_with(
        &["import", log, "-o", out, "--tenant", "path:0"],
        2,
        "path:N",
    );
    fails_with(
        &["import", log, "-o", out, "--session-gap", "soon"],
        2,
        "not a duration",
    );
    fails_with(
        &[
            "import",
            log,
            "-o",
            out,
            "--log-format",
            "$remote_addr $status",
        ],
        2,
        "--log-format: no time field",
    );
    fails_with(
        &["import", log, "-o", out, "--keep-header", "Authorization"],
        2,
        "never kept",
    );
    fails_with(
        &["import", log, "-o", out, "--json-fields", "method=m"],
        2,
        "--json-fields",
    );
    fails_with(&["import", log, "-o", out, "--slot", "x=("], 2, "--slot");
    fails_with(&["import", log, "-o", out, "--format", "bogus"], 2, "bogus");
    fails_with(&["import", "-", "-", "-o", out], 2, "only once");
    fails_with(&["frobnicate"], 2, "frobnicate");
}

/// Numbers a run cannot take, by flag or in the config file: exit 2, the
/// flag or the file and key named, no panic and no endless dry run (the
/// clock overflowed on `--speed 1e-20` and `--think-scale 1e300`).
#[test]
fn replay_settings_out_of_range_exit_2_naming_the_flag_or_the_key() {
    let dir = tempfile::tempdir().unwrap();
    crate::util::ping_model(dir.path(), 10);
    let model = dir.path().join("model.json");
    let model = model.to_str().unwrap();
    let base = [
        "replay",
        model,
        "--target",
        "http://127.0.0.1:9",
        "--dry-run",
    ];
    for (flag, value, needle) in [
        (
            "--speed",
            "1e-20",
            "'--speed <N>': out of range: a number from 0.001",
        ),
        ("--speed", "0", "'--speed <N>': out of range"),
        ("--rate", "1e308", "'--rate <N>': out of range"),
        ("--rate", "NaN", "'--rate <N>': out of range"),
        (
            "--think-scale",
            "1e300",
            "'--think-scale <F>': out of range",
        ),
        ("--duration", "99999999999h", "longer than a run can be"),
        ("--duration", "0s", "longer than zero"),
        ("--tenant", "acme=1e300", "the multiplier: out of range"),
        ("--threads", "100000", "--threads 100000: at most"),
        ("--header", "X-A: a\nb", "cannot hold a line break"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        fails_with(&args, 2, needle);
    }
    for (file, needle) in [
        ("speed = 0", "`speed`: out of range"),
        ("think_scale = -1", "`think_scale`: out of range"),
        ("max_inflight = 0", "`max_inflight` must be at least 1"),
        ("timeout = \"0s\"", "`timeout` must be longer than zero"),
        ("tenants = { acme = 1e300 }", "`tenants.acme`: out of range"),
        (
            "tenant_header = \"bad header\"",
            "`tenant_header`: `bad header` is not a header name",
        ),
        (
            "[profile]\nstart = -2\nstages = [{ duration = \"1m\", target = 1 }]",
            "`profile.start`: out of range",
        ),
        ("[profile]\nstages = []", "[profile] has no stages"),
        (
            "[profile]\nstages = [{ duration = \"1m\", target = 1 }, { duration = \"0s\", target = 2 }]",
            "`profile.stages[1].duration` must be longer than zero",
        ),
        (
            "[profile]\nstages = [{ duration = \"99999999999h\", target = 1 }, { duration = \"99999999999h\", target = 1 }]",
            "`profile.stages`: longer than a run can be",
        ),
    ] {
        let config = dir.path().join("run.toml");
        std::fs::write(&config, file).unwrap();
        let config = config.to_str().unwrap();
        let mut args = base.to_vec();
        args.extend(["--config", config]);
        fails_with(&args, 2, &format!("{config}: {needle}"));
    }
    let drill = [
        "drill",
        "spike",
        model,
        "--target",
        "http://127.0.0.1:9",
        "--dry-run",
    ];
    let mut args = drill.to_vec();
    args.extend(["--spike", "1e12"]);
    fails_with(&args, 2, "--spike: out of range");
    // The drill sets the load: a config's duration or loop would cut it
    // short or contradict it (a 3 s duration ended a drill before its
    // spike).
    for file in ["duration = \"3s\"", "loop = true", "rate = 1"] {
        let config = dir.path().join("drill.toml");
        std::fs::write(&config, file).unwrap();
        let mut args = drill.to_vec();
        args.extend(["--spike", "5", "--config", config.to_str().unwrap()]);
        fails_with(&args, 2, "the drill sets the load itself");
    }
    // At the edges the plan is made (a slow replay is long, not broken).
    let mut args = base.to_vec();
    args.extend(["--speed", "0.001", "--think-scale", "10000"]);
    let out = reprise().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A file that is not there: its name and the reason, said once (the
/// reason was also chained as a source and printed twice).
#[test]
fn a_missing_file_is_named_with_its_reason_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    let gone = gone.to_str().unwrap();
    let model = format!("{gone}.json");
    for args in [
        vec!["import", gone, "-o", &model],
        vec!["replay", &model, "--target", "http://127.0.0.1:9"],
        vec!["inspect", &model],
    ] {
        let out = reprise().args(&args).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(gone), "{args:?}: {err}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    let out = out.to_str().unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, [0u8, 159, 146, 150, 7, 7, 7, 255, 0, 1]).unwrap();
    fails_with(
        &["import", junk.to_str().unwrap(), "-o", out],
        2,
        "junk.bin: cannot tell what format",
    );
    let garbage = dir.path().join("garbage.log");
    std::fs::write(&garbage, "hello\nworld\n").unwrap();
    fails_with(
        &[
            "import",
            garbage.to_str().unwrap(),
            "-o",
            out,
            "--format",
            "clf",
        ],
        2,
        "garbage.log: nothing usable in 2 records",
    );
    let broken = dir.path().join("broken.har");
    std::fs::write(
        &broken,
        "{\"log\": {\"entries\": [\n{\"request\": tru}\n]}}",
    )
    .unwrap();
    fails_with(
        &["import", broken.to_str().unwrap(), "-o", out],
        2,
        "broken.har:2:",
    );
    let gz = dir.path().join("bad.log.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    fails_with(
        &["import", gz.to_str().unwrap(), "-o", out],
        2,
        "bad.log.gz",
    );
    // A model file that is not one.
    let notmodel = dir.path().join("not-model.json");
    std::fs::write(&notmodel, "{\"version\": 1,\n \"capture\": 3}").unwrap();
    fails_with(
        &["inspect", notmodel.to_str().unwrap()],
        2,
        "not-model.json:2:",
    );
    std::fs::write(&notmodel, "{\"version\": 9}").unwrap();
    fails_with(
        &["inspect", notmodel.to_str().unwrap()],
        2,
        "model version 9",
    );
}

#[test]
fn stdin_and_gzip_give_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let log = synthetic_log(dir.path());
    let (plain, _, _) = import(dir.path(), &[log.to_str().unwrap()]);
    let gz = dir.path().join("access.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&log).unwrap()).unwrap();
    enc.finish().unwrap();
    let (zipped, _, _) = import(dir.path(), &[gz.to_str().unwrap()]);
    assert_eq!(plain.tenants, zipped.tenants);
    assert_eq!(plain.endpoints, zipped.endpoints);
    let out = dir.path().join("stdin.json");
    let status = reprise()
        .args(["import", "-q", "-", "-o"])
        .arg(&out)
        .pipe_stdin(&log)
        .unwrap()
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status.stderr));
    let from_stdin = reprise::model::Model::load(&out).unwrap();
    assert_eq!(from_stdin.tenants, plain.tenants);
    assert_eq!(from_stdin.capture.sources[0].name, "<stdin>");
}

/// A `.gz` cut short (a download stopped early, the 8-byte trailer lost)
/// keeps every record before the break, with a warning saying where: it
/// lost everything after the last 1 MiB block, or failed outright.
#[test]
fn a_truncated_gzip_keeps_what_came_before_the_break() {
    let dir = tempfile::tempdir().unwrap();
    let log = synthetic_log(dir.path());
    let (plain, _, _) = import(dir.path(), &[log.to_str().unwrap()]);
    let total = |m: &reprise::model::Model| m.endpoints.iter().map(|e| e.requests).sum::<u64>();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&log).unwrap()).unwrap();
    let zipped = enc.finish().unwrap();
    // The trailer cut off: nothing of the content is lost.
    let gz = dir.path().join("cut.log.gz");
    std::fs::write(&gz, &zipped[..zipped.len() - 8]).unwrap();
    let (model, _, out) = import(dir.path(), &[gz.to_str().unwrap()]);
    assert_eq!(total(&model), total(&plain));
    let said = text(&out.stderr);
    assert!(
        said.contains("broken gzip stream after") && said.contains("everything before it was read"),
        "{said}"
    );
    // Cut in the middle: what came before the break, and no more.
    std::fs::write(&gz, &zipped[..zipped.len() / 2]).unwrap();
    let (half, _, _) = import(dir.path(), &[gz.to_str().unwrap()]);
    assert!(
        total(&half) > total(&plain) / 4 && total(&half) < total(&plain),
        "{} of {}",
        total(&half),
        total(&plain)
    );
}

#[test]
fn same_input_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = synthetic_log(dir.path());
    let (_, a, _) = import(dir.path(), &[log.to_str().unwrap()]);
    let (_, b, _) = import(dir.path(), &[log.to_str().unwrap()]);
    assert!(a == b, "two imports of one input differ");
}

#[test]
fn split_inputs_merge_into_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = synthetic_log(dir.path());
    let all = std::fs::read_to_string(&log).unwrap();
    // Two "servers" behind a balancer, each logging every other request.
    let (mut a, mut b) = (String::new(), String::new());
    for (i, l) in all.lines().enumerate() {
        let side = if i % 2 == 0 { &mut a } else { &mut b };
        side.push_str(l);
        side.push('\n');
    }
    let (pa, pb) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    let (whole, _, _) = import(dir.path(), &[log.to_str().unwrap()]);
    let (merged, _, _) = import(dir.path(), &[pa.to_str().unwrap(), pb.to_str().unwrap()]);
    assert_eq!(merged.capture.requests, whole.capture.requests);
    assert_eq!(
        merged.capture.sessions, whole.capture.sessions,
        "sessions span both files"
    );
    let shapes =
        |m: &reprise::model::Model| m.tenants.iter().map(|t| t.shapes.len()).collect::<Vec<_>>();
    assert_eq!(shapes(&merged), shapes(&whole));
}

#[test]
fn inspect_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let log = synthetic_log(dir.path());
    import(dir.path(), &[log.to_str().unwrap()]);
    let out = reprise()
        .arg("inspect")
        .arg(dir.path().join("model.json"))
        .output()
        .unwrap();
    let s = text(&out.stdout);
    assert!(out.status.success());
    for want in [
        "tenants    by path:2",
        "acme",
        "globex",
        "initech",
        "top endpoints",
        "GET /t/{tenant}/api/products/{id}",
        "top session shapes",
        "arrivals",
        "think p50",
    ] {
        assert!(s.contains(want), "inspect lacks {want:?}:\n{s}");
    }
    let out = reprise()
        .args(["inspect", "--json"])
        .arg(dir.path().join("model.json"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tenants"].as_array().unwrap().len(), 3);
    assert_eq!(v["sessions"], 1200);
}

#[test]
fn import_progress_stays_off_when_stderr_is_not_a_terminal() {
    // CI logs get the per-input summary, not a progress bar's redraws.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, _, out) = crate::util::import(
        dir.path(),
        &[crate::util::repo("captures/demo-shop.har.gz")
            .to_str()
            .expect("utf-8")],
    );
    let stderr = crate::util::text(&out.stderr);
    assert!(!stderr.contains("importing"), "{stderr}");
    assert!(!stderr.contains('\r'), "no redraws: {stderr:?}");
    assert!(
        stderr.contains("read captures/demo-shop.har.gz (har)")
            || stderr.contains("demo-shop.har.gz (har)"),
        "{stderr}"
    );
}

/// `reprise import … 2>&1 | head -1`: stderr closed before the summary is
/// printed. The import still writes its model and exits 0 (it panicked
/// with exit 101).
#[test]
fn a_closed_stderr_does_not_fail_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let log = synthetic_log(dir.path());
    let out = dir.path().join("m.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reprise"))
        .args(["import", log.to_str().unwrap(), "-o"])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(reprise::model::Model::load(&out).is_ok());
}

/// The drill sets the load itself: its help does not offer the replay
/// flags it refuses.
#[test]
fn the_drill_does_not_offer_the_flags_it_refuses() {
    let out = reprise()
        .args(["drill", "spike", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    assert!(help.contains("--spike"), "{help}");
    for flag in ["--speed", "--rate", "--duration", "--loop"] {
        assert!(!help.contains(flag), "{flag} offered: {help}");
    }
    assert!(
        text(
            &reprise()
                .args(["replay", "--help"])
                .output()
                .unwrap()
                .stdout
        )
        .contains("--speed")
    );
}

/// The ```toml blocks of a document, with the line each starts on.
fn toml_blocks(doc: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(crate::util::repo(doc)).expect("reads the doc");
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => open = Some((i + 2, String::new())),
            (Some(_), l) if l.starts_with("```") => blocks.extend(open.take()),
            (Some((_, b)), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

/// Every run config the replay and threshold guides show is accepted as it
/// stands (the demo shop has the tenant and endpoint they name): a user
/// who copies one gets a plan, not exit 2.
#[test]
fn the_documented_run_configs_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    crate::util::demo_model(dir.path());
    let model = dir.path().join("model.json");
    let mut seen = 0;
    for doc in ["docs/replay.md", "docs/thresholds.md"] {
        for (line, block) in toml_blocks(doc) {
            let config = dir.path().join("run.toml");
            std::fs::write(&config, &block).unwrap();
            let out = crate::util::reprise()
                .current_dir(dir.path())
                .args(["replay", model.to_str().unwrap(), "--config"])
                .arg(&config)
                .args([
                    "--target",
                    "http://127.0.0.1:9",
                    "--allow-host",
                    "127.0.0.1",
                ])
                .arg("--dry-run")
                .output()
                .expect("runs");
            assert!(
                out.status.success(),
                "{doc}:{line}: the example is refused ({:?}):\n{block}\n{}",
                out.status.code(),
                crate::util::text(&out.stderr)
            );
            seen += 1;
        }
    }
    assert!(seen >= 6, "found {seen} examples");
}

/// A hand-edited model that replay could not use — durations no clock
/// holds, a method or path that would break the request line, a shape or
/// value past the importer's caps — is refused when it is read, naming the
/// file: exit 2, never a panic (exit 101) or a run that cannot end.
#[test]
fn a_hand_edited_model_out_of_bounds_is_refused_when_read() {
    let dir = tempfile::tempdir().unwrap();
    crate::util::demo_model(dir.path());
    let good: serde_json::Value = crate::util::read_json(&dir.path().join("model.json"));
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 8] = [
        (
            "span",
            |m| m["capture"]["span_ms"] = 1e30.into(),
            "from 0 to 1e15",
        ),
        (
            "gap",
            |m| m["settings"]["session_gap_ms"] = 1e30.into(),
            "from 0 to 1e15",
        ),
        (
            "latency",
            |m| m["endpoints"][0]["latency_ms"]["mean"] = 1e30.into(),
            "is not a duration in milliseconds",
        ),
        (
            "think",
            |m| m["tenants"][0]["think_ms"]["p50"] = (-1e12).into(),
            "think_ms",
        ),
        (
            "method",
            |m| m["endpoints"][0]["method"] = "GET /smuggled HTTP/1.1\r\nX: y\r\n\r\nGET".into(),
            "not an HTTP method",
        ),
        (
            "path",
            |m| m["endpoints"][0]["path"] = "/api\r\nX-Injected: yes".into(),
            "no spaces or control characters",
        ),
        (
            "shape",
            |m| m["tenants"][0]["shapes"][0]["steps"] = vec![0; 5000].into(),
            "a shape of 5000 steps",
        ),
        (
            "value",
            |m| {
                m["tenants"][0]["pools"]["products.id"]["values"][0][0] = "9".repeat(100_000).into()
            },
            "values hold at most",
        ),
    ];
    for (name, edit, expect) in cases {
        let mut m = good.clone();
        edit(&mut m);
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, m.to_string()).unwrap();
        for args in [
            vec!["inspect", file.to_str().unwrap()],
            vec![
                "replay",
                file.to_str().unwrap(),
                "--target",
                "http://127.0.0.1:9",
                "--allow-host",
                "127.0.0.1",
                "--dry-run",
            ],
        ] {
            let out = crate::util::reprise().args(&args).output().expect("runs");
            let stderr = crate::util::text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("{name}.json")) && stderr.contains(expect),
                "{name} {args:?}: {stderr}"
            );
        }
    }
    // What the importer itself writes stays accepted: `OPTIONS *` (Apache's
    // internal pings), and a 20 KB query value.
    let mut m = good.clone();
    m["endpoints"][0]["path"] = "*".into();
    m["tenants"][0]["pools"]["products.id"]["values"][0][0] = "q".repeat(20_000).into();
    let file = dir.path().join("importable.json");
    std::fs::write(&file, m.to_string()).unwrap();
    let out = crate::util::reprise()
        .args(["inspect", file.to_str().unwrap()])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", crate::util::text(&out.stderr));
}

/// A request whose path is longer than a model holds (64 KiB) is left out
/// at import and counted, so the importer never writes a model that replay
/// then refuses.
#[test]
fn a_path_too_long_for_a_model_is_left_out_at_import() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let long = "a".repeat(70_000);
    std::fs::write(
        &log,
        format!(
            "10.0.0.1 - - [10/Jan/2026:10:00:00 +0000] \"GET /ok HTTP/1.1\" 200 2 \"-\" \"ua\"\n\
             10.0.0.1 - - [10/Jan/2026:10:00:01 +0000] \"GET /{long} HTTP/1.1\" 414 2 \"-\" \"ua\"\n"
        ),
    )
    .unwrap();
    let (model, _, _) = crate::util::import(dir.path(), &[log.to_str().unwrap()]);
    assert_eq!(model.capture.requests, 1);
    assert_eq!(
        model.capture.filtered.get("path longer than 64 KiB"),
        Some(&1)
    );
    let out = crate::util::reprise()
        .args(["inspect", dir.path().join("model.json").to_str().unwrap()])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", crate::util::text(&out.stderr));
}
