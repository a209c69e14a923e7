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
    /// Latency from the scheduled time, milliseconds.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Service time (from the send), p99, milliseconds.
    pub service_p99_ms: f64,
    /// Generator lag, p99 and max, milliseconds.
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
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
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.service_p99_ms,
            self.lag_p99_ms,
            self.lag_max_ms,
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

/// Ticks of all workers, second by second.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Each second's ticks of all workers added together: exact counts and
    /// histograms, so timelines of several processes merge into the one a
    /// single process would have seen. In-flight requests and open sessions
    /// are sums of what each worker saw at the end of the second.
    seconds: BTreeMap<u64, Tick>,
}

fn ms(h: &SmallHist, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    crate::model::time::round3(h.median_equivalent(h.value_at_quantile(q)) as f64 / 1000.0)
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

    /// The last complete second's row, for live progress.
    pub fn latest(&self) -> Option<TimelineRow> {
        self.seconds.iter().next_back().map(|(&s, v)| row(s, v))
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
        lag_max_ms: if s.lag.is_empty() {
            0.0
        } else {
            crate::model::time::round3(s.lag.max() as f64 / 1000.0)
        },
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
