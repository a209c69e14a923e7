//! Wires the stages together for each command. The only place that uses
//! `anyhow`, and the only place that knows about exit codes.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use crate::capture::{self, CaptureError, InputStats, Merged};
use crate::cli::{Cli, Command, DemoTargetArgs, ImportArgs, InspectArgs};
use crate::config::{ImportConfig, UsageError};
use crate::demo::{DemoTarget, TargetConfig};
use crate::inspect;
use crate::model::{self, Model, ModelError, Modeller, Preparer};
use crate::output::{human_duration, thousands, write_atomic};

/// Exit codes (docs/exit-codes.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const THRESHOLDS: u8 = 99;
}

/// Runs a command; the exit code on success.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Import(a) => import(*a),
        Command::Inspect(a) => inspect_model(a),
        Command::DemoTarget(a) => demo_target(a),
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

fn demo_target(a: DemoTargetArgs) -> Result<u8> {
    if a.workers == 0 || !(a.service_scale.is_finite() && a.service_scale >= 0.0) {
        return Err(UsageError(
            "--workers must be at least 1 and --service-scale a non-negative number".into(),
        )
        .into());
    }
    let cfg = TargetConfig {
        workers: a.workers,
        queue: a.queue,
        service_scale: a.service_scale,
        token_ttl: a.token_ttl,
        require_auth: a.require_auth,
        password: a.password,
    };
    runtime()?.block_on(async {
        let target = DemoTarget::start(a.listen, cfg)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        println!("demo target listening on {}", target.url());
        let _ = std::io::stdout().flush();
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        target.stop().await;
        Ok(exit::OK)
    })
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
        if cause.is::<ModelError>() || cause.is::<UsageError>() {
            return exit::BAD_INPUT;
        }
    }
    exit::FAILURE
}

fn import(args: ImportArgs) -> Result<u8> {
    let cfg = ImportConfig::from_args(args)?;
    let read_opts = Arc::new(cfg.read.clone());
    let inputs = cfg
        .sources
        .iter()
        .map(capture::open)
        .collect::<Result<Vec<_>, _>>()?;
    let mut model_opts = cfg.model.clone();
    if model_opts.tenant_rules_automatic {
        let sample = capture::sample(&inputs, &read_opts, model::build::SAMPLE);
        model_opts.tenant_rules = model::build::choose_tenant_rules(&model_opts, &sample);
    }
    let mut modeller = Modeller::new(model_opts);
    let shared = modeller.options();
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
    while let Some((i, item)) = merged.next()? {
        modeller.add_prepared(i, &item.x, &item.prep);
    }
    let stats = merged.into_stats();
    modeller.settle();
    if !cfg.quiet {
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
        eprintln!(
            "warning: every request read was left out ({}); the model is empty. --keep-assets keeps static files.",
            why.join(", ")
        );
    }
    write_atomic(&cfg.output, model.to_json().as_bytes())
        .with_context(|| format!("writing {}", cfg.output.display()))?;
    if !cfg.quiet {
        report_model(&model, &cfg.output);
    }
    Ok(exit::OK)
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
            if s.place == "entry" {
                "entries"
            } else {
                "lines"
            },
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
    eprintln!(
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
