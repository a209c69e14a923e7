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
