//! Wires the stages together for each command. The only place that uses
//! `anyhow`, and the only place that knows about exit codes.

mod demo;
mod drill;
pub mod replay;

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use crate::capture::{self, CaptureError, Input, InputStats, Merged, ReadOptions};
use crate::cli::{Cli, Command, ImportArgs, InspectArgs};
use crate::config::{ImportConfig, UsageError};
use crate::inspect;
use crate::model::{self, Model, ModelError, ModelOptions, Modeller, Preparer};
use crate::output::{human_duration, thousands, write_atomic};
use crate::plan::PlanError;
use crate::replay::Interrupts;

/// Exit codes (docs/exit-codes.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const THRESHOLDS: u8 = 99;
    /// Stopped by Ctrl-C (128 + SIGINT, as shells report it); the results
    /// gathered so far were written.
    pub const INTERRUPTED: u8 = 130;
}

/// Runs a command; the exit code on success. Ctrl-C presses are delivered
/// through `interrupts` (main owns the signal handler).
pub fn run(cli: Cli, interrupts: &Interrupts) -> Result<u8> {
    match cli.command {
        Command::Import(a) => import(*a),
        Command::Inspect(a) => inspect_model(a),
        Command::Replay(a) => replay::replay(*a, interrupts),
        Command::DemoTarget(a) => demo::demo_target(a),
        Command::Demo(a) => demo::demo(a, interrupts),
        Command::Drill(a) => drill::drill(a, interrupts),
        Command::Report(a) => report(a),
    }
}

/// The async runtime for commands that need one: as many workers as CPUs
/// this process may run on (`available_parallelism` honours the affinity
/// mask, so `taskset -c 0` gives one worker).
fn runtime() -> Result<tokio::runtime::Runtime> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The exit code for an error: bad usage or input is 2, anything else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<CaptureError>() {
            return if c.is_bad_input() {
                exit::BAD_INPUT
            } else {
                exit::FAILURE
            };
        }
        if cause.is::<ModelError>() || cause.is::<UsageError>() || cause.is::<PlanError>() {
            return exit::BAD_INPUT;
        }
    }
    exit::FAILURE
}

fn import(args: ImportArgs) -> Result<u8> {
    let cfg = ImportConfig::from_args(args)?;
    let inputs = cfg
        .sources
        .iter()
        .map(capture::open)
        .collect::<Result<Vec<_>, _>>()?;
    let model = build_model(inputs, &cfg.read, cfg.model.clone(), cfg.quiet)?;
    write_atomic(&cfg.output, model.to_json().as_bytes())
        .with_context(|| format!("writing {}", cfg.output.display()))?;
    if !cfg.quiet {
        report_model(&model, &cfg.output);
    }
    Ok(exit::OK)
}

/// Reads the inputs in parallel and models them; says what was read unless
/// `quiet`.
fn build_model(
    inputs: Vec<Input>,
    read: &ReadOptions,
    mut model_opts: ModelOptions,
    quiet: bool,
) -> Result<Model> {
    let read_opts = Arc::new(read.clone());
    if model_opts.tenant_rules_automatic {
        let sample = capture::sample(&inputs, &read_opts, model::build::SAMPLE);
        model_opts.tenant_rules = model::build::choose_tenant_rules(&model_opts, &sample);
    }
    let mut modeller = Modeller::new(model_opts);
    let shared = modeller.options();
    let mut progress = ImportProgress::new(&inputs, quiet);
    let streams = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let shared = shared.clone();
            capture::spawn(input, read_opts.clone(), move || {
                let mut preparer = Preparer::new(shared.clone());
                move |x: &capture::Exchange, p: &mut model::Prep| preparer.prepare(i, x, p)
            })
        })
        .collect();
    let mut merged = Merged::new(streams);
    while let Some((i, item)) = merged.next_warming(|ahead| {
        ahead.prep.warm(&ahead.x);
        modeller.warm(&ahead.prep);
    })? {
        modeller.add_prepared(i, &item.x, &item.prep);
        progress.entry();
    }
    progress.done();
    let stats = merged.into_stats();
    modeller.settle();
    if !quiet {
        report_inputs(&stats, &modeller);
    }
    let model = modeller
        .finish(&stats)
        .ok_or_else(|| anyhow!("no exchange was read"))?;
    if model.capture.requests == 0 {
        let why: Vec<String> = model
            .capture
            .filtered
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        crate::say!(
            "warning: every request read was left out ({}); the model is empty. --keep-assets keeps static files.",
            why.join(", ")
        );
    }
    Ok(model)
}

/// A progress bar for long imports, on a terminal only: bytes read of the
/// inputs' total and entries per second. Nothing when stderr is not a
/// terminal (CI logs keep the per-input summary that follows).
struct ImportProgress {
    bar: Option<indicatif::ProgressBar>,
    inputs: Vec<capture::ReadProgress>,
    entries: u64,
    started: std::time::Instant,
}

