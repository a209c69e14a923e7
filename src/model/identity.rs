//! Who sent a request: its tenant, and the client whose session it belongs to.
//!
//! Both come from rule lists (first match wins). The values that identify a
//! session — tokens, cookies, API keys — are secrets: they are hashed on the
//! spot and only the hash is kept, in memory, for grouping.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use base64::Engine;
use serde_json::Value;

use crate::capture::Exchange;

/// Where a request's tenant is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantRule {
    /// A request header (name in lower case).
    Header(String),
    /// A claim of the bearer token (a JWT, decoded without verification).
    Jwt(String),
    /// The first label of the host (`acme.example.com` → `acme`).
    HostSubdomain,
    /// The Nth path segment, counted from 1.
    PathSegment(usize),
    /// A query parameter.
    Query(String),
    /// A cookie.
    Cookie(String),
}

/// A tenant or session-key rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(String);

impl FromStr for TenantRule {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, RuleError> {
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        let need = |what: &str| {
            if arg.trim().is_empty() {
                Err(RuleError(format!(
                    "`{s}`: {kind} needs {what} (e.g. {kind}:{what})"
                )))
            } else {
                Ok(arg.trim().to_string())
            }
        };
        Ok(match kind.trim() {
            "header" => TenantRule::Header(need("NAME")?.to_ascii_lowercase()),
            "jwt" => TenantRule::Jwt(need("CLAIM")?),
            "host" if matches!(arg, "" | "subdomain") => TenantRule::HostSubdomain,
            "path" => {
                let n: usize = need("N")?.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    RuleError(format!("`{s}`: path:N takes a segment number from 1"))
                })?;
                TenantRule::PathSegment(n)
            }
            "query" => TenantRule::Query(need("NAME")?),
            "cookie" => TenantRule::Cookie(need("NAME")?),
            _ => {
                return Err(RuleError(format!(
                    "`{s}`: expected header:NAME, jwt:CLAIM, host:subdomain, path:N, query:NAME or cookie:NAME"
                )));
            }
        })
    }
}

impl fmt::Display for TenantRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantRule::Header(h) => write!(f, "header:{h}"),
            TenantRule::Jwt(c) => write!(f, "jwt:{c}"),
            TenantRule::HostSubdomain => write!(f, "host:subdomain"),
            TenantRule::PathSegment(n) => write!(f, "path:{n}"),
            TenantRule::Query(q) => write!(f, "query:{q}"),
            TenantRule::Cookie(c) => write!(f, "cookie:{c}"),
        }
    }
}

/// Longest tenant name kept; longer values are not tenant names.
const MAX_TENANT_LEN: usize = 64;

impl TenantRule {
    /// The tenant this rule finds in `x`, if any.
    pub fn extract<'a>(&self, x: &'a Exchange) -> Option<Cow<'a, str>> {
        let v: Cow<'a, str> = match self {
            TenantRule::Header(h) => Cow::Borrowed(x.header(h)?),
            TenantRule::Jwt(claim) => {
                Cow::Owned(bearer_claims(x).and_then(|c| claim_text(&c, claim))?)
            }
            TenantRule::HostSubdomain => Cow::Borrowed(x.host.as_deref().and_then(subdomain)?),
            TenantRule::PathSegment(n) => decode(path_segment(&x.path, *n)?),
            TenantRule::Query(q) => decode(query_param(x.query.as_deref(), q)?),
            TenantRule::Cookie(c) => Cow::Borrowed(cookie(x, c)?),
        };
        let ok = |t: &str| {
            !t.is_empty()
                && t.len() <= MAX_TENANT_LEN
                && !t.bytes().any(|b| matches!(b, b'/' | b'\n' | b'\r'))
        };
        match v {
            Cow::Borrowed(b) => Some(Cow::Borrowed(b.trim())).filter(|t| ok(t)),
            Cow::Owned(o) => Some(Cow::Owned(o.trim().to_string())).filter(|t| ok(t)),
        }
    }
}

