//! Keeping secrets out of the model.
//!
//! Credentials (Authorization, Cookie, API keys, passwords, tokens) are used
//! while modelling — for tenant and session identity — and never stored. Every
//! secret an exchange carries is collected first; nothing that equals or
//! contains one is written anywhere, whatever field it turns up in. What was
//! removed is counted by kind and name for the model's `redactions` section.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

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
    const PARTS: [&str; 24] = [
        "password",
        "bearer",
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
        // Azure API Management's Ocp-Apim-Subscription-Key, and kin.
        "subscription-key",
        "subscription_key",
        "subscriptionkey",
    ];
    const EXACT: [&str; 9] = [
        "key",
        "sig",
        "pin",
        "ssn",
        "sid",
        "code_verifier",
        "client_assertion",
        "pass",
        "pw",
    ];
    let n = name.to_ascii_lowercase();
    // `author`, `authors`, `author_id` are people, not credentials; the
    // `auth` inside `authorization`/`authorisation` still counts.
    let auth_only_in_author = || {
        n.match_indices("auth").all(|(i, _)| {
            let rest = &n[i..];
            rest.starts_with("author")
                && !rest.starts_with("authoriz")
                && !rest.starts_with("authoris")
        })
    };
    PARTS
        .iter()
        .any(|p| n.contains(p) && !(*p == "auth" && auth_only_in_author()))
        || EXACT.contains(&n.as_str())
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The redaction rules with their answers cached: the same few header and
/// parameter names come back on every request.
#[derive(Debug, Default)]
pub struct Policy {
    kept: Vec<String>,
    headers: RefCell<rustc_hash::FxHashMap<String, HeaderUse>>,
    params: RefCell<rustc_hash::FxHashMap<String, bool>>,
}

/// Distinct names remembered; past that, answers are computed each time.
const MAX_CACHED: usize = 10_000;

impl Policy {
    /// `kept`: lower-case header names opted in with `--keep-header`.
    pub fn new(kept: Vec<String>) -> Policy {
        Policy {
            kept,
            ..Policy::default()
        }
    }

    pub fn kept(&self) -> &[String] {
        &self.kept
    }

    /// What to do with a header (name in lower case).
    pub fn header(&self, name: &str) -> HeaderUse {
        // The header every log line has, answered without a lookup.
        if name == "user-agent" && self.kept.is_empty() {
            return HeaderUse::Drop;
        }
        if let Some(u) = self.headers.borrow().get(name) {
            return *u;
        }
        let u = header_use(name, &self.kept);
        let mut cache = self.headers.borrow_mut();
        if cache.len() < MAX_CACHED {
            cache.insert(name.to_string(), u);
        }
        u
    }

    /// Whether a query or form parameter (raw, percent-encoded name) is a
    /// secret by its name.
    pub fn secret_param(&self, raw: &str) -> bool {
        if let Some(b) = self.params.borrow().get(raw) {
            return *b;
        }
        let b = is_secret_name(&decode(raw));
        let mut cache = self.params.borrow_mut();
        if cache.len() < MAX_CACHED {
            cache.insert(raw.to_string(), b);
        }
        b
    }
}

/// The secret values one exchange carries.
#[derive(Clone, Default, Debug)]
pub struct Secrets(Vec<String>);

/// Secrets shorter than this are not looked for inside other values (a
/// two-letter "password" would match everywhere); they are still never
/// stored as themselves.
const MIN_SEARCHED: usize = 6;

impl Secrets {
    pub fn of(x: &Exchange, policy: &Policy) -> Secrets {
        Secrets::gather(x, policy, &mut |_, _| {})
    }

