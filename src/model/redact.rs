//! Keeping secrets out of the model.
//!
//! Credentials (Authorization, Cookie, API keys, passwords, tokens) are used
//! while modelling — for tenant and session identity — and never stored. Every
//! secret an exchange carries is collected first; nothing that equals or
//! contains one is written anywhere, whatever field it turns up in. What was
//! removed is counted by kind and name for the model's `redactions` section.

use std::collections::BTreeMap;

use serde_json::Value;

use super::identity::{bearer, cookie_pairs, decode, query_pairs};
use super::template::is_jwt;
use crate::capture::Exchange;

/// Headers that are credentials by definition; `--keep-header` cannot opt
/// them in.
pub const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Whether a header, parameter or field name suggests a secret.
pub fn is_secret_name(name: &str) -> bool {
    const PARTS: [&str; 20] = [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "auth",
        "credential",
        "session",
        "signature",
        "private",
        "otp",
        "csrf",
        "xsrf",
        "jwt",
        "cookie",
        "cvv",
        "passphrase",
    ];
    const EXACT: [&str; 7] = [
        "key",
        "sig",
        "pin",
        "ssn",
        "sid",
        "code_verifier",
        "client_assertion",
    ];
    let n = name.to_ascii_lowercase();
    PARTS.iter().any(|p| n.contains(p)) || EXACT.contains(&n.as_str())
}

/// Headers not worth replaying: hop-by-hop, the client's own (user agent,
/// encodings), cache validators of a past state, tracing, proxy and CDN
/// additions.
fn is_noise_header(name: &str) -> bool {
    const EXACT: [&str; 25] = [
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "accept-encoding",
        "referer",
        "origin",
        "user-agent",
        "if-none-match",
        "if-modified-since",
        "cache-control",
        "pragma",
        "dnt",
        "priority",
        "forwarded",
        "via",
        "traceparent",
        "tracestate",
        "upgrade-insecure-requests",
        "expect",
        "range",
        "b3",
    ];
    const PREFIX: [&str; 14] = [
        "x-forwarded-",
        "x-real-ip",
        "x-request-id",
        "x-correlation-id",
        "x-amzn-",
        "x-amz-cf-",
        "x-b3-",
        "x-cloud-trace",
        "x-envoy-",
        "cf-",
        "sec-",
        "x-datadog-",
        "x-newrelic",
        "true-client-ip",
    ];
    EXACT.contains(&name) || PREFIX.iter().any(|p| name.starts_with(p))
}

/// What to do with a request header.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderUse {
    Keep,
    Redact,
    Drop,
}

pub fn header_use(name: &str, kept: &[String]) -> HeaderUse {
    if CREDENTIAL_HEADERS.contains(&name) {
        HeaderUse::Redact
    } else if kept.iter().any(|k| k == name) {
        HeaderUse::Keep
    } else if is_secret_name(name) {
        HeaderUse::Redact
    } else if is_noise_header(name) {
        HeaderUse::Drop
    } else {
        HeaderUse::Keep
    }
}

/// The secret values one exchange carries.
#[derive(Default, Debug)]
pub struct Secrets(Vec<String>);

/// Secrets shorter than this are not looked for inside other values (a
/// two-letter "password" would match everywhere); they are still never
/// stored as themselves.
const MIN_SEARCHED: usize = 6;

impl Secrets {
    pub fn of(x: &Exchange, kept: &[String]) -> Secrets {
        let mut s = Secrets::default();
        for (name, value) in &x.headers {
            if header_use(name, kept) != HeaderUse::Redact {
                continue;
            }
            s.add(value);
            if name == "cookie" {
                cookie_pairs(value).for_each(|(_, v)| s.add(v));
            }
            if let Some((_, cred)) = value.trim().split_once(' ') {
                s.add(cred);
            }
        }
        if let Some(b) = bearer(x) {
            s.add(b);
        }
        if let Some(q) = &x.query {
            for (k, v) in query_pairs(q) {
                if is_secret_name(&decode(k)) {
                    s.add(v);
                    s.add(&decode(v));
                }
            }
        }
        s
    }

    pub fn add(&mut self, v: &str) {
        let v = v.trim();
        if !v.is_empty() && v != "-" && !self.0.iter().any(|x| x == v) {
            self.0.push(v.to_string());
        }
    }

    /// Whether `v` is, or contains, a secret.
    pub fn taints(&self, v: &str) -> bool {
        self.0
            .iter()
            .any(|s| v == s || (s.len() >= MIN_SEARCHED && v.contains(s.as_str())))
            || is_jwt(v.trim())
    }
}

/// Counts of what was redacted, by (kind, name).
#[derive(Default, Debug, Clone)]
pub struct Redactions(pub BTreeMap<(String, String), u64>);

impl Redactions {
    pub fn count(&mut self, kind: &str, name: &str) {
        *self
            .0
            .entry((kind.to_string(), name.to_ascii_lowercase()))
            .or_default() += 1;
    }
}

/// Replaces secret-named fields of a JSON value with `null`, anywhere in it,
/// and any value tainted by a known secret; returns the JSON pointers of what
/// was replaced.
pub fn redact_json(v: &mut Value, secrets: &Secrets, red: &mut Redactions) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, String::new(), secrets, red, &mut out);
    out
}

fn walk(
    v: &mut Value,
    ptr: String,
    secrets: &Secrets,
    red: &mut Redactions,
    out: &mut Vec<String>,
) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let p = format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1"));
                if is_secret_name(k) && !child.is_null() && !child.is_object() && !child.is_array()
                {
                    red.count("body-field", k);
                    *child = Value::Null;
                    out.push(p);
                } else {
                    walk(child, p, secrets, red, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter_mut().enumerate() {
                walk(child, format!("{ptr}/{i}"), secrets, red, out);
            }
        }
        Value::String(s) if secrets.taints(s) => {
            red.count("body-field", ptr.rsplit('/').next().unwrap_or(""));
            *v = Value::Null;
            out.push(ptr);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "Authorization",
            "X-Api-Key",
            "access_token",
            "client_secret",
            "Password",
            "sid",
            "X-CSRF-Token",
        ] {
            assert!(
                is_secret_name(n) || CREDENTIAL_HEADERS.contains(&n.to_ascii_lowercase().as_str()),
                "{n}"
            );
        }
        for n in ["x-tenant-id", "page", "q", "content-type", "order_id"] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn json_redaction() {
        let mut v: Value = serde_json::from_str(
            r#"{"email":"a@b.c","password":"hunter22","nested":{"refresh_token":"r1"},"note":"my key is sk_live_ABCDEF"}"#,
        )
        .unwrap();
        let mut s = Secrets::default();
        s.add("sk_live_ABCDEF");
        let mut red = Redactions::default();
        let ptrs = redact_json(&mut v, &s, &mut red);
        assert_eq!(ptrs, vec!["/password", "/nested/refresh_token", "/note"]);
        assert_eq!(v["email"], "a@b.c");
        assert!(v["password"].is_null());
    }

    #[test]
    fn header_uses() {
        assert_eq!(header_use("cookie", &["cookie".into()]), HeaderUse::Redact);
        assert_eq!(header_use("x-session-id", &[]), HeaderUse::Redact);
        assert_eq!(header_use("x-forwarded-for", &[]), HeaderUse::Drop);
        assert_eq!(
            header_use("x-forwarded-for", &["x-forwarded-for".into()]),
            HeaderUse::Keep
        );
        assert_eq!(header_use("accept", &[]), HeaderUse::Keep);
    }
}