/// Tenant rules guessed from a sample of the traffic, when none are given:
/// tenant-like headers, JWT claims, cookies and query parameters; a
/// `/tenants/{name}/...` path; per-tenant subdomains of one parent domain.
pub fn auto_tenant_rules(sample: &[Exchange]) -> Vec<TenantRule> {
    const HEADERS: [&str; 8] = [
        "x-tenant-id",
        "x-tenant",
        "tenant-id",
        "x-org-id",
        "x-organization-id",
        "x-account-id",
        "x-workspace-id",
        "x-customer-id",
    ];
    const CLAIMS: [&str; 7] = [
        "tenant",
        "tenant_id",
        "tid",
        "org_id",
        "organization_id",
        "org",
        "workspace_id",
    ];
    const PARAMS: [&str; 4] = ["tenant", "tenant_id", "org", "org_id"];
    const PREFIXES: [&str; 9] = [
        "t",
        "tenant",
        "tenants",
        "org",
        "orgs",
        "organizations",
        "accounts",
        "workspaces",
        "customers",
    ];
    let mut rules = Vec::new();
    let present = |r: &TenantRule| sample.iter().any(|x| r.extract(x).is_some());
    let candidates = HEADERS
        .iter()
        .map(|h| TenantRule::Header(h.to_string()))
        .chain(CLAIMS.iter().map(|c| TenantRule::Jwt(c.to_string())))
        .chain(PARAMS.iter().map(|c| TenantRule::Cookie(c.to_string())))
        .chain(PARAMS.iter().map(|q| TenantRule::Query(q.to_string())));
    rules.extend(candidates.filter(present));
    if sample.iter().any(|x| {
        path_segment(&x.path, 1).is_some_and(|s| PREFIXES.contains(&s))
            && path_segment(&x.path, 2).is_some()
    }) {
        rules.push(TenantRule::PathSegment(2));
    }
    if per_tenant_subdomains(sample) {
        rules.push(TenantRule::HostSubdomain);
    }
    rules
}

/// Two or more hosts `<name>.<parent>` under one parent of two or more labels,
/// whose first labels are not the usual infrastructure names, serving the
/// same endpoint: one application per tenant subdomain, not a page pulling
/// from a dozen CDNs.
fn per_tenant_subdomains(sample: &[Exchange]) -> bool {
    use std::collections::{BTreeMap, BTreeSet};
    // parent → endpoint → (first labels serving it, requests)
    let mut by_parent: BTreeMap<&str, BTreeMap<String, (BTreeSet<&str>, usize)>> = BTreeMap::new();
    for x in sample {
        let Some(h) = x.host.as_deref() else { continue };
        if let (Some(first), Some((_, parent))) = (subdomain(h), h.split_once('.')) {
            let endpoint = format!(
                "{} {}",
                x.method,
                super::template::template_path(&x.path, None, &[]).path
            );
            let e = by_parent
                .entry(parent)
                .or_default()
                .entry(endpoint)
                .or_default();
            e.0.insert(first);
            e.1 += 1;
        }
    }
    // The parent carries most of the traffic, and most of its requests go to
    // endpoints that several subdomains serve.
    by_parent.values().any(|endpoints| {
        let total: usize = endpoints.values().map(|e| e.1).sum();
        let shared: usize = endpoints
            .values()
            .filter(|e| e.0.len() >= 2)
            .map(|e| e.1)
            .sum();
        2 * total >= sample.len() && 2 * shared >= total && shared > 0
    })
}

fn subdomain(host: &str) -> Option<&str> {
    const INFRA: [&str; 12] = [
        "www", "api", "app", "static", "cdn", "assets", "img", "images", "media", "m", "mobile",
        "staging",
    ];
    if host.parse::<std::net::IpAddr>().is_ok() || host.split('.').count() < 3 {
        return None;
    }
    let first = host.split('.').next()?;
    (!INFRA.contains(&first) && !first.is_empty()).then_some(first)
}

/// How requests are grouped into sessions (beyond the automatic chain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionKeyRule {
    /// Credentials: bearer token subject, Basic user, session cookie, API key.
    Credentials,
    Header(String),
    Cookie(String),
    Jwt(String),
    Query(String),
    /// The authenticated user a log recorded.
    User,
    Ip,
    IpUserAgent,
}