    /// The secrets of `x`, telling `redacted` the kind and name of each
    /// credential header and secret parameter found.
    pub fn gather(
        x: &Exchange,
        policy: &Policy,
        redacted: &mut dyn FnMut(&'static str, &str),
    ) -> Secrets {
        let mut s = Secrets::default();
        for (name, value) in &x.headers {
            if policy.header(name) != HeaderUse::Redact {
                continue;
            }
            redacted("header", name);
            s.add(value);
            if name == "cookie" {
                cookie_pairs(value)
                    .filter(|(k, v)| {
                        is_secret_name(k) || k.to_ascii_lowercase().contains("sid") || v.len() >= 16
                    })
                    .for_each(|(_, v)| s.add(v));
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
                if policy.secret_param(k) {
                    redacted("query", &decode(k));
                    s.add(v);
                    s.add(&decode(v));
                }
            }
        }
        if x.body.is_some() {
            s.add_from_body(x);
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Values of secret-named fields in JSON and form bodies.
    fn add_from_body(&mut self, x: &Exchange) {
        match &x.body {
            Some(crate::capture::Body::Params { params, .. }) => {
                for p in params.iter().filter(|p| is_secret_name(&p.name)) {
                    self.add(&p.value);
                }
            }
            Some(crate::capture::Body::Text { text, .. }) if text.len() <= 1 << 20 => {
                let t = text.trim_start();
                if t.starts_with('{') || t.starts_with('[') {
                    if let Ok(v) = serde_json::from_str::<Value>(text) {
                        self.add_json(&v);
                    }
                } else if t.contains('=') {
                    for (k, v) in query_pairs(t) {
                        if is_secret_name(&decode(k)) {
                            self.add(&decode(v));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn add_json(&mut self, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    match c {
                        Value::String(s) if is_secret_name(k) => self.add(s),
                        Value::Number(n) if is_secret_name(k) => self.add(&n.to_string()),
                        _ => self.add_json(c),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|c| self.add_json(c)),
            _ => {}
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn add(&mut self, v: &str) {
        let v = v.trim();
        if !v.is_empty() && v != "-" && !self.0.iter().any(|x| x == v) {
            self.0.push(v.to_string());
            // A secret kept percent-encoded (a cookie value) is also
            // looked for as it is once decoded.
            if let Some(d) = decoded(v) {
                self.add(&d);
            }
        }
    }

    /// Whether `v` is, or contains, a secret; `v` percent-decoded too (a
    /// cookie's `a+b/c==` travels in a URL as `a%2Bb%2Fc%3D%3D`).
    pub fn taints(&self, v: &str) -> bool {
        let hit = |v: &str| {
            self.0
                .iter()
                .any(|s| v == s || (s.len() >= MIN_SEARCHED && v.contains(s.as_str())))
                || trimmed_is_jwt(v)
        };
        hit(v) || decoded(v).is_some_and(|d| hit(&d))
    }
}

/// `v` percent-decoded, when it has an escape that decodes to something
/// else (most values have none: nothing is allocated for them).
fn decoded(v: &str) -> Option<String> {
    if !v.contains('%') {
        return None;
    }
    let d = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
    (d != v).then(|| d.into_owned())
}

/// `is_jwt(v.trim())`, without trimming the values that cannot be one
/// (this runs for every pooled value; the trim was 1% of the modeller).
fn trimmed_is_jwt(v: &str) -> bool {
    match v.as_bytes().first() {
        Some(b'e') => is_jwt(v.trim_end()),
        Some(c) if c.is_ascii_alphanumeric() => false,
        _ => is_jwt(v.trim()),
    }
}

/// Every secret seen anywhere in the capture, as hashes, so that a value
/// recorded before its secrecy became known (an API key in a note, before
/// the request that sent it as `X-Api-Key`) is still caught when the model is
/// written. Values are matched whole or as words of a longer text.
#[derive(Default, Debug)]
pub struct SecretIndex {
    hashes: HashSet<u64>,
}

/// Shortest secret kept in the index (shorter ones would match ordinary
/// words); most secrets kept (a hash each).
const MIN_INDEXED: usize = 8;
const MAX_INDEXED: usize = 2_000_000;

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Characters that never occur inside a token, key or password-like word.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || "\"',;&=()<>{}[]\\".contains(c)
}

impl SecretIndex {
    pub fn add(&mut self, secrets: &Secrets) {
        for v in secrets.values() {
            if v.len() >= MIN_INDEXED && self.hashes.len() < MAX_INDEXED {
                self.hashes.insert(hash(v));
            }
        }
    }

    /// Whether `v`, or a word of it, is a known secret (`v` as it is and
    /// percent-decoded).
    pub fn taints(&self, v: &str) -> bool {
        if self.hashes.is_empty() {
            return false;
        }
        let hit = |v: &str| {
            self.hashes.contains(&hash(v.trim()))
                || v.split(is_separator)
                    .any(|w| w.len() >= MIN_INDEXED && self.hashes.contains(&hash(w)))
        };
        hit(v) || decoded(v).is_some_and(|d| hit(&d))
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
pub fn redact_json(
    v: &mut Value,
    tainted: &dyn Fn(&str) -> bool,
    red: &mut Redactions,
) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, String::new(), tainted, red, &mut out);
    out
}

fn walk(
    v: &mut Value,
    ptr: String,
    tainted: &dyn Fn(&str) -> bool,
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
                    walk(child, p, tainted, red, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter_mut().enumerate() {
                walk(child, format!("{ptr}/{i}"), tainted, red, out);
            }
        }
        Value::String(s) if tainted(s) => {
            red.count("body-field", ptr.rsplit('/').next().unwrap_or(""));
            *v = Value::Null;
            out.push(ptr);
        }
        _ => {}
    }
}

/// A URL (or an argument holding one, like `--target=...` or `db=http://...`)
/// with the password of its userinfo and the values of secret-looking query
/// parameters (`token`, `api_key`, `password`, ...) masked.
pub fn mask_url(s: &str) -> String {
    let Some(scheme_at) = s.find("://") else {
        return s.to_string();
    };
    let (head, rest) = s.split_at(scheme_at + 3);
    // A password with an unencoded `/`, `?` or `#` ends the authority
    // early (`ci:12/34@host` parses as host `ci`, port 12): when an `@`
    // comes after a `:` past the authority, everything between them is
    // taken for a password. (It may mask a path holding `@` after a port;
    // a password shown is worse.)
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if !rest[..authority_end].contains('@')
        && let Some(at) = rest.rfind('@')
        && let Some(colon) = rest[..at].find(':')
        && colon < authority_end
    {
        return format!("{head}{}:***{}", &rest[..colon], mask_url_tail(&rest[at..]));
    }
    // user:password@host → user:***@host
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    format!("{head}{authority}{}", mask_url_tail(tail))
}

/// A URL's path, query and fragment with secret-looking query values masked.
fn mask_url_tail(tail: &str) -> String {
    match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_name(&k.to_ascii_lowercase()) => {
                        format!("{k}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            let mut t = format!("{path}?{}", masked.join("&"));
            if let Some(f) = fragment {
                t.push('#');
                t.push_str(f);
            }
            t
        }
        None => tail.to_string(),
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
            "Ocp-Apim-Subscription-Key",
        ] {
            assert!(
                is_secret_name(n) || CREDENTIAL_HEADERS.contains(&n.to_ascii_lowercase().as_str()),
                "{n}"
            );
        }
        for n in ["x-tenant-id", "page", "q", "content-type", "order_id"] {
            assert!(!is_secret_name(n), "{n}");
        }
        // People who write things are not credentials; `auth` elsewhere in
        // the name still is.
        for n in ["author", "authors", "author_id", "authorName"] {
            assert!(!is_secret_name(n), "{n}");
        }
        for n in [
            "authorization",
            "X-Authorisation",
            "author_auth",
            "oauth_author",
            "authToken",
        ] {
            assert!(is_secret_name(n), "{n}");
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
        let ptrs = redact_json(&mut v, &|v| s.taints(v), &mut red);
        assert_eq!(ptrs, vec!["/password", "/nested/refresh_token", "/note"]);
        assert_eq!(v["email"], "a@b.c");
        assert!(v["password"].is_null());
    }

    #[test]
    fn index_finds_secrets_in_words() {
        let mut s = Secrets::default();
        s.add("sk_live_ABCDEF12");
        s.add("short");
        let mut idx = SecretIndex::default();
        idx.add(&s);
        assert!(idx.taints("sk_live_ABCDEF12"));
        assert!(idx.taints("my key is \"sk_live_ABCDEF12\", ok"));
        assert!(!idx.taints("short"));
        assert!(!idx.taints("sk_live_ABCDEF1"));
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
