//! `reprise drill spike`: the replay with a spike profile, and the recovery
//! analysis on its timeline (src/drill.rs).

use std::time::Duration;

use anyhow::Result;

use super::replay::run_config;
use crate::cli::{DrillArgs, DrillKind, SpikeArgs};
use crate::config::{RunConfig, UsageError};
use crate::drill::SpikeDrill;
use crate::plan::Mode;
use crate::replay::Interrupts;

pub fn drill(a: DrillArgs, interrupts: &Interrupts) -> Result<u8> {
    match a.kind {
        DrillKind::Spike(s) => spike(*s, interrupts),
    }
}

fn spike(a: SpikeArgs, interrupts: &Interrupts) -> Result<u8> {
    let bad = |m: &str| Err(UsageError(m.to_string()).into());
    if !(a.baseline.is_finite() && a.baseline > 0.0 && a.spike.is_finite() && a.spike > 0.0) {
        return bad(
            "--baseline and --spike are multiples of the recorded arrival rate, more than zero",
        );
    }
    for (flag, v) in [("--baseline", a.baseline), ("--spike", a.spike)] {
        // Multiples of the recorded rate, as --rate is.
        if let Err(m) = crate::plan::limits::check(v, crate::plan::limits::RATE) {
            return bad(&format!("{flag}: {m}"));
        }
    }
    if a.spike <= a.baseline {
        return bad("--spike must be higher than --baseline");
    }
    if a.replay.speed.is_some()
        || a.replay.rate.is_some()
        || a.replay.duration.is_some()
        || a.replay.looped
    {
        return bad(
            "the drill sets the load itself: leave out --speed, --rate, --duration and --loop (use --baseline, --spike, --baseline-for, --spike-for, --observe)",
        );
    }
    let whole = |d: Duration| d.subsec_nanos() == 0 && d >= Duration::from_secs(1);
    if ![a.baseline_for, a.spike_for, a.observe, a.sustain, a.window]
        .into_iter()
        .all(whole)
    {
        return bad(
            "--baseline-for, --spike-for, --observe, --sustain and --window are whole seconds, at least 1s",
        );
    }
    if a.baseline_for < Duration::from_secs(5) {
        return bad("--baseline-for must be at least 5s: the baseline is measured over it");
    }
    if a.sustain > a.observe {
        return bad("--sustain cannot be longer than --observe: recovery could never be seen");
    }
    let d = SpikeDrill {
        baseline: a.baseline,
        spike: a.spike,
        baseline_for: a.baseline_for,
        spike_for: a.spike_for,
        observe: a.observe,
        tolerance: a.tolerance,
        sustain: a.sustain,
        window: a.window,
    };
    let file = match &a.replay.config {
        Some(p) => crate::config::RunFile::load(p)?,
        None => crate::config::RunFile::default(),
    };
    if file.speed.is_some()
        || file.rate.is_some()
        || file.profile.is_some()
        || file.duration.is_some()
        || file.looped.is_some()
    {
        return bad(
            "the drill sets the load itself: the config file's speed, rate, [profile], duration and loop cannot apply (leave them out of the drill's config)",
        );
    }
    let mut cfg = RunConfig::resolve(a.replay, file)?;
    cfg.plan.mode = Mode::Stages(d.profile());
    run_config(cfg, Some(d), interrupts)
}
