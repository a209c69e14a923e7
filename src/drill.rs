//! Spike-recovery drills: baseline load, a spike of N× for a while, the
//! baseline again — and how long the target takes to get back to its
//! baseline once the spike is over.
//!
//! The analysis works on the per-second timeline. The baseline is measured
//! over the last four fifths of the baseline phase (the first fifth warms
//! connections and caches). From the end of the spike, each second is
//! judged on a trailing window (never reaching back into the spike): its
//! p95 of http_req_duration within `tolerance` of the baseline p95 (and
//! never stricter than baseline + 5 ms) and its error rate within tolerance
//! of the baseline's (never stricter than baseline + 1 percentage point). The target has recovered
//! at the first second of the first good window in a stretch of good
//! seconds at least `sustain` long; `recovery_time` is that second minus
//! the end of the spike. A target that flaps in and out keeps the clock running; one that
//! never holds for `sustain` before the observation ends did not recover,
//! and the drill fails.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metrics::{Tick, Timeline};
use crate::plan::{Profile, Stage, Unit};

/// The drill's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeDrill {
    /// Multipliers of the recorded arrival rate.
    pub baseline: f64,
    pub spike: f64,
    pub baseline_for: Duration,
    pub spike_for: Duration,
    pub observe: Duration,
    /// Allowed relative degradation against the baseline (0.2 = 20%).
    pub tolerance: f64,
    pub sustain: Duration,
    /// Trailing window each second after the spike is judged on.
    pub window: Duration,
}

/// Below this, a p95 difference is noise, whatever the tolerance says.
const P95_SLACK_MS: f64 = 5.0;

/// A step between rates: short enough to be a step, long enough to be a
/// stage.
const STEP: Duration = Duration::from_millis(1);

impl SpikeDrill {
    /// The load profile: baseline, a step up, the spike, a step down, the
    /// observation.
    pub fn profile(&self) -> Profile {
        let s = |duration: Duration, target: f64| Stage { duration, target };
        Profile {
            unit: Unit::Multiplier,
            start: self.baseline,
            stages: vec![
                s(self.baseline_for, self.baseline),
                s(STEP, self.spike),
                s(self.spike_for.saturating_sub(STEP), self.spike),
                s(STEP, self.baseline),
                s(self.observe.saturating_sub(STEP), self.baseline),
            ],
        }
    }

    /// The load in words (its profile's 1 ms steps left out).
    pub fn describe(&self) -> String {
        let d = crate::output::human_duration;
        format!(
            "spike drill ×{} for {}, ×{} for {}, ×{} observed for {}",
            self.baseline,
            d(self.baseline_for),
            self.spike,
            d(self.spike_for),
            self.baseline,
            d(self.observe)
        )
    }

    pub fn spike_start(&self) -> u64 {
        self.baseline_for.as_secs()
    }

    pub fn spike_end(&self) -> u64 {
        (self.baseline_for + self.spike_for).as_secs()
    }

    pub fn end(&self) -> u64 {
        (self.baseline_for + self.spike_for + self.observe).as_secs()
    }
}

/// p95 and error rate of a stretch of seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub requests: u64,
    pub p95_ms: Option<f64>,
    pub error_rate: f64,
}

impl Health {
    fn of(t: &Tick) -> Health {
        let c = &t.counts;
        Health {
            requests: c.requests,
            p95_ms: (!t.duration.is_empty()).then(|| {
                t.duration
                    .median_equivalent(t.duration.value_at_quantile(0.95)) as f64
                    / 1000.0
            }),
            error_rate: if c.requests == 0 {
                0.0
            } else {
                round6(c.failed as f64 / c.requests as f64)
            },
        }
    }
}

/// What the drill found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub baseline_multiplier: f64,
    pub spike_multiplier: f64,
    pub spike_start_s: u64,
    pub spike_end_s: u64,
    pub observe_end_s: u64,
    pub tolerance: f64,
    #[serde(rename = "sustain_ms", with = "crate::metrics::ms")]
    pub sustain: Duration,
    #[serde(rename = "window_ms", with = "crate::metrics::ms")]
    pub window: Duration,
    pub baseline: Health,
    /// Over the spike.
    pub spike: Health,
    /// The worst trailing-window p95 from the spike's start to the end.
    pub peak_p95_ms: Option<f64>,
    pub spike_sessions_dropped: u64,
    /// The limits a second was judged against.
    pub p95_limit_ms: Option<f64>,
    pub error_rate_limit: f64,
    /// Seconds into the run when the target was back, and since the spike's
    /// end; none when it did not recover within the observation.
    pub recovered_at_s: Option<u64>,
    #[serde(
        serialize_with = "ser_opt_ms",
        deserialize_with = "de_opt_ms",
        rename = "recovery_time_ms"
    )]
    pub recovery_time: Option<Duration>,
    /// In words: recovered in Ns, or why not.
    pub verdict: String,
}

fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => crate::metrics::ser_ms(d, s),
        None => s.serialize_none(),
    }
}

fn de_opt_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let ms = Option::<f64>::deserialize(d)?;
    ms.map(|ms| {
        crate::model::time::millis(ms)
            .ok_or_else(|| serde::de::Error::custom("a duration in milliseconds, from 0 to 1e15"))
    })
    .transpose()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn merged(timeline: &Timeline, from: u64, to: u64) -> Tick {
    let mut t = Tick::new(from);
    for (_, tick) in timeline.between(from, to) {
        t.merge(tick);
    }
    t
}

/// Analyses a drill's timeline.
/// The most of its requests the baseline may fail and still be a state to
/// recover to.
const MAX_BASELINE_ERRORS: f64 = 0.5;

pub fn analyse(d: &SpikeDrill, timeline: &Timeline) -> DrillReport {
    let (start, end, stop) = (d.spike_start(), d.spike_end(), d.end());
    let warm = start / 5;
    let baseline = Health::of(&merged(timeline, warm, start));
    let spike_tick = merged(timeline, start, end);
    let spike = Health::of(&spike_tick);
    let p95_limit = baseline
        .p95_ms
        .map(|p| round6((p * (1.0 + d.tolerance)).max(p + P95_SLACK_MS)));
    let err_limit =
        round6((baseline.error_rate * (1.0 + d.tolerance)).max(baseline.error_rate + 0.01));
    let w = d.window.as_secs().max(1);
    let trailing = |s: u64, floor: u64| {
        Health::of(&merged(timeline, s.saturating_sub(w - 1).max(floor), s + 1))
    };
    let peak_p95 = (start..stop)
        .filter_map(|s| trailing(s, start).p95_ms)
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))));
    let good = |s: u64| {
        let h = trailing(s, end);
        h.requests > 0
            && p95_limit.is_some_and(|l| h.p95_ms.is_some_and(|p| p <= l))
            && h.error_rate <= err_limit
    };
    let sustain = d.sustain.as_secs().max(1);
    // A baseline that mostly failed is nothing to recover to: a target
    // failing every request would otherwise "recover" at once.
    let unhealthy = baseline.error_rate > MAX_BASELINE_ERRORS;
    let mut recovered = None;
    let mut run_start = None;
    for s in (end..stop).filter(|_| !unhealthy) {
        if good(s) {
            let r = *run_start.get_or_insert(s);
            if s + 1 - r >= sustain {
                // The first good window ends at `r` but its evidence
                // starts `w - 1` seconds before: the target was back
                // then, not once the window had slid past the bad
                // seconds (which added `--window` − 1 s to every result).
                recovered = Some(r.saturating_sub(w - 1).max(end));
                break;
            }
        } else {
            run_start = None;
        }
    }
    let recovery_time = recovered.map(|r| Duration::from_secs(r - end));
    let verdict = match (recovered, baseline.p95_ms) {
        (_, None) => "no baseline: no request completed before the spike".to_string(),
        _ if unhealthy => format!(
            "no healthy baseline: {:.0}% of the requests before the spike failed",
            baseline.error_rate * 100.0
        ),
        (Some(_), _) => format!(
            "recovered {} after the spike (held for {})",
            crate::output::human_duration(recovery_time.unwrap_or_default()),
            crate::output::human_duration(Duration::from_secs(sustain))
        ),
        (None, _) => format!(
            "did not recover within the observation window ({}): p95 and error rate did not stay within {:.0}% of the baseline for {}",
            crate::output::human_duration(d.observe),
            d.tolerance * 100.0,
            crate::output::human_duration(Duration::from_secs(sustain))
        ),
    };
    DrillReport {
        baseline_multiplier: d.baseline,
        spike_multiplier: d.spike,
        spike_start_s: start,
        spike_end_s: end,
        observe_end_s: stop,
        tolerance: d.tolerance,
        sustain: d.sustain,
        window: d.window,
        baseline,
        spike,
        peak_p95_ms: peak_p95,
        spike_sessions_dropped: spike_tick.counts.sessions_dropped,
        p95_limit_ms: p95_limit,
        error_rate_limit: err_limit,
        recovered_at_s: recovered,
        recovery_time,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Measured, Recorder};

    fn drill() -> SpikeDrill {
        SpikeDrill {
            baseline: 1.0,
            spike: 5.0,
            baseline_for: Duration::from_secs(30),
            spike_for: Duration::from_secs(10),
            observe: Duration::from_secs(60),
            tolerance: 0.2,
            sustain: Duration::from_secs(10),
            window: Duration::from_secs(5),
        }
    }

    /// A timeline: each second, 50 requests of `ms(s)`, `failed(s)` failing.
    fn timeline(seconds: u64, ms: impl Fn(u64) -> f64, failed: impl Fn(u64) -> u64) -> Timeline {
        let mut tl = Timeline::default();
        let mut rec = Recorder::default();
        for s in 0..seconds {
            for i in 0..50 {
                let fail = i < failed(s);
                let d = Duration::from_secs_f64(ms(s) / 1000.0);
                rec.request(
                    &Measured {
                        endpoint: 0,
                        tenant: 0,
                        status: Some(if fail { 503 } else { 200 }),
                        error: None,
                        duration: d,
                        service: d,
                        lag: Duration::ZERO,
                        waiting: None,
                        receiving: None,
                        connecting: None,
                        tls: None,
                        bytes_received: 0,
                        bytes_sent: 0,
                    },
                    None,
                );
            }
            let mut t = rec.take_tick(s + 1, 0, 0);
            t.second = s;
            tl.add(t);
        }
        tl
    }

    #[test]
    fn the_profile_steps() {
        assert_eq!(
            drill().describe(),
            "spike drill ×1 for 30.0s, ×5 for 10.0s, ×1 observed for 1m 00s"
        );
        let p = drill().profile();
        assert_eq!(p.length(), Duration::from_secs(100));
        assert_eq!(p.at(10.0), 1.0);
        assert!((p.at(35.0) - 5.0).abs() < 1e-9);
        assert!((p.at(45.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_target_failing_throughout_has_no_baseline_to_recover_to() {
        let tl = timeline(100, |_| 5.0, |_| 50);
        let r = analyse(&drill(), &tl);
        assert_eq!(r.baseline.error_rate, 1.0);
        assert_eq!(r.recovered_at_s, None);
        assert!(
            r.verdict.starts_with("no healthy baseline: 100%"),
            "{}",
            r.verdict
        );
    }

    #[test]
    fn recovers() {
        // 20 ms at baseline, 400 ms and 20% errors in the spike, then back
        // to 20 ms 12 s after the spike ends (second 52).
        let tl = timeline(
            100,
            |s| if (30..52).contains(&s) { 400.0 } else { 20.0 },
            |s| if (30..40).contains(&s) { 10 } else { 0 },
        );
        let r = analyse(&drill(), &tl);
        assert_eq!(r.baseline.error_rate, 0.0);
        assert!((19.0..=21.0).contains(&r.baseline.p95_ms.unwrap()));
        assert!((0.19..=0.21).contains(&r.spike.error_rate));
        assert!(r.peak_p95_ms.unwrap() >= 399.0);
        // The first trailing window free of slow seconds is 52..=56: the
        // target was back at 52, 12 s after the spike, whatever the window.
        assert_eq!(r.recovered_at_s, Some(52));
        assert_eq!(r.recovery_time, Some(Duration::from_secs(12)));
        for w in [1, 3, 10] {
            let d = SpikeDrill {
                window: Duration::from_secs(w),
                ..drill()
            };
            assert_eq!(analyse(&d, &tl).recovered_at_s, Some(52), "window {w}s");
        }
        assert!(
            r.verdict.starts_with("recovered 12.0s after"),
            "{}",
            r.verdict
        );
    }

    #[test]
    fn never_recovers() {
        let tl = timeline(100, |s| if s >= 30 { 400.0 } else { 20.0 }, |_| 0);
        let r = analyse(&drill(), &tl);
        assert_eq!(r.recovery_time, None);
        assert!(
            r.verdict
                .starts_with("did not recover within the observation window (1m 00s)"),
            "{}",
            r.verdict
        );
    }

    #[test]
    fn flapping_keeps_the_clock_running() {
        // After the spike (second 40): good for 5 s, bad for 3, good for
        // 6, bad for 1, good from second 55 on.
        let bad = |s: u64| (30..40).contains(&s) || (45..48).contains(&s) || s == 54;
        let d = SpikeDrill {
            window: Duration::from_secs(1),
            ..drill()
        };
        let tl = timeline(100, |s| if bad(s) { 400.0 } else { 20.0 }, |_| 0);
        let r = analyse(&d, &tl);
        assert_eq!(r.recovered_at_s, Some(55), "{r:?}");
        assert_eq!(r.recovery_time, Some(Duration::from_secs(15)));
        // Errors alone also count against recovery.
        let tl = timeline(100, |_| 20.0, |s| if (30..70).contains(&s) { 5 } else { 0 });
        let r = analyse(&d, &tl);
        assert_eq!(r.recovered_at_s, Some(70));
    }
}
