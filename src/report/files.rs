//! The machine-readable files of a run directory: summary.json,
//! timeline.csv and histograms.json (every histogram of the run in HDR
//! Histogram's V2 deflate format, base64, so runs merge exactly later).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::{Counter, Histogram};
use serde::{Deserialize, Serialize};

use super::{Exporter, ReportError, Run};
use crate::metrics::{Counts, TimelineRow};

/// summary.json (docs/summary.schema.json).
pub struct JsonSummary;

impl Exporter for JsonSummary {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }

    fn render(&self, run: &Run<'_>) -> Result<Vec<u8>, ReportError> {
        let mut v = serde_json::to_vec_pretty(&run.summary).map_err(|e| ReportError::Render {
            file: self.file_name(),
            message: e.to_string(),
        })?;
        v.push(b'\n');
        Ok(v)
    }
}

/// timeline.csv: one row per second.
pub struct TimelineCsv;

impl Exporter for TimelineCsv {
    fn file_name(&self) -> &'static str {
        "timeline.csv"
    }

    fn render(&self, run: &Run<'_>) -> Result<Vec<u8>, ReportError> {
        let mut out = String::from(TimelineRow::CSV_HEADER);
        out.push('\n');
        for row in run.results.timeline.rows() {
            out.push_str(&row.csv());
            out.push('\n');
        }
        Ok(out.into_bytes())
    }
}

/// histograms.json: the run's histograms, exactly.
pub struct Histograms;

/// histograms.json: with summary.json, everything needed to rebuild the
/// run's results exactly (`reprise report DIR`, later merges).
#[derive(Serialize, Deserialize)]
pub(crate) struct HistFile {
    /// How each histogram is encoded.
    pub encoding: String,
    /// What the recorded values are.
    pub unit: String,
    /// The exact run time (summary.json rounds it to the microsecond).
    #[serde(default)]
    pub elapsed_ns: u64,
    pub endpoints: Vec<String>,
    pub tenants: Vec<String>,
    pub counts: Counts,
    pub metrics: Vec<(String, String)>,
    pub keys: Vec<KeyHist>,
    pub timeline: Vec<SecondHist>,
    /// (name, passed, failed) per check.
    pub checks: Vec<(String, u64, u64)>,
    /// Per check, failures on a body cut at the keep limit (absent in
    /// files written before it was counted).
    #[serde(default)]
    pub checks_cut: Vec<u64>,
    pub auth: Option<AuthHist>,
    /// Sessions planned per second; where stages begin (seconds).
    #[serde(default)]
    pub planned_sessions: Vec<u64>,
    #[serde(default)]
    pub stages_s: Vec<f64>,
    /// The target's own metrics (`--watch`).
    #[serde(default)]
    pub watch: Vec<crate::watch::Watched>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct KeyHist {
    pub endpoint: String,
    pub method: String,
    pub tenant: String,
    pub status: String,
    pub requests: u64,
    pub bytes_received: u64,
    pub duration: String,
    pub service_time: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SecondHist {
    pub second: u64,
    pub counts: Counts,
    pub in_flight: u64,
    pub active_sessions: u64,
    pub duration: String,
    pub service_time: String,
    pub generator_lag: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct AuthHist {
    pub kind: crate::auth::AuthKind,
    pub identities: usize,
    pub logins: u64,
    pub refreshes: u64,
    pub failures: u64,
    /// Absent in files written before it was counted.
    #[serde(default)]
    pub cut_short: u64,
    pub retries: u64,
    pub sessions_denied: u64,
    pub examples: Vec<String>,
    pub duration: String,
}

fn name(names: &[String], i: u32) -> &str {
    names.get(i as usize).map_or("?", String::as_str)
}

/// A histogram in V2 deflate, base64.
fn encode<T: Counter>(h: &Histogram<T>) -> Result<String, ReportError> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| ReportError::Render {
            file: "histograms.json",
            message: format!("{e:?}"),
        })?;
    Ok(STANDARD.encode(buf))
}

/// Reads back a histogram of histograms.json.
pub fn decode_histogram<T: Counter>(s: &str) -> Result<Histogram<T>, String> {
    let bytes = STANDARD.decode(s).map_err(|e| e.to_string())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{e:?}"))
}

impl Exporter for Histograms {
    fn file_name(&self) -> &'static str {
        "histograms.json"
    }

    fn render(&self, run: &Run<'_>) -> Result<Vec<u8>, ReportError> {
        let r = run.results;
        let mut file = HistFile {
            encoding: "HdrHistogram V2 deflate, base64".into(),
            unit: "microseconds".into(),
            elapsed_ns: r.meta.elapsed.as_nanos().min(u128::from(u64::MAX)) as u64,
            endpoints: r.names.endpoints.clone(),
            tenants: r.names.tenants.clone(),
            counts: r.counts.clone(),
            metrics: Vec::new(),
            keys: Vec::new(),
            timeline: Vec::new(),
            checks: r
                .check_names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let (p, f) = r.checks.get(i).copied().unwrap_or_default();
                    (n.clone(), p, f)
                })
                .collect(),
            checks_cut: r.checks_cut.clone(),
            auth: match &r.auth {
                Some(a) => Some(AuthHist {
                    kind: a.kind,
                    identities: a.identities,
                    logins: a.logins,
                    refreshes: a.refreshes,
                    failures: a.failures,
                    cut_short: a.cut_short,
                    retries: a.retries,
                    sessions_denied: a.sessions_denied,
                    examples: a.examples.clone(),
                    duration: encode(&a.duration)?,
                }),
                None => None,
            },
            planned_sessions: r.planned_sessions.clone(),
            stages_s: r.stages.clone(),
            watch: r.watch.clone(),
        };
        for (n, h) in r.metrics.named() {
            file.metrics.push((n.to_string(), encode(h)?));
        }
        for (k, s) in &r.keys {
            let endpoint = name(&r.names.endpoints, k.endpoint);
            file.keys.push(KeyHist {
                endpoint: endpoint.to_string(),
                method: endpoint.split_once(' ').map_or("", |(m, _)| m).to_string(),
                tenant: name(&r.names.tenants, k.tenant).to_string(),
                status: k.class.name().to_string(),
                requests: s.requests,
                bytes_received: s.bytes_received,
                duration: encode(&s.duration)?,
                service_time: encode(&s.service)?,
            });
        }
        for (second, s) in r.timeline.seconds() {
            file.timeline.push(SecondHist {
                second,
                counts: s.counts.clone(),
                in_flight: s.in_flight,
                active_sessions: s.active_sessions,
                duration: encode(&s.duration)?,
                service_time: encode(&s.service)?,
                generator_lag: encode(&s.lag)?,
            });
        }
        let mut v = serde_json::to_vec(&file).map_err(|e| ReportError::Render {
            file: self.file_name(),
            message: e.to_string(),
        })?;
        v.push(b'\n');
        Ok(v)
    }
}
