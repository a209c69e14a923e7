//! The machine-readable files of a run directory: summary.json,
//! timeline.csv and histograms.json (every histogram of the run in HDR
//! Histogram's V2 deflate format, base64, so runs merge exactly later).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::{Counter, Histogram};
use serde::Serialize;

use super::{Exporter, ReportError, Run};
use crate::metrics::TimelineRow;

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

#[derive(Serialize)]
struct HistFile<'a> {
    /// How each histogram is encoded.
    encoding: &'static str,
    /// What the recorded values are.
    unit: &'static str,
    metrics: Vec<(&'static str, String)>,
    keys: Vec<KeyHist<'a>>,
    timeline: Vec<SecondHist>,
}

#[derive(Serialize)]
struct KeyHist<'a> {
    endpoint: &'a str,
    method: &'a str,
    tenant: &'a str,
    status: &'static str,
    requests: u64,
    bytes_received: u64,
    duration: String,
    service_time: String,
}

#[derive(Serialize)]
struct SecondHist {
    second: u64,
    duration: String,
    service_time: String,
    generator_lag: String,
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
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
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
            encoding: "HdrHistogram V2 deflate, base64",
            unit: "microseconds",
            metrics: Vec::new(),
            keys: Vec::new(),
            timeline: Vec::new(),
        };
        for (n, h) in r.metrics.named() {
            file.metrics.push((n, encode(h)?));
        }
        for (k, s) in &r.keys {
            let endpoint = name(&r.names.endpoints, k.endpoint);
            file.keys.push(KeyHist {
                endpoint,
                method: endpoint.split_once(' ').map_or("", |(m, _)| m),
                tenant: name(&r.names.tenants, k.tenant),
                status: k.class.name(),
                requests: s.requests,
                bytes_received: s.bytes_received,
                duration: encode(&s.duration)?,
                service_time: encode(&s.service)?,
            });
        }
        for (second, s) in r.timeline.seconds() {
            file.timeline.push(SecondHist {
                second,
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
