//! The model: what recorded traffic looks like, in a form that can be
//! replayed. These are the pivot types of reprise — readers feed them,
//! planners and replayers read them — so they are plain serde data with no
//! I/O. `build` makes a model from exchanges; docs/model.md documents every
//! field.

pub mod build;
pub mod identity;
pub mod redact;
pub mod sketch;
pub mod template;
pub mod time;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use build::{ModelOptions, Modeller, Prep, Preparer};
pub use sketch::Distribution;
pub use template::SlotKind;
pub use time::Timestamp;

/// The model file format version this build reads and writes.
pub const MODEL_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub version: u32,
    pub capture: CaptureInfo,
    pub settings: Settings,
    /// Endpoints, referred to elsewhere by their index in this list.
    pub endpoints: Vec<Endpoint>,
    pub tenants: Vec<Tenant>,
    pub redactions: Vec<Redaction>,
}

/// What was read to make the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaptureInfo {
    /// First and last request start.
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(rename = "span_ms", with = "time::as_millis")]
    pub span: Duration,
    /// Requests and sessions in the model (after filters).
    pub requests: u64,
    pub sessions: u64,
    /// Requests per bucket over the whole capture.
    pub requests_series: Series,
    /// Hosts the capture's requests were sent to (the replay refuses them as
    /// targets unless allowed).
    pub hosts: Vec<String>,
    pub sources: Vec<SourceInfo>,
    /// Requests read but left out, by reason (static assets, websockets, ...).
    pub filtered: BTreeMap<String, u64>,
}

/// One input file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub name: String,
    pub format: String,
    /// Lines or entries that were records (not blank, not directives).
    pub records: u64,
    pub accepted: u64,
    pub skipped: BTreeMap<String, u64>,
    /// The first few skipped records: `file:line: reason`.
    pub first_skips: Vec<String>,
}

/// The options the model was built with; replay reads the tenant rules to
/// put tenants back where the capture had them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub tenant_rules: Vec<String>,
    /// Whether the tenant rules were chosen automatically.
    pub tenant_rules_automatic: bool,
    pub session_key: Vec<String>,
    #[serde(rename = "session_gap_ms", with = "time::as_millis")]
    pub session_gap: Duration,
    pub keep_assets: bool,
    pub slot_rules: Vec<String>,
    pub kept_headers: Vec<String>,
}

/// A count per time bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub start: Timestamp,
    pub bucket_ms: u64,
    pub counts: Vec<u64>,
}

impl Series {
    pub fn bucket(&self) -> Duration {
        Duration::from_millis(self.bucket_ms)
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A method and templated path, with what was recorded of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub method: String,
    /// `/orders/{id}/items/{id}`
    pub path: String,
    pub slots: Vec<PathSlot>,
    pub query: Vec<QueryParam>,
    /// The combinations of query parameters requests carried, most common
    /// first (empty when none had any; a model written before them has
    /// none, and replay falls back to each parameter's `presence`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_shapes: Vec<QueryShape>,
    /// Request headers worth replaying (credentials never among them).
    pub headers: BTreeMap<String, String>,
    pub body: Option<BodyTemplate>,
    pub requests: u64,
    /// Recorded response status codes and their counts.
    pub status: BTreeMap<String, u64>,
    /// Recorded total time, where the capture had it.
    pub latency_ms: Option<Distribution>,
    /// Recorded time to first byte (server wait), where the capture had it.
    pub ttfb_ms: Option<Distribution>,
}

impl Endpoint {
    /// `GET /orders/{id}`
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A templated path segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathSlot {
    /// Index among the `/`-separated parts of the path.
    pub segment: usize,
    pub kind: SlotKind,
    /// The value pool it draws from (per tenant).
    pub pool: String,
}

/// One combination of query parameters, in the order they were sent
/// (a name twice when it was repeated), and how many requests had it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryShape {
    pub params: Vec<String>,
    pub count: u64,
}

/// A query parameter of an endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryParam {
    /// As recorded (percent-encoded).
    pub name: String,
    pub kind: SlotKind,
    pub pool: String,
    /// Share of the endpoint's requests that carried it.
    pub presence: f64,
}

