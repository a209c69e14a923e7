//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod pcapgen;
pub mod server;
pub mod synth;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use reprise::model::Model;

/// The reprise binary, quiet about colours.
pub fn reprise() -> Command {
    let mut c = Command::cargo_bin("reprise").expect("binary built");
    c.env("NO_COLOR", "1");
    c
}

/// `reprise replay model.json --config run.toml --out out` in `dir`, with a
/// two-minute bound: the shape of most end-to-end runs.
pub fn replay_in(dir: &Path) -> Command {
    let mut c = reprise();
    c.args([
        "replay",
        "model.json",
        "--config",
        "run.toml",
        "--out",
        "out",
    ])
    .current_dir(dir)
    .timeout(std::time::Duration::from_secs(120));
    c
}

/// The shared corpus of real captures (`../shared/corpus`). Tests that need
/// it skip loudly without it, unless REPRISE_REQUIRE_CORPUS is set (CI).
pub fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("REPRISE_REQUIRE_CORPUS").is_some() {
        panic!("../shared/corpus is required (REPRISE_REQUIRE_CORPUS is set) but missing");
    }
    eprintln!("SKIPPED: ../shared/corpus not found next to the repository");
    None
}

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A JSON file, read and parsed; panics naming the file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A summary's metric by name (`http_req_duration`, ...); panics when absent.
pub fn metric<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `reprise import ARGS -o <tmp>/model.json`; returns the model, the raw
/// model file and the process output. Panics if the import fails.
pub fn import(dir: &Path, args: &[&str]) -> (Model, String, Output) {
    let out_path = dir.join("model.json");
    let out = reprise()
        .arg("import")
        .args(args)
        .arg("-o")
        .arg(&out_path)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "import {args:?} failed: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    let raw = std::fs::read_to_string(&out_path).expect("model written");
    let model = Model::from_json("model.json", raw.as_bytes()).expect("model loads");
    (model, raw, out)
}

/// Share of `part` in `whole` as a fraction.
pub fn share(part: u64, whole: u64) -> f64 {
    part as f64 / whole.max(1) as f64
}

/// Imports a model of one `GET /ping` session per second for `n` seconds
/// (each from its own client) into `dir`/model.json.
pub fn ping_model(dir: &Path, n: u32) {
    path_model(dir, n, "/ping");
}

/// Imports a model of one `GET PATH` session per second for `n` seconds.
pub fn path_model(dir: &Path, n: u32, path: &str) {
    let mut log = String::new();
    for i in 0..n {
        log.push_str(&format!(
            "10.0.{}.{} - - [01/Jan/2026:00:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" 200 2 \"-\" \"probe\"\n",
            i / 250,
            i % 250 + 1,
            i / 60 % 60,
            i % 60
        ));
    }
    let file = dir.join("access.log");
    std::fs::write(&file, log).expect("writes");
    import(dir, &[file.to_str().expect("utf-8")]);
}

/// The demo target on a runtime of its own, with `cfg`.
pub fn demo(
    cfg: reprise::demo::TargetConfig,
) -> (tokio::runtime::Runtime, reprise::demo::DemoTarget) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let target = rt
        .block_on(reprise::demo::DemoTarget::start(
            ([127, 0, 0, 1], 0).into(),
            cfg,
        ))
        .expect("demo target starts");
    (rt, target)
}

pub fn demo_model(dir: &Path) {
    import(
        dir,
        &[repo("captures/demo-shop.har.gz").to_str().expect("utf-8")],
    );
}