impl ImportProgress {
    fn new(inputs: &[Input], quiet: bool) -> ImportProgress {
        use std::io::IsTerminal;
        let progress: Vec<capture::ReadProgress> =
            inputs.iter().map(|i| i.progress.clone()).collect();
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let total: Option<u64> = progress.iter().map(|p| p.size).sum();
            let b = match total {
                Some(t) => indicatif::ProgressBar::new(t).with_style(
                    indicatif::ProgressStyle::with_template(
                        "importing {bar:30.cyan/blue} {binary_bytes}/{binary_total_bytes} {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                ),
                None => indicatif::ProgressBar::new_spinner().with_style(
                    indicatif::ProgressStyle::with_template(
                        "importing {spinner} {binary_bytes} {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                ),
            };
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
            b
        });
        ImportProgress {
            bar,
            inputs: progress,
            entries: 0,
            started: std::time::Instant::now(),
        }
    }

    fn entry(&mut self) {
        self.entries += 1;
        if self.entries.is_multiple_of(8192) {
            self.show();
        }
    }

    fn show(&self) {
        if let Some(b) = &self.bar {
            b.set_position(self.inputs.iter().map(|p| p.bytes_read()).sum());
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!(
                "{} entries, {}/s",
                thousands(self.entries),
                thousands((self.entries as f64 / secs) as u64)
            ));
        }
    }

    fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn report_inputs(stats: &[InputStats], modeller: &Modeller) {
    let mut err = std::io::stderr().lock();
    for (i, s) in stats.iter().enumerate() {
        let format = s.format.map_or("?", |f| f.name());
        let _ = write!(
            err,
            "read {} ({format}): {} {}, {} accepted",
            s.name,
            thousands(s.records),
            s.records_name(),
            thousands(s.accepted)
        );
        if s.skipped_total() > 0 {
            let _ = write!(
                err,
                ", {} skipped ({})",
                thousands(s.skipped_total()),
                s.skip_summary()
            );
        }
        let _ = writeln!(err);
        for (n, reason) in &s.first_skips {
            let _ = writeln!(err, "  skipped {}: {reason}", s.location(*n));
        }
        for line in s.pcap.iter().flat_map(|t| t.describe()) {
            let _ = writeln!(err, "  {line}");
        }
        if let Some(f) = modeller.filtered(i) {
            let parts: Vec<String> = f
                .iter()
                .map(|(r, n)| format!("{r}: {}", thousands(*n)))
                .collect();
            let _ = writeln!(err, "  left out {}", parts.join(", "));
        }
        let t = modeller.tally(i);
        if let Some((a, b)) = s.span {
            let _ = writeln!(
                err,
                "  {} → {} ({}), {} requests modelled, {} sessions, tenants: {}",
                a,
                b,
                human_duration(b.saturating_since(a)),
                thousands(t.requests),
                thousands(t.sessions),
                t.tenants
                    .iter()
                    .take(8)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for w in &s.warnings {
            let _ = writeln!(err, "  warning: {w}");
        }
    }
}

fn report_model(m: &Model, out: &std::path::Path) {
    let rules = if m.settings.tenant_rules.is_empty() {
        "no tenant rule matched: one default tenant".to_string()
    } else {
        format!(
            "tenants by {}{}",
            m.settings.tenant_rules.join(", "),
            if m.settings.tenant_rules_automatic {
                " (automatic)"
            } else {
                ""
            }
        )
    };
    crate::say!(
        "model: {} requests, {} sessions, {} endpoints, {} tenants; {rules}\nwrote {}",
        thousands(m.capture.requests),
        thousands(m.capture.sessions),
        m.endpoints.len(),
        m.tenants.len(),
        out.display()
    );
}

fn inspect_model(a: InspectArgs) -> Result<u8> {
    let model = Model::load(&a.model)?;
    let summary = inspect::summarise(&model, a.top);
    let text = if a.json {
        serde_json::to_string_pretty(&summary).map_err(|e| anyhow!(e))? + "\n"
    } else {
        inspect::render(&summary)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(exit::OK)
}

/// `reprise report DIR`: a saved run through the same exporters as a live
/// one.
fn report(a: crate::cli::ReportArgs) -> Result<u8> {
    let mut results = crate::report::load(&a.dir)?;
    let outputs = replay::Outputs {
        dir: None,
        junit: a.junit.clone(),
        html: a.html.clone(),
    };
    // A path that cannot take the file is the caller's mistake (exit 2).
    outputs.check()?;
    let mut failed = 0;
    if let Some(base) = &a.baseline {
        // A new baseline replaces the run's own comparison and its verdicts.
        results
            .thresholds
            .retain(|v| !v.threshold.starts_with(crate::threshold::REGRESSION));
        let before = results.thresholds.len();
        let then = crate::report::load(base)?;
        let union = |a: &[String], b: &[String]| {
            let mut all: Vec<String> = a.iter().chain(b).cloned().collect();
            all.sort();
            all.dedup();
            all
        };
        let endpoints = union(&results.names.endpoints, &then.names.endpoints);
        let tenants = union(&results.names.tenants, &then.names.tenants);
        let checks = union(&results.check_names, &then.check_names);
        let known = crate::threshold::Known {
            endpoints: &endpoints,
            tenants: &tenants,
            checks: &checks,
            drill: results.drill.is_some() || then.drill.is_some(),
            // A regression compares a stage both runs have.
            stages: results.stages.len().min(then.stages.len()) + 1,
            comparing: true,
        };
        crate::threshold::validate_regressions(&a.max_regressions, &known).map_err(UsageError)?;
        replay::against_baseline(
            &mut results,
            &then,
            &base.display().to_string(),
            &a.max_regressions,
        );
        failed = results.thresholds[before..]
            .iter()
            .filter(|v| !v.ok)
            .count();
    }
    let run = crate::report::Run::new(&results);
    outputs.write_files(&run)?;
    let out = if a.json {
        crate::report::Exporter::render(&crate::report::JsonSummary, &run)?
    } else {
        crate::report::terminal::render(&run.summary, a.top).into_bytes()
    };
    std::io::stdout().lock().write_all(&out)?;
    if failed > 0 {
        crate::say!(
            "error: {failed} of {} regression limits exceeded (exit code {})",
            a.max_regressions.len(),
            exit::THRESHOLDS
        );
        return Ok(exit::THRESHOLDS);
    }
    Ok(exit::OK)
}
