//! Request bodies → body templates, built when the model is written, so that
//! the tenant's pools and the secrets of the whole capture are known.

use std::borrow::Cow;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::super::identity::{decode, query_pairs};
use super::super::redact::{self, Redactions, Secrets, is_secret_name};
use super::super::template::{self, SlotKind};
use super::super::{BodySlot, BodyTemplate, FormParam};
use crate::capture::{Body, Param};

/// Bodies larger than this are not kept as templates.
const MAX_BODY: usize = 64 * 1024;

/// An endpoint's first body, waiting for the end of the input.
pub(super) struct PendingBody {
    pub body: Body,
    pub secrets: Secrets,
    /// This request's own slot values → pool (and the path segment the
    /// value was in, for path slots).
    pub known: FxHashMap<String, (String, Option<usize>)>,
    pub tenant: u32,
}

/// A value's pool, and the path segment it was in when it was this
/// request's own path value.
type PoolFor<'a> = dyn Fn(&str) -> Option<(String, Option<usize>)> + 'a;

/// The most fields of one body pooled per request.
const MAX_BODY_FIELDS: usize = 64;

/// What every body field's pool name starts with: `#` cannot be in a path
/// segment, so no path pool (`{segment}.{kind}`) can start the same way.
pub(super) const FIELD_POOL: &str = "body#";

/// The pool a body field's values are kept in, per tenant: `body#` then
/// the endpoint (`POST /api/login`), `#`, and the field (a JSON pointer, or
/// `/` and a form field's name, with `#N` for its Nth repeat). Only fields
/// whose values vary become slots; the other pools are dropped when the
/// model is written.
pub(super) fn field_pool(endpoint: &str, field: &str) -> String {
    format!("{FIELD_POOL}{endpoint}#{field}")
}

/// A form field's name as a body field: `/name`, and `/name#2` for its
/// second occurrence in the same body (so `tags=a&tags=b` is two fields).
fn form_field(seen: &mut FxHashMap<String, usize>, name: &str) -> String {
    let n = seen.entry(name.to_string()).or_default();
    *n += 1;
    if *n == 1 {
        format!("/{}", pointer_part(name))
    } else {
        format!("/{}#{n}", pointer_part(name))
    }
}

/// Calls `f(field, value)` for each text field of a request body that may
/// be worth a pool: JSON string leaves and form fields, short, not named
/// like secrets (their values never reach a pool).
pub(super) fn body_fields(body: &crate::capture::Body, mut f: impl FnMut(&str, &str)) {
    let mut n = 0;
    let mut keep = |field: &str, value: &str| {
        if n < MAX_BODY_FIELDS && (1..=256).contains(&value.len()) {
            n += 1;
            f(field, value);
        }
    };
    let mut names = FxHashMap::default();
    match body {
        Body::Text { mime, text } => {
            if text.len() > MAX_BODY / 4 {
                return;
            }
            let t = text.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                if let Ok(v) = serde_json::from_str::<Value>(text) {
                    string_leaves(&v, &mut String::new(), &mut keep);
                }
            } else if mime.to_ascii_lowercase().contains("x-www-form-urlencoded") {
                // As body_template reads it (pcap bodies, HAR postData.text).
                for (k, v) in query_pairs(text) {
                    let (name, value) = (decode(k), decode(v));
                    let field = form_field(&mut names, &name);
                    if !is_secret_name(&name) {
                        keep(&field, &value);
                    }
                }
            }
        }
        Body::Params { params, .. } => {
            for p in params {
                let field = form_field(&mut names, &p.name);
                if p.file_name.is_none() && !is_secret_name(&p.name) {
                    keep(&field, &p.value);
                }
            }
        }
    }
}

/// The string leaves of `v` under `ptr`, skipping secret-named keys.
fn string_leaves(v: &Value, ptr: &mut String, f: &mut impl FnMut(&str, &str)) {
    let len = ptr.len();
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                if is_secret_name(k) {
                    continue;
                }
                ptr.push('/');
                ptr.push_str(&pointer_part(k));
                string_leaves(c, ptr, f);
                ptr.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                ptr.push('/');
                ptr.push_str(&i.to_string());
                string_leaves(c, ptr, f);
                ptr.truncate(len);
            }
        }
        Value::String(s) => f(ptr, s),
        _ => {}
    }
}

/// Whether a body value is an identifier worth drawing from a pool (not a
/// quantity like `1` or a flag like `true`).
fn identifier_like(v: &str) -> bool {
    match template::classify(v, &[]) {
        Some(SlotKind::Id) => v.len() >= 3,
        Some(SlotKind::Text | SlotKind::Secret) | None => false,
        Some(_) => true,
    }
}