impl FromStr for SessionKeyRule {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, RuleError> {
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        let arg = arg.trim();
        let named = |f: fn(String) -> SessionKeyRule| {
            if arg.is_empty() {
                Err(RuleError(format!(
                    "`{s}`: {kind} needs a name ({kind}:NAME)"
                )))
            } else {
                Ok(f(arg.to_string()))
            }
        };
        match kind.trim() {
            "auth" | "credentials" => Ok(SessionKeyRule::Credentials),
            "header" => named(|n| SessionKeyRule::Header(n.to_ascii_lowercase())),
            "cookie" => named(SessionKeyRule::Cookie),
            "jwt" => named(SessionKeyRule::Jwt),
            "query" => named(SessionKeyRule::Query),
            "user" => Ok(SessionKeyRule::User),
            "ip" => Ok(SessionKeyRule::Ip),
            "ip+ua" => Ok(SessionKeyRule::IpUserAgent),
            _ => Err(RuleError(format!(
                "`{s}`: expected auth, header:NAME, cookie:NAME, jwt:CLAIM, query:NAME, user, ip or ip+ua"
            ))),
        }
    }
}

impl fmt::Display for SessionKeyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionKeyRule::Credentials => write!(f, "auth"),
            SessionKeyRule::Header(h) => write!(f, "header:{h}"),
            SessionKeyRule::Cookie(c) => write!(f, "cookie:{c}"),
            SessionKeyRule::Jwt(c) => write!(f, "jwt:{c}"),
            SessionKeyRule::Query(q) => write!(f, "query:{q}"),
            SessionKeyRule::User => write!(f, "user"),
            SessionKeyRule::Ip => write!(f, "ip"),
            SessionKeyRule::IpUserAgent => write!(f, "ip+ua"),
        }
    }
}

/// The automatic session key chain.
pub fn default_session_rules() -> Vec<SessionKeyRule> {
    vec![
        SessionKeyRule::Credentials,
        SessionKeyRule::User,
        SessionKeyRule::IpUserAgent,
    ]
}

impl SessionKeyRule {
    /// A hash of this rule's identity for `x`, if the rule applies.
    fn key(&self, x: &Exchange) -> Option<u64> {
        match self {
            SessionKeyRule::Credentials => credential_key(x),
            SessionKeyRule::Header(h) => x.header(h).map(|v| hash(("h", h, v))),
            SessionKeyRule::Cookie(c) => cookie(x, c).map(|v| hash(("c", c, v))),
            SessionKeyRule::Jwt(claim) => bearer_claims(x)
                .and_then(|c| claim_text(&c, claim))
                .map(|v| hash(("j", claim, v))),
            SessionKeyRule::Query(q) => {
                query_param(x.query.as_deref(), q).map(|v| hash(("q", q, v)))
            }
            SessionKeyRule::User => x.user.as_deref().map(|u| hash(("u", u))),
            SessionKeyRule::Ip => x.client.as_deref().map(|ip| hash(("ip", ip))),
            SessionKeyRule::IpUserAgent => x
                .client
                .as_deref()
                .map(|ip| hash(("ipua", ip, x.header("user-agent").unwrap_or("")))),
        }
    }
}

/// The session identity of `x` (a hash): the first rule that applies, else
/// client address and user agent, else the input it came from (a HAR file is
/// one browser). The second value is the client's own identity (address and
/// agent) when the first is something else: a client that logs in mid-way
/// keeps the session it started anonymously.
pub fn session_keys(x: &Exchange, rules: &[SessionKeyRule], input: usize) -> (u64, Option<u64>) {
    let client = SessionKeyRule::IpUserAgent.key(x);
    let key = rules.iter().find_map(|r| match r {
        // Already worked out: the client's own identity.
        SessionKeyRule::IpUserAgent => client,
        r => r.key(x),
    });
    match key {
        Some(k) if Some(k) != client => (k, client),
        Some(k) => (k, None),
        None => (
            client.unwrap_or_else(|| hash(("input", input, x.header("user-agent").unwrap_or("")))),
            None,
        ),
    }
}

