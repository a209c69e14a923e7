//! Bounded summaries: what lets the model grow with the model, not the input.
//!
//! Distributions are kept as exact HDR histograms where few are needed (per
//! tenant) and as fixed-size reservoirs where many are (per transition, per
//! endpoint); arrival series coarsen their buckets instead of growing; value
//! pools stop admitting new values at a cap and count the rest. All of them
//! are deterministic: the same input in the same order gives the same model.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::time::{Timestamp, round3};

/// A distribution of durations (or counts), summarised by quantiles, in
/// milliseconds for durations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub count: u64,
    pub min: f64,
    pub p10: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Distribution {
    /// The quantile points, for sampling and interpolation.
    pub fn points(&self) -> [(f64, f64); 9] {
        [
            (0.0, self.min),
            (0.10, self.p10),
            (0.25, self.p25),
            (0.50, self.p50),
            (0.75, self.p75),
            (0.90, self.p90),
            (0.95, self.p95),
            (0.99, self.p99),
            (1.0, self.max),
        ]
    }

    /// The value at quantile `u` (0..=1), interpolating linearly between the
    /// recorded quantiles: sampling with a uniform `u` reproduces the shape.
    pub fn quantile(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        let pts = self.points();
        for w in pts.windows(2) {
            let ((q0, v0), (q1, v1)) = (w[0], w[1]);
            if u <= q1 {
                let f = if q1 > q0 { (u - q0) / (q1 - q0) } else { 0.0 };
                return v0 + (v1 - v0) * f;
            }
        }
        self.max
    }

    /// `quantile(u)` read as milliseconds.
    pub fn sample_duration(&self, u: f64) -> Duration {
        Duration::from_secs_f64(self.quantile(u).max(0.0) / 1000.0)
    }

    fn from_fn(count: u64, min: u64, max: u64, mean: f64, q: impl Fn(f64) -> u64) -> Distribution {
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Distribution {
            count,
            min: ms(min),
            p10: ms(q(0.10)),
            p25: ms(q(0.25)),
            p50: ms(q(0.50)),
            p75: ms(q(0.75)),
            p90: ms(q(0.90)),
            p95: ms(q(0.95)),
            p99: ms(q(0.99)),
            max: ms(max),
            mean: round3(mean / 1000.0),
        }
    }

    /// From a histogram of microseconds.
    pub fn from_hdr(h: &Histogram<u64>) -> Option<Distribution> {
        (!h.is_empty()).then(|| {
            Distribution::from_fn(h.len(), h.min(), h.max(), h.mean(), |q| {
                h.value_at_quantile(q)
            })
        })
    }
}

/// An exact histogram of durations in microseconds, up to a day.
pub fn duration_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 86_400_000_000, 3).expect("static bounds")
}

/// Records a duration (µs) into an HDR histogram, clamping to its range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).min(h.high());
    h.record(us).expect("clamped to range");
}

/// A fixed-size uniform sample of a stream of durations (µs), plus its exact
/// count, min, max and mean. Replacement is decided by a hash of the count,
/// so the sample depends only on the input order.
#[derive(Clone, Debug, Default)]
pub struct Reservoir {
    samples: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
}

const RESERVOIR: usize = 256;