/// The template of `body`: secrets removed (by name, or because `tainted`
/// says so), values that are this request's slot values (`known`) or the
/// tenant's pool values (`pool_of`) made into slots, and so are the text
/// fields whose recorded values varied (`varying`: a field → its pool), so
/// that each tenant sends its own (an email recorded for one tenant must not
/// log in every tenant).
pub(super) fn body_template(
    body: &Body,
    tainted: &dyn Fn(&str) -> bool,
    known: &FxHashMap<String, (String, Option<usize>)>,
    pool_of: &FxHashMap<String, String>,
    varying: &dyn Fn(&str) -> Option<String>,
    red: &mut Redactions,
) -> Option<BodyTemplate> {
    let pool_for = |v: &str| -> Option<(String, Option<usize>)> {
        known.get(v).cloned().or_else(|| {
            identifier_like(v)
                .then(|| pool_of.get(v).map(|p| (p.clone(), None)))
                .flatten()
        })
    };
    match body {
        Body::Text { mime, text } => {
            if text.len() > MAX_BODY {
                return None;
            }
            let trimmed = text.trim_start();
            let lower_mime = mime.to_ascii_lowercase();
            let json_like =
                lower_mime.contains("json") || trimmed.starts_with('{') || trimmed.starts_with('[');
            if json_like && let Ok(mut value) = serde_json::from_str::<Value>(text) {
                let redacted = redact::redact_json(&mut value, tainted, red);
                let mut slots = Vec::new();
                json_slots(&value, String::new(), &pool_for, &mut slots);
                string_leaves(&value, &mut String::new(), &mut |ptr: &str, _: &str| {
                    if !slots.iter().any(|s| s.pointer == ptr)
                        && let Some(pool) = varying(ptr)
                    {
                        slots.push(BodySlot {
                            pointer: ptr.to_string(),
                            pool,
                            path_segment: None,
                        });
                    }
                });
                return Some(BodyTemplate::Json {
                    mime: mime.clone(),
                    value,
                    slots,
                    redacted,
                });
            }
            if lower_mime.contains("x-www-form-urlencoded") {
                let params: Vec<Param> = query_pairs(text)
                    .map(|(k, v)| Param {
                        name: decode(k).into_owned(),
                        value: decode(v).into_owned(),
                        file_name: None,
                        content_type: None,
                    })
                    .collect();
                return Some(form_template(
                    mime, &params, tainted, &pool_for, varying, red,
                ));
            }
            let lower = text.to_ascii_lowercase();
            let suspicious = [
                "password",
                "passwd",
                "secret",
                "token",
                "apikey",
                "api_key",
                "authorization",
            ]
            .iter()
            .any(|w| lower.contains(w));
            if suspicious || tainted(text) {
                red.count("body", mime);
                return None;
            }
            Some(BodyTemplate::Text {
                mime: mime.clone(),
                text: text.clone(),
            })
        }
        Body::Params { mime, params } => Some(form_template(
            mime, params, tainted, &pool_for, varying, red,
        )),
    }
}

fn pointer_part(k: &str) -> Cow<'_, str> {
    if k.contains(['~', '/']) {
        Cow::Owned(k.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(k)
    }
}

fn json_slots(v: &Value, ptr: String, pool_for: &PoolFor, out: &mut Vec<BodySlot>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                json_slots(c, format!("{ptr}/{}", pointer_part(k)), pool_for, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                json_slots(c, format!("{ptr}/{i}"), pool_for, out);
            }
        }
        Value::String(s) => {
            if let Some((pool, path_segment)) = pool_for(s) {
                out.push(BodySlot {
                    pointer: ptr,
                    pool,
                    path_segment,
                });
            }
        }
        Value::Number(n) => {
            if let Some((pool, path_segment)) = pool_for(&n.to_string()) {
                out.push(BodySlot {
                    pointer: ptr,
                    pool,
                    path_segment,
                });
            }
        }
        _ => {}
    }
}

fn form_template(
    mime: &str,
    params: &[Param],
    tainted: &dyn Fn(&str) -> bool,
    pool_for: &PoolFor,
    varying: &dyn Fn(&str) -> Option<String>,
    red: &mut Redactions,
) -> BodyTemplate {
    let mut out = Vec::new();
    let mut slots = Vec::new();
    let mut redacted = Vec::new();
    let mut names = FxHashMap::default();
    for p in params {
        if tainted(&p.name) {
            // A field whose very name carries a secret (a JSON fragment
            // with a cookie in it, as a Fiddler export has it) is left out
            // whole, and counted without its name.
            red.count("form-field", "(a name with a secret in it)");
            continue;
        }
        let i = out.len();
        let field = form_field(&mut names, &p.name);
        let secret = is_secret_name(&p.name) || tainted(&p.value);
        let value = if secret {
            red.count("form-field", &p.name);
            redacted.push(p.name.clone());
            String::new()
        } else if p.file_name.is_some() {
            // File contents are not kept; replay sends an empty file of the
            // recorded name and type.
            String::new()
        } else {
            p.value.clone()
        };
        let pool = if secret || p.file_name.is_some() {
            None
        } else {
            pool_for(&value).or_else(|| varying(&field).map(|p| (p, None)))
        };
        if let Some((pool, path_segment)) = pool {
            slots.push(BodySlot {
                pointer: format!("/{i}"),
                pool,
                path_segment,
            });
        }
        out.push(FormParam {
            name: p.name.clone(),
            value,
            file_name: p.file_name.clone(),
            content_type: p.content_type.clone(),
        });
    }
    BodyTemplate::Form {
        mime: mime.to_string(),
        params: out,
        slots,
        redacted,
    }
}