/// A recorded request body, with the values that vary made into slots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BodyTemplate {
    Json {
        mime: String,
        value: Value,
        /// Values drawn from pools, by JSON pointer.
        slots: Vec<BodySlot>,
        /// JSON pointers of values removed as secrets (now `null`).
        redacted: Vec<String>,
    },
    /// `application/x-www-form-urlencoded` or `multipart/form-data`.
    Form {
        mime: String,
        params: Vec<FormParam>,
        /// Slots by parameter index (`/3`).
        slots: Vec<BodySlot>,
        /// Names of parameters whose values were removed as secrets.
        redacted: Vec<String>,
    },
    Text {
        mime: String,
        text: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BodySlot {
    pub pointer: String,
    pub pool: String,
    /// The path segment whose value the recorded body carried (`PUT
    /// /posts/7` with `{"id": 7}`): replay sends the same value in both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_segment: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormParam {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// One tenant's traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    /// The rule that found this tenant (`header:x-tenant-id`), or none for
    /// the default tenant.
    pub matched_by: Option<String>,
    pub sessions: u64,
    pub requests: u64,
    /// Share of all sessions and of all requests.
    pub session_share: f64,
    pub request_share: f64,
    /// Sessions started per bucket.
    pub arrivals: Series,
    /// Sessions by number of requests.
    pub session_lengths: BTreeMap<u32, u64>,
    /// Think time between a response and the next request of a session.
    pub think_ms: Option<Distribution>,
    /// The most common exact endpoint sequences.
    pub shapes: Vec<Shape>,
    /// Sessions whose sequence is not among `shapes`.
    pub other_shape_sessions: u64,
    /// P(next endpoint | current): `from: null` is a session's start, `to:
    /// null` its end.
    pub transitions: Vec<Transition>,
    /// Requests per endpoint index.
    pub endpoints: BTreeMap<usize, u64>,
    /// Recorded values per pool, most frequent first.
    pub pools: BTreeMap<String, Pool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Endpoint indices, in order.
    pub steps: Vec<usize>,
    pub sessions: u64,
    /// The sessions were longer than the longest shape kept; they go on by
    /// the transition model.
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Option<usize>,
    pub to: Option<usize>,
    pub count: u64,
    pub think_ms: Option<Distribution>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub kind: SlotKind,
    /// `[value, count]`, most frequent first.
    pub values: Vec<(String, u64)>,
    /// Occurrences of values beyond the pool's cap.
    pub other: u64,
}

/// What was kept out of the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Redaction {
    /// `header`, `query`, `body-field`, `form-field`, `body`, `path`.
    pub kind: String,
    pub name: String,
    pub count: u64,
}

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    // The reason is part of the message, not a source: printed as a
    // chain (`{:#}`), it would be said twice.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}:{line}:{column}: not a reprise model: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: model version {found}, this reprise reads version {MODEL_VERSION}")]
    Version { path: String, found: u32 },
    #[error("{path}: inconsistent model: {message}")]
    Inconsistent { path: String, message: String },
}

/// The most tenants a model holds: the importer's 1,000, and `other`.
const MAX_TENANTS: usize = 1001;
/// The longest shape a model holds (the importer keeps 100 steps).
const MAX_SHAPE_STEPS: usize = 1000;
/// The longest path or pool value (the importer keeps no longer value).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// A byte of an HTTP token (RFC 9110 `tchar`): what a method is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The longest latency or think time a model holds, in milliseconds
/// (about 31 years): replay waits and sleeps for them.
pub const MAX_RECORDED_MS: f64 = 1e12;

/// A recorded distribution of durations: every figure a number of
/// milliseconds from 0 to [`MAX_RECORDED_MS`].
fn check_distribution(d: &Distribution) -> Result<(), String> {
    let figures = [
        d.min, d.p10, d.p25, d.p50, d.p75, d.p90, d.p95, d.p99, d.max, d.mean,
    ];
    match figures
        .iter()
        .find(|v| !(v.is_finite() && (0.0..=MAX_RECORDED_MS).contains(*v)))
    {
        Some(v) => Err(format!("{v} is not a duration in milliseconds (0 to 1e12)")),
        None => Ok(()),
    }
}