fn mix(mut z: u64) -> u64 {
    // splitmix64
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Reservoir {
    pub fn add(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.count += 1;
        if self.count == 1 {
            self.min = us;
            self.max = us;
        }
        self.min = self.min.min(us);
        self.max = self.max.max(us);
        self.sum += u128::from(us);
        if self.samples.len() < RESERVOIR {
            self.samples.push(us);
        } else {
            let j = mix(self.count) % self.count;
            if (j as usize) < RESERVOIR {
                self.samples[j as usize] = us;
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn distribution(&self) -> Option<Distribution> {
        if self.count == 0 {
            return None;
        }
        let mut s = self.samples.clone();
        s.sort_unstable();
        let q = |u: f64| {
            let pos = u * (s.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let f = pos - lo as f64;
            (s[lo] as f64 + (s[hi] as f64 - s[lo] as f64) * f).round() as u64
        };
        let mean = self.sum as f64 / self.count as f64;
        Some(Distribution::from_fn(
            self.count, self.min, self.max, mean, q,
        ))
    }
}

/// A per-time-bucket count of events, with buckets that widen (1 s, 5 s,
/// 10 s, 30 s, 1 m, 5 m, ...) to stay under a bound, whatever the span.
#[derive(Clone, Debug)]
pub struct SeriesBuilder {
    width: i64,
    /// Index (in units of `width` since the epoch) of the first bucket.
    first: i64,
    counts: VecDeque<u64>,
}

/// Bucket widths in seconds; each divides the next, so coarsening is exact.
const WIDTHS: [i64; 14] = [
    1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21_600, 86_400, 604_800, 31_449_600,
];
/// Most buckets a series keeps before widening.
pub const MAX_BUCKETS: usize = 2000;

impl Default for SeriesBuilder {
    fn default() -> Self {
        SeriesBuilder {
            width: 1,
            first: 0,
            counts: VecDeque::new(),
        }
    }
}

impl SeriesBuilder {
    pub fn width_secs(&self) -> i64 {
        self.width
    }

    pub fn add(&mut self, t: Timestamp) {
        let secs = t.unix_secs();
        if self.counts.is_empty() {
            self.first = secs.div_euclid(self.width);
            self.counts.push_back(0);
        }
        loop {
            let idx = secs.div_euclid(self.width);
            let lo = self.first.min(idx);
            let hi = (self.first + self.counts.len() as i64 - 1).max(idx);
            if hi - lo < MAX_BUCKETS as i64 || self.width == *WIDTHS.last().expect("non-empty") {
                break;
            }
            self.widen();
        }
        let idx = secs.div_euclid(self.width);
        while idx < self.first {
            self.counts.push_front(0);
            self.first -= 1;
        }
        let i = (idx - self.first) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    fn widen(&mut self) {
        let next = WIDTHS
            .iter()
            .copied()
            .find(|w| *w > self.width)
            .expect("not at the widest");
        self.rebucket(next);
    }

    fn rebucket(&mut self, width: i64) {
        if width == self.width {
            return;
        }
        let factor = width / self.width;
        let first = self.first.div_euclid(factor);
        let mut out: VecDeque<u64> = VecDeque::new();
        for (i, c) in self.counts.iter().enumerate() {
            let j = ((self.first + i as i64).div_euclid(factor) - first) as usize;
            if j >= out.len() {
                out.resize(j + 1, 0);
            }
            out[j] += c;
        }
        self.width = width;
        self.first = first;
        self.counts = out;
    }

    /// The counts on a common grid: buckets of `width` seconds (a width this
    /// builder has or is finer than) covering `start..=end`.
    pub fn on_grid(&self, width: i64, start: Timestamp, end: Timestamp) -> Vec<u64> {
        let mut b = self.clone();
        b.rebucket(width);
        let first = start.unix_secs().div_euclid(width);
        let last = end.unix_secs().div_euclid(width);
        (first..=last)
            .map(|i| {
                let k = i - b.first;
                if k >= 0 {
                    b.counts.get(k as usize).copied().unwrap_or(0)
                } else {
                    0
                }
            })
            .collect()
    }

    /// The narrowest standard width that covers `start..=end` in at most
    /// [`MAX_BUCKETS`] buckets, and at least `min`.
    pub fn grid_width(min: i64, start: Timestamp, end: Timestamp) -> i64 {
        let span = end.unix_secs() - start.unix_secs();
        WIDTHS
            .iter()
            .copied()
            .find(|w| *w >= min && span / w < MAX_BUCKETS as i64)
            .unwrap_or(*WIDTHS.last().expect("non-empty"))
    }
}

/// Counts of recorded values, keeping the first `cap` distinct values and
/// counting the rest as `other`.
#[derive(Clone, Debug, Default)]
pub struct ValueCounter {
    counts: FxHashMap<Box<str>, u64>,
    pub other: u64,
}

impl ValueCounter {
    /// Counts `v`; true if it was seen for the first time and kept.
    pub fn add(&mut self, v: &str, cap: usize) -> bool {
        if let Some(c) = self.counts.get_mut(v) {
            *c += 1;
            false
        } else if self.counts.len() < cap {
            self.counts.insert(v.into(), 1);
            true
        } else {
            self.other += 1;
            false
        }
    }

    pub fn contains(&self, v: &str) -> bool {
        self.counts.contains_key(v)
    }

    /// The values kept, in no order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.counts.keys().map(|k| &**k)
    }

    /// Most frequent first, ties by value.
    pub fn sorted(&self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = self
            .counts
            .iter()
            .map(|(k, c)| (k.to_string(), *c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_micros(s * 1_000_000)
    }

    #[test]
    fn series_widens_and_stays_exact() {
        let mut s = SeriesBuilder::default();
        for t in 0..10_000 {
            s.add(ts(1_700_000_000 + t));
        }
        assert!(s.width_secs() >= 5);
        let w = s.width_secs();
        let grid = s.on_grid(w, ts(1_700_000_000), ts(1_700_009_999));
        assert_eq!(grid.iter().sum::<u64>(), 10_000);
        assert!(grid.len() <= MAX_BUCKETS + 1);
    }

    #[test]
    fn series_accepts_out_of_order() {
        let mut s = SeriesBuilder::default();
        s.add(ts(100));
        s.add(ts(90));
        s.add(ts(101));
        assert_eq!(
            s.on_grid(1, ts(90), ts(101)),
            vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
        );
        assert_eq!(s.on_grid(5, ts(90), ts(101)), vec![1, 0, 2]);
    }

    #[test]
    fn reservoir_quantiles_are_close() {
        let mut r = Reservoir::default();
        for i in 1..=10_000u64 {
            r.add(Duration::from_millis(i));
        }
        let d = r.distribution().unwrap();
        assert_eq!(d.count, 10_000);
        assert_eq!(d.min, 1.0);
        assert_eq!(d.max, 10_000.0);
        assert!((d.p50 - 5000.0).abs() < 800.0, "{}", d.p50);
    }

    #[test]
    fn distribution_sampling_is_monotone() {
        let mut h = duration_histogram();
        for i in 1..=1000u64 {
            record(&mut h, Duration::from_millis(i));
        }
        let d = Distribution::from_hdr(&h).unwrap();
        let mut last = -1.0;
        for k in 0..=100 {
            let v = d.quantile(k as f64 / 100.0);
            assert!(v >= last);
            last = v;
        }
        assert!((d.quantile(0.5) - 500.0).abs() < 2.0);
    }

    #[test]
    fn value_counter_caps() {
        let mut c = ValueCounter::default();
        for v in ["a", "b", "a", "c", "d"] {
            c.add(v, 2);
        }
        assert_eq!(c.sorted(), vec![("a".to_string(), 2), ("b".to_string(), 1)]);
        assert_eq!(c.other, 2);
    }
}
