//! Checks: per-request assertions, counted as a pass rate (the `checks`
//! metric), never failing the request itself.
//!
//! One check is on by default: *status as recorded* — a replayed request
//! passes when its status class (2xx, 4xx, ...) is one the capture recorded
//! for that endpoint (in at least 1% of its requests), so an endpoint that
//! answered 2xx in production and 5xx now fails it. Custom checks come from
//! `[[checks]]` in the run config.

use std::time::Duration;

use serde::Deserialize;

use crate::config::UsageError;
use crate::http::Outcome;
use crate::metrics::{Class, Recorder};
use crate::model::Model;

/// The default check's name.
pub const STATUS_AS_RECORDED: &str = "status as recorded";

/// A recorded class counts for the default check from this share up.
const RECORDED_SHARE: f64 = 0.01;

/// `[[checks]]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckFile {
    pub name: String,
    /// Only requests to this endpoint (`GET /api/products/{id}`).
    pub endpoint: Option<String>,
    /// Only this tenant's requests.
    pub tenant: Option<String>,
    /// The status is one of these.
    pub status: Option<Vec<u16>>,
    /// The response body contains this text.
    pub body_contains: Option<String>,
    /// The JSON body has this value at `json_pointer`.
    pub json_pointer: Option<String>,
    pub json_equals: Option<toml::Value>,
    /// The response has this header.
    pub header: Option<String>,
    /// http_req_duration (from due) under this.
    #[serde(default, with = "crate::config::opt_duration")]
    pub duration_under: Option<Duration>,
}

#[derive(Clone, Debug)]
struct Custom {
    index: usize,
    tenant: Option<u32>,
    status: Vec<u16>,
    body_contains: Option<String>,
    json: Option<(String, serde_json::Value)>,
    header: Option<String>,
    duration_under: Option<Duration>,
}

/// Checks, compiled for a model.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    pub names: Vec<String>,
    /// Per endpoint: the recorded classes (bit per [`Class`] index); `None`
    /// when the default check is off or the endpoint recorded no status.
    recorded: Vec<Option<u8>>,
    /// Per endpoint: the custom checks that apply.
    custom: Vec<Vec<Custom>>,
    /// Per endpoint: whether responses must be kept for a check.
    keep: Vec<bool>,
}