fn credential_key(x: &Exchange) -> Option<u64> {
    if let Some(auth) = x.header("authorization") {
        let (scheme, cred) = auth.trim().split_once(' ').unwrap_or(("", auth));
        if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(sub) = jwt_claims(cred.trim()).and_then(|c| claim_text(&c, "sub")) {
                return Some(hash(("sub", sub)));
            }
            return Some(hash(("bearer", cred.trim())));
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(cred.trim())
        {
            let user = String::from_utf8_lossy(&raw);
            return Some(hash(("basic", user.split(':').next().unwrap_or(""))));
        }
        return Some(hash(("auth", auth)));
    }
    // One pass over the headers, one over the query: this runs per request.
    let (mut cookies, mut api_key) = (None, None);
    for (name, value) in &x.headers {
        match name.as_str() {
            "cookie" => cookies = cookies.or(Some(value)),
            "x-api-key" | "api-key" | "apikey" | "x-apikey" | "x-auth-token" => {
                api_key = api_key.or(Some(value))
            }
            _ => {}
        }
    }
    if let Some(cookies) = cookies {
        for (name, value) in cookie_pairs(cookies) {
            if is_session_cookie(name) && !value.is_empty() {
                return Some(hash(("cookie", name, value)));
            }
        }
    }
    if let Some(v) = api_key {
        return Some(hash(("apikey", v)));
    }
    let q = x.query.as_deref()?;
    query_pairs(q)
        .find(|(k, v)| {
            !v.is_empty() && matches!(*k, "api_key" | "apikey" | "access_token" | "token")
        })
        .map(|(_, v)| hash(("qkey", v)))
}

fn is_session_cookie(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("sess")
        || n == "sid"
        || n.ends_with("_sid")
        || n.contains("token")
        || n.contains("auth")
        || n == "jwt"
}

/// A fast, deterministic hash for grouping (never written anywhere).
fn hash<T: Hash>(t: T) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    t.hash(&mut h);
    h.finish()
}

// ---- small readers of request parts ----

/// Decodes a JWT's claims without verifying it. `None` if it is not a JWT.
pub fn jwt_claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&raw).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The bearer token of `x`, if it has one.
pub fn bearer(x: &Exchange) -> Option<&str> {
    let auth = x.header("authorization")?.trim();
    let (scheme, cred) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| cred.trim())
}

fn bearer_claims(x: &Exchange) -> Option<serde_json::Map<String, Value>> {
    jwt_claims(bearer(x)?)
}

fn claim_text(claims: &serde_json::Map<String, Value>, claim: &str) -> Option<String> {
    match claims.get(claim)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `a=b; c=d` → pairs.
pub fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        Some((k.trim(), v.trim()))
    })
}

fn cookie<'a>(x: &'a Exchange, name: &str) -> Option<&'a str> {
    x.headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .flat_map(|(_, v)| cookie_pairs(v))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `a=1&b=2` → raw (still percent-encoded) pairs; a name without `=` has an
/// empty value.
pub fn query_pairs(q: &str) -> impl Iterator<Item = (&str, &str)> {
    split_bytes(q, b'&').filter(|kv| !kv.is_empty()).map(|kv| {
        // The empty value of a bare name is still a slice of the query, so
        // callers can locate it.
        match memchr::memchr(b'=', kv.as_bytes()) {
            Some(i) => (&kv[..i], &kv[i + 1..]),
            None => (kv, &kv[kv.len()..]),
        }
    })
}

/// `s.split(sep)` for an ASCII separator, found with memchr.
pub fn split_bytes(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(sep, r.as_bytes()) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn query_param<'a>(q: Option<&'a str>, name: &str) -> Option<&'a str> {
    query_pairs(q?)
        .find(|(k, _)| *k == name || decode(k) == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The Nth (from 1) non-empty path segment.
pub fn path_segment(path: &str, n: usize) -> Option<&str> {
    // A byte loop: segments are short, and a tenant rule runs this for
    // every request (a `memchr` per segment cost more than the scan).
    let mut left = n.checked_sub(1)?;
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] != b'/' {
            i += 1;
        }
        if left == 0 {
            return Some(&path[start..i]);
        }
        left -= 1;
    }
    None
}

