//! The per-second timeline, merged from the workers' ticks.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Class, SmallHist, Tick};
use crate::http::ErrorKind;

/// One second of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimelineRow {
    /// Seconds since the start.
    pub second: u64,
    pub requests: u64,
    pub failed: u64,
    /// Latency from the scheduled time, milliseconds; none in a second
    /// in which nothing came back (a stall is no latency of 0).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Service time (from the send), p99, milliseconds.
    pub service_p99_ms: Option<f64>,
    /// Generator lag, p99 and max, milliseconds; none when nothing was
    /// sent.
    pub lag_p99_ms: Option<f64>,
    pub lag_max_ms: Option<f64>,
    pub refused: u64,
    pub reset: u64,
    pub timeout: u64,
    pub tls: u64,
    pub connect: u64,
    pub protocol: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub in_flight: u64,
    pub active_sessions: u64,
    pub sessions_started: u64,
    pub sessions_dropped: u64,
    pub bytes_received: u64,
}

impl TimelineRow {
    pub const CSV_HEADER: &'static str = "second,requests,failed,p50_ms,p95_ms,p99_ms,service_p99_ms,lag_p99_ms,lag_max_ms,refused,reset,timeout,tls,connect,protocol,status_4xx,status_5xx,in_flight,active_sessions,sessions_started,sessions_dropped,bytes_received";

    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.second,
            self.requests,
            self.failed,
            cell(self.p50_ms),
            cell(self.p95_ms),
            cell(self.p99_ms),
            cell(self.service_p99_ms),
            cell(self.lag_p99_ms),
            cell(self.lag_max_ms),
            self.refused,
            self.reset,
            self.timeout,
            self.tls,
            self.connect,
            self.protocol,
            self.status_4xx,
            self.status_5xx,
            self.in_flight,
            self.active_sessions,
            self.sessions_started,
            self.sessions_dropped,
            self.bytes_received
        )
    }
}

/// A CSV cell: empty for no value.
fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// Ticks of all workers, second by second.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Each second's ticks of all workers added together: exact counts and
    /// histograms, so timelines of several processes merge into the one a
    /// single process would have seen. In-flight requests and open sessions
    /// are sums of what each worker saw at the end of the second.
    seconds: BTreeMap<u64, Tick>,
}

fn ms(h: &SmallHist, q: f64) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    Some(crate::model::time::round3(
        h.median_equivalent(h.value_at_quantile(q)) as f64 / 1000.0,
    ))
}

impl Timeline {
    pub fn add(&mut self, t: Tick) {
        match self.seconds.get_mut(&t.second) {
            Some(s) => s.merge(&t),
            None => {
                self.seconds.insert(t.second, t);
            }
        }
    }

    /// The last complete second's row, for live progress: the newest
    /// second may hold only some workers' reports yet (it showed one
    /// worker's share of the in-flight requests and the rate).
    pub fn latest(&self) -> Option<TimelineRow> {
        self.seconds.iter().nth_back(1).map(|(&s, v)| row(s, v))
    }

    pub fn seconds(&self) -> impl Iterator<Item = (u64, &Tick)> {
        self.seconds.iter().map(|(&s, v)| (s, v))
    }

    /// The seconds from `from` (inclusive) to `to` (exclusive), in order.
    pub fn between(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, &Tick)> {
        self.seconds.range(from..to.max(from)).map(|(&s, v)| (s, v))
    }

    /// The seconds from `from` on that are complete: all but the newest,
    /// which workers may still be reporting.
    pub fn complete_since(&self, from: u64) -> impl Iterator<Item = (u64, &Tick)> {
        let newest = self.seconds.last_key_value().map_or(0, |(&s, _)| s);
        self.between(from, newest)
    }

    pub fn get(&self, second: u64) -> Option<&Tick> {
        self.seconds.get(&second)
    }

    pub fn len(&self) -> usize {
        self.seconds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seconds.is_empty()
    }

    pub fn rows(&self) -> Vec<TimelineRow> {
        self.seconds.iter().map(|(&s, v)| row(s, v)).collect()
    }
}

fn row(second: u64, s: &Tick) -> TimelineRow {
    let c = &s.counts;
    TimelineRow {
        second,
        requests: c.requests,
        failed: c.failed,
        p50_ms: ms(&s.duration, 0.5),
        p95_ms: ms(&s.duration, 0.95),
        p99_ms: ms(&s.duration, 0.99),
        service_p99_ms: ms(&s.service, 0.99),
        lag_p99_ms: ms(&s.lag, 0.99),
        lag_max_ms: (!s.lag.is_empty())
            .then(|| crate::model::time::round3(s.lag.max() as f64 / 1000.0)),
        refused: c.error(ErrorKind::Refused),
        reset: c.error(ErrorKind::Reset),
        timeout: c.error(ErrorKind::Timeout),
        tls: c.error(ErrorKind::Tls),
        connect: c.error(ErrorKind::Connect),
        protocol: c.error(ErrorKind::Protocol),
        status_4xx: c.class(Class::ClientError),
        status_5xx: c.class(Class::ServerError),
        in_flight: s.in_flight,
        active_sessions: s.active_sessions,
        sessions_started: c.sessions_started,
        sessions_dropped: c.sessions_dropped,
        bytes_received: c.bytes_received,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Progress shows the last second every worker has reported, not the
    /// newest one that only some have.
    #[test]
    fn the_latest_row_is_the_last_complete_second() {
        let mut tl = Timeline::default();
        assert_eq!(tl.latest(), None);
        for (second, in_flight) in [(0, 50), (1, 50), (2, 25)] {
            let mut t = Tick::new(second);
            t.in_flight = in_flight;
            tl.add(t);
        }
        let row = tl.latest().expect("a row");
        assert_eq!((row.second, row.in_flight), (1, 50));
        assert_eq!(row.p95_ms, None, "nothing came back");
        assert!(row.csv().starts_with("1,0,0,,,,,,,"), "{}", row.csv());
    }
}