impl Checks {
    /// Compiles `[[checks]]` (and the default check unless `status_check`
    /// is false) against `model`; a selector that matches nothing is an
    /// error.
    pub fn new(
        model: &Model,
        files: &[CheckFile],
        status_check: bool,
    ) -> Result<Checks, UsageError> {
        let n = model.endpoints.len();
        let mut c = Checks {
            names: Vec::new(),
            recorded: vec![None; n],
            custom: vec![Vec::new(); n],
            keep: vec![false; n],
        };
        if status_check {
            c.names.push(STATUS_AS_RECORDED.into());
            for (i, e) in model.endpoints.iter().enumerate() {
                let total: u64 = e.status.values().sum();
                let mut mask = 0u8;
                for (code, count) in &e.status {
                    let code: Option<u16> = code.parse().ok().filter(|c| *c > 0);
                    if *count as f64 >= RECORDED_SHARE * total as f64 {
                        mask |= 1 << Class::of(code).index();
                    }
                }
                c.recorded[i] = (mask != 0).then_some(mask);
            }
        }
        for f in files {
            let err = |m: String| UsageError(format!("[[checks]] `{}`: {m}", f.name));
            if f.name.trim().is_empty() {
                return Err(UsageError("[[checks]]: every check needs a `name`".into()));
            }
            if c.names.contains(&f.name) {
                return Err(err("two checks have this name".into()));
            }
            if f.status.is_none()
                && f.body_contains.is_none()
                && f.json_pointer.is_none()
                && f.header.is_none()
                && f.duration_under.is_none()
            {
                return Err(err(
                    "says nothing to check: give status, body_contains, json_pointer + json_equals, header or duration_under".into(),
                ));
            }
            if let Some(codes) = &f.status {
                if codes.is_empty() {
                    return Err(err(
                        "status = [] allows no status: list the ones that pass".into()
                    ));
                }
                if let Some(c) = codes.iter().find(|c| !(100..=599).contains(*c)) {
                    return Err(err(format!(
                        "status {c} is not an HTTP status (100 to 599): the check could never pass"
                    )));
                }
            }
            if f.body_contains.as_deref() == Some("") {
                return Err(err(
                    "body_contains = \"\" is in every body: give the text to look for".into(),
                ));
            }
            if f.duration_under == Some(Duration::ZERO) {
                return Err(err(
                    "duration_under = 0 could never pass: give a duration above zero".into(),
                ));
            }
            if let Some(h) = &f.header
                && hyper::header::HeaderName::from_bytes(h.as_bytes()).is_err()
            {
                return Err(err(format!(
                    "header `{h}` is not a header name: the check could never pass"
                )));
            }
            let json = match (&f.json_pointer, &f.json_equals) {
                (Some(p), Some(v)) if p.starts_with('/') => Some((
                    p.clone(),
                    serde_json::to_value(v).map_err(|e| err(e.to_string()))?,
                )),
                (Some(p), Some(_)) => {
                    return Err(err(format!("json_pointer `{p}` does not start with /")));
                }
                (None, None) => None,
                _ => return Err(err("json_pointer and json_equals go together".into())),
            };
            let endpoints: Vec<usize> = match &f.endpoint {
                Some(name) => {
                    let i = model
                        .endpoints
                        .iter()
                        .position(|e| e.name() == *name)
                        .ok_or_else(|| {
                            err(format!(
                                "endpoint `{name}` is not in the model (reprise inspect lists them)"
                            ))
                        })?;
                    vec![i]
                }
                None => (0..n).collect(),
            };
            let tenant = match &f.tenant {
                Some(t) => Some(
                    model
                        .tenants
                        .iter()
                        .position(|x| x.name == *t)
                        .ok_or_else(|| err(format!("tenant `{t}` is not in the model")))?
                        as u32,
                ),
                None => None,
            };
            let custom = Custom {
                index: c.names.len(),
                tenant,
                status: f.status.clone().unwrap_or_default(),
                body_contains: f.body_contains.clone(),
                json,
                header: f.header.as_ref().map(|h| h.to_ascii_lowercase()),
                duration_under: f.duration_under,
            };
            let keep =
                custom.body_contains.is_some() || custom.json.is_some() || custom.header.is_some();
            for e in endpoints {
                c.custom[e].push(custom.clone());
                c.keep[e] |= keep;
            }
            c.names.push(f.name.clone());
        }
        Ok(c)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether requests to `endpoint` must keep their response for a check.
    pub fn keep(&self, endpoint: usize) -> bool {
        self.keep.get(endpoint).copied().unwrap_or(false)
    }

    /// Runs the checks for one request and records them.
    pub fn run(
        &self,
        endpoint: usize,
        tenant: u32,
        o: &Outcome,
        duration: Duration,
        rec: &mut Recorder,
    ) {
        if let Some(Some(mask)) = self.recorded.get(endpoint) {
            let class = Class::of_answer(o.status, o.error.is_some());
            rec.check(0, mask & (1 << class.index()) != 0);
        }
        for c in self.custom.get(endpoint).into_iter().flatten() {
            if c.tenant.is_some_and(|t| t != tenant) {
                continue;
            }
            let head = c.head_passes(o, duration);
            let body = head && c.body_passes(o);
            rec.check(c.index, body);
            // Failed on the body, only partly kept: said, not silent.
            if head && !body && o.kept.as_ref().is_some_and(|k| k.cut) {
                rec.check_cut(c.index);
            }
        }
    }
}

impl Custom {
    #[cfg(test)]
    fn passes(&self, o: &Outcome, duration: Duration) -> bool {
        self.head_passes(o, duration) && self.body_passes(o)
    }

    /// The conditions on the status, the time and the headers.
    fn head_passes(&self, o: &Outcome, duration: Duration) -> bool {
        let status = o.status.filter(|_| o.error.is_none());
        if !self.status.is_empty() && !status.is_some_and(|s| self.status.contains(&s)) {
            return false;
        }
        if self.duration_under.is_some_and(|d| duration >= d) {
            return false;
        }
        let kept = o.kept.as_deref();
        if let Some(h) = &self.header
            && !kept.is_some_and(|k| k.headers.iter().any(|(n, _)| n == h))
        {
            return false;
        }
        true
    }