/// Percent-decoding (with `+` as space, as forms encode it); borrows when
/// there is nothing to decode.
pub fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let s = s.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_the_nonempty_ones() {
        for path in [
            "",
            "/",
            "//",
            "/a",
            "a/b",
            "/t/acme//api/",
            "///x///y",
            "/é/ü/z",
        ] {
            for n in 0usize..5 {
                let want = n
                    .checked_sub(1)
                    .and_then(|k| path.split('/').filter(|s| !s.is_empty()).nth(k));
                assert_eq!(path_segment(path, n), want, "{path} {n}");
            }
        }
    }

    fn jwt(claims: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b.encode("{\"alg\":\"none\"}"),
            b.encode(claims)
        )
    }

    fn x(headers: &[(&str, &str)], host: &str, path: &str, query: Option<&str>) -> Exchange {
        Exchange {
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            host: Some(host.into()),
            path: path.into(),
            query: query.map(str::to_string),
            client: Some("10.0.0.1".into()),
            ..Exchange::default()
        }
    }

    #[test]
    fn tenant_rules() {
        let token = jwt(r#"{"sub":"u1","org_id":"acme"}"#);
        let auth = format!("Bearer {token}");
        let e = x(
            &[
                ("authorization", &auth),
                ("x-tenant-id", "globex"),
                ("cookie", "t=initech; sid=1"),
            ],
            "umbrella.shop.example.com",
            "/t/hooli/orders/1",
            Some("tenant=stark"),
        );
        let get = |r: &str| r.parse::<TenantRule>().unwrap().extract(&e);
        assert_eq!(get("jwt:org_id").as_deref(), Some("acme"));
        assert_eq!(get("header:X-Tenant-ID").as_deref(), Some("globex"));
        assert_eq!(get("cookie:t").as_deref(), Some("initech"));
        assert_eq!(get("host:subdomain").as_deref(), Some("umbrella"));
        assert_eq!(get("path:2").as_deref(), Some("hooli"));
        assert_eq!(get("query:tenant").as_deref(), Some("stark"));
        assert_eq!(get("query:nope"), None);
        assert!("path:0".parse::<TenantRule>().is_err());
        assert!("header".parse::<TenantRule>().is_err());
        assert!("magic:x".parse::<TenantRule>().is_err());
    }

    #[test]
    fn session_keys_prefer_credentials() {
        let a = format!("Bearer {}", jwt(r#"{"sub":"alice"}"#));
        let b = format!("Bearer {}", jwt(r#"{"sub":"alice","iat":2}"#));
        let r = default_session_rules();
        let (k1, c1) = session_keys(&x(&[("authorization", &a)], "h", "/", None), &r, 0);
        let (k2, _) = session_keys(&x(&[("authorization", &b)], "h", "/", None), &r, 0);
        assert_eq!(k1, k2, "same subject, different tokens: one user");
        let (k3, c3) = session_keys(&x(&[], "h", "/", None), &r, 0);
        assert_ne!(k1, k3);
        assert_eq!(c1, Some(k3), "the anonymous identity of the same client");
        assert_eq!(c3, None);
    }

    #[test]
    fn auto_rules_find_tenant_headers_and_subdomains() {
        let s = vec![
            x(
                &[("x-tenant-id", "a")],
                "acme.example.com",
                "/api/orders/1",
                None,
            ),
            x(&[], "globex.example.com", "/api/orders/2", None),
            x(&[], "globex.example.com", "/api/me", None),
        ];
        let rules = auto_tenant_rules(&s);
        assert_eq!(
            rules,
            vec![
                TenantRule::Header("x-tenant-id".into()),
                TenantRule::HostSubdomain
            ]
        );
        let plain = vec![
            x(&[], "www.example.com", "/", None),
            x(&[], "api.example.com", "/", None),
        ];
        assert!(auto_tenant_rules(&plain).is_empty());
        let cdns = vec![
            x(&[], "z.cdn.example.com", "/a.js", None),
            x(&[], "ads.cdn.example.com", "/b", None),
        ];
        assert!(auto_tenant_rules(&cdns).is_empty());
    }
}