impl Model {
    /// Reads and checks a model file.
    pub fn load(path: &std::path::Path) -> Result<Model, ModelError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: p.clone(),
            error: source,
        })?;
        Model::from_json(&p, &bytes)
    }

    pub fn from_json(path: &str, bytes: &[u8]) -> Result<Model, ModelError> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let syntax = |e: serde_json::Error| {
            let msg = e.to_string();
            ModelError::Syntax {
                path: path.into(),
                line: e.line(),
                column: e.column(),
                message: msg
                    .rsplit_once(" at line ")
                    .map_or(msg.clone(), |(m, _)| m.to_string()),
            }
        };
        let probe: Probe = serde_json::from_slice(bytes).map_err(syntax)?;
        if probe.version != MODEL_VERSION {
            return Err(ModelError::Version {
                path: path.into(),
                found: probe.version,
            });
        }
        let model: Model = serde_json::from_slice(bytes).map_err(syntax)?;
        model.check().map_err(|message| ModelError::Inconsistent {
            path: path.into(),
            message,
        })?;
        Ok(model)
    }

    /// Cross-references hold: every endpoint index points at an endpoint.
    /// And what a hand-edited model could hold that replay cannot use: a
    /// method or path that cannot go on a request line as it is, durations
    /// no clock holds, shapes, values and tenants past the importer's caps
    /// (which bound replay's memory).
    fn check(&self) -> Result<(), String> {
        let n = self.endpoints.len();
        let bad = |i: usize| i >= n;
        for t in &self.tenants {
            let refs = t
                .shapes
                .iter()
                .flat_map(|s| s.steps.iter().copied())
                .chain(
                    t.transitions
                        .iter()
                        .flat_map(|tr| tr.from.into_iter().chain(tr.to)),
                )
                .chain(t.endpoints.keys().copied());
            if let Some(i) = refs.into_iter().find(|i| bad(*i)) {
                return Err(format!(
                    "tenant {} refers to endpoint {i}, there are {n}",
                    t.name
                ));
            }
        }
        if self.tenants.len() > MAX_TENANTS {
            return Err(format!(
                "{} tenants, more than the {MAX_TENANTS} a model holds",
                self.tenants.len()
            ));
        }
        for t in &self.tenants {
            let what = |m: String| format!("tenant {}: {m}", t.name);
            if let Some(d) = &t.think_ms {
                check_distribution(d).map_err(|m| what(format!("think_ms: {m}")))?;
            }
            for tr in &t.transitions {
                if let Some(d) = &tr.think_ms {
                    check_distribution(d)
                        .map_err(|m| what(format!("a transition's think_ms: {m}")))?;
                }
            }
            if let Some(s) = t.shapes.iter().find(|s| s.steps.len() > MAX_SHAPE_STEPS) {
                return Err(what(format!(
                    "a shape of {} steps; shapes hold at most {MAX_SHAPE_STEPS}",
                    s.steps.len()
                )));
            }
            for (name, pool) in &t.pools {
                if let Some((v, _)) = pool.values.iter().find(|(v, _)| v.len() > MAX_VALUE_LEN) {
                    return Err(what(format!(
                        "pool {name} has a value of {} bytes; values hold at most {MAX_VALUE_LEN}",
                        v.len()
                    )));
                }
            }
        }
        for e in &self.endpoints {
            // Named by its start: a path can be long, and the error is read.
            let shown: String = e.path.chars().take(80).collect();
            let cut = if shown.len() < e.path.len() {
                "…"
            } else {
                ""
            };
            let what = |m: &str| format!("endpoint {:?} {shown:?}{cut}: {m}", e.method);
            if e.method.is_empty() || !e.method.bytes().all(is_token_byte) {
                return Err(what(
                    "the method is not an HTTP method (letters, no spaces)",
                ));
            }
            // `*` is the whole server (`OPTIONS *`, Apache's own pings).
            let path_ok = e.path == "*" || e.path.starts_with('/');
            if !path_ok || e.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(what(
                    "the path must start with `/` (or be `*`) and hold no spaces or control characters",
                ));
            }
            if e.path.len() > MAX_VALUE_LEN {
                return Err(what(&format!(
                    "the path is longer than {MAX_VALUE_LEN} bytes"
                )));
            }
            if let Some(q) = e
                .query
                .iter()
                .find(|q| q.name.bytes().any(|b| b <= b' ' || b == 0x7f))
            {
                return Err(what(&format!(
                    "query parameter {:?} holds spaces or control characters",
                    q.name
                )));
            }
            for d in [&e.latency_ms, &e.ttfb_ms].into_iter().flatten() {
                check_distribution(d).map_err(|m| what(&m))?;
            }
            let unknown = e
                .query_shapes
                .iter()
                .flat_map(|s| &s.params)
                .find(|p| !e.query.iter().any(|q| &q.name == *p));
            if let Some(p) = unknown {
                return Err(format!(
                    "endpoint {}: a query shape names `{p}`, which is not among its query parameters",
                    e.name()
                ));
            }
        }
        Ok(())
    }

    /// The model as pretty JSON (the file format).
    pub fn to_json(&self) -> String {
        let v = serde_json::to_value(self).expect("a model always serialises");
        crate::output::pretty_json(&v)
    }
}