    /// The conditions on the body.
    fn body_passes(&self, o: &Outcome) -> bool {
        let kept = o.kept.as_deref();
        if let Some(text) = &self.body_contains
            && kept.is_none_or(|k| memchr::memmem::find(&k.body, text.as_bytes()).is_none())
        {
            return false;
        }
        if let Some((pointer, want)) = &self.json {
            let got = kept
                .and_then(|k| serde_json::from_slice::<serde_json::Value>(&k.body).ok())
                .and_then(|v| v.pointer(pointer).cloned());
            if !got.as_ref().is_some_and(|g| json_eq(g, want)) {
                return false;
            }
        }
        true
    }
}

/// JSON equality with numbers compared by value: `json_equals = 1.0`
/// matches a body's `1` (TOML has two number types, JSON one).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Per-check results for the summary.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CheckSummary {
    pub name: String,
    pub passes: u64,
    pub fails: u64,
    pub rate: f64,
    /// Failures judged on the first 1 MiB of a longer body.
    #[serde(skip_serializing_if = "is_zero")]
    pub cut: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CheckSummary {
    /// Says how many failures were judged on a cut body, when some were.
    pub fn cut_note(&self) -> Option<String> {
        (self.cut > 0).then(|| {
            format!(
                "{} of the failures on a body longer than {} MiB, judged on its first {} MiB",
                self.cut,
                crate::http::KEEP_LIMIT >> 20,
                crate::http::KEEP_LIMIT >> 20
            )
        })
    }
}

/// The run config's `[[checks]]` and the default check's switch.
#[derive(Clone, Debug, Default)]
pub struct CheckConfig {
    pub files: Vec<CheckFile>,
    pub status_check: bool,
    /// The config file the `[[checks]]` came from, to name in errors.
    pub source: Option<std::path::PathBuf>,
}

/// (name → (passes, fails), and failures on a cut body) in the order of
/// `names`.
pub fn summarise(names: &[String], counts: &[(u64, u64)], cut: &[u64]) -> Vec<CheckSummary> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (p, f) = counts.get(i).copied().unwrap_or_default();
            CheckSummary {
                name: name.clone(),
                passes: p,
                fails: f,
                cut: cut.get(i).copied().unwrap_or(0),
                rate: if p + f == 0 {
                    0.0
                } else {
                    ((p as f64 / (p + f) as f64) * 1e6).round() / 1e6
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Outcome {
        let now = std::time::Instant::now();
        Outcome {
            started: now,
            finished: now,
            status: Some(200),
            error: None,
            connecting: None,
            tls: None,
            waiting: None,
            receiving: None,
            bytes_received: body.len() as u64,
            bytes_sent: 0,
            kept: Some(Box::new(crate::http::Kept {
                headers: Vec::new(),
                body: body.as_bytes().to_vec(),
                cut: false,
            })),
        }
    }

    fn json_check(want: &str) -> Custom {
        let want: toml::Value =
            toml::from_str::<toml::Table>(&format!("v = {want}")).unwrap()["v"].clone();
        Custom {
            index: 1,
            tenant: None,
            status: Vec::new(),
            body_contains: None,
            json: Some(("/n".into(), serde_json::to_value(want).unwrap())),
            header: None,
            duration_under: None,
        }
    }

    #[test]
    fn only_failures_on_a_cut_body_count_as_cut() {
        let checks = Checks {
            names: vec!["x".into()],
            recorded: vec![None],
            custom: vec![vec![Custom {
                index: 0,
                tenant: None,
                status: vec![200],
                body_contains: Some("end".into()),
                json: None,
                header: None,
                duration_under: None,
            }]],
            keep: vec![true],
        };
        let mut rec = Recorder::default();
        let d = Duration::from_millis(1);
        let mut cut = answer("start");
        cut.kept.as_mut().unwrap().cut = true;
        checks.run(0, 0, &cut, d, &mut rec);
        // A 500 fails on its status, whatever the body.
        cut.status = Some(500);
        checks.run(0, 0, &cut, d, &mut rec);
        assert_eq!(rec.checks, vec![(0, 2)]);
        assert_eq!(rec.checks_cut, vec![1]);
    }

    #[test]
    fn json_equals_compares_numbers_by_value() {
        let d = Duration::from_millis(1);
        assert!(json_check("1.0").passes(&answer(r#"{"n": 1}"#), d));
        assert!(json_check("1").passes(&answer(r#"{"n": 1.0}"#), d));
        assert!(json_check("[1, { a = 2.0 }]").passes(&answer(r#"{"n": [1.0, {"a": 2}]}"#), d));
        assert!(!json_check("1.5").passes(&answer(r#"{"n": 1}"#), d));
        assert!(!json_check("1").passes(&answer(r#"{"n": "1"}"#), d));
        assert!(!json_check("[1]").passes(&answer(r#"{"n": [1, 2]}"#), d));
    }
}
