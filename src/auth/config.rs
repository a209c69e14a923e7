//! `[auth]` of the run config → a checked [`AuthConfig`].
//!
//! Every string may carry `${ENV_VAR}` (so CI secrets never sit in files);
//! a variable that is not set is a usage error naming it. Credentials come
//! from the section itself (`client_id`, `username`, `key`, ...), from
//! `users = [...]`, or from a CSV or JSON file (`credentials = "users.csv"`)
//! with one row per test user; the section's own values are defaults every
//! row may override. Templates (`{username}`, `{password}`, `{tenant}`, any
//! column) are checked against every row before anything is sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::UsageError;

/// How tokens are obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// OAuth2 client_credentials grant (RFC 6749 §4.4).
    Oauth2ClientCredentials,
    /// OAuth2 resource owner password grant, refreshed with the
    /// refresh_token grant when the server issues refresh tokens.
    Oauth2Password,
    /// A JSON login endpoint: `POST /api/login {"email": .., "password": ..}`.
    JsonLogin,
    /// A form (or JSON) login answered with a session cookie.
    CookieLogin,
    /// A static key in a header (or query parameter); no login.
    ApiKey,
}

impl AuthKind {
    pub fn name(self) -> &'static str {
        match self {
            AuthKind::Oauth2ClientCredentials => "oauth2_client_credentials",
            AuthKind::Oauth2Password => "oauth2_password",
            AuthKind::JsonLogin => "json_login",
            AuthKind::CookieLogin => "cookie_login",
            AuthKind::ApiKey => "api_key",
        }
    }
}

/// How OAuth2 clients authenticate to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`, the RFC's default).
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Body,
}

/// Where the expiry of a token comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpirySource {
    /// `expires_in` in the response, else the JWT `exp` claim, else a
    /// cookie's Max-Age, else `ttl`, else never.
    Auto,
    ExpiresIn,
    Jwt,
    Ttl,
    Never,
}

/// `[auth]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub kind: Option<AuthKind>,
    /// The login or token endpoint: a path on the target (`/api/login`), or
    /// an absolute URL (`https://idp.example.com/oauth/token`); `{tenant}`
    /// may stand in either.
    pub url: Option<String>,
    pub method: Option<String>,
    /// The login body, a template.
    pub body: Option<String>,
    pub content_type: Option<String>,
    /// Extra headers on login requests.
    #[serde(default)]
    pub login_headers: BTreeMap<String, String>,
    pub client_auth: Option<ClientAuth>,
    pub scope: Option<String>,
    /// Where the token is in the response: one of these three.
    pub token_pointer: Option<String>,
    pub token_header: Option<String>,
    pub token_cookie: Option<String>,
    pub refresh_token_pointer: Option<String>,
    pub expires_in_pointer: Option<String>,
    pub expiry: Option<ExpirySource>,
    #[serde(default, with = "crate::config::opt_duration")]
    pub ttl: Option<Duration>,
    #[serde(default, with = "crate::config::opt_duration")]
    pub refresh_skew: Option<Duration>,
    /// How the token goes on requests: one of these three.
    pub header: Option<String>,
    /// The header's value, with `{token}` in it (`Bearer {token}`).
    pub template: Option<String>,
    pub cookie: Option<String>,
    pub query: Option<String>,
    /// Statuses that mean "log in again and retry once" (default 401).
    pub retry_on: Option<Vec<u16>>,
    /// Replayed requests to the login endpoint are left out (the token
    /// manager logs in); `false` sends them as recorded.
    pub skip_login_requests: Option<bool>,
    /// A CSV (with a header row) or JSON file (an array of objects) of
    /// credentials; relative to the config file.
    pub credentials: Option<PathBuf>,
    #[serde(default)]
    pub users: Vec<BTreeMap<String, String>>,
    // Section-wide credentials, defaults for every row.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub key: Option<String>,
}

/// Where the token is in a login response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    Pointer(String),
    Header(String),
    /// One cookie by name, or every cookie the response sets.
    Cookie(Option<String>),
}

/// How a token goes on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apply {
    /// Header name (lower case) and value template.
    Header(String, String),
    /// As a cookie of this name; `None`: the cookies the login set, as they
    /// came.
    Cookie(Option<String>),
    Query(String),
}

/// The login request, before it is filled for a user.
#[derive(Clone, Debug)]
pub struct LoginSpec {
    pub url: String,
    pub method: String,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub client_auth: ClientAuth,
    pub scope: Option<String>,
}

/// One test user (or client): its fields, section defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The tenant it logs in for; `None` serves any tenant.
    pub tenant: Option<String>,
    pub fields: BTreeMap<String, String>,
}

impl Identity {
    pub fn get(&self, name: &str) -> Option<&str> {
        if name == "tenant" {
            return self.tenant.as_deref();
        }
        self.fields.get(name).map(String::as_str)
    }

    /// How it is named in messages (never a secret).
    pub fn label(&self) -> String {
        let who = self
            .get("username")
            .or_else(|| self.get("client_id"))
            .unwrap_or("the configured key");
        match &self.tenant {
            Some(t) => format!("{who} (tenant {t})"),
            None => who.to_string(),
        }
    }
}

/// `[auth]`, checked.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub kind: AuthKind,
    /// None for `api_key`.
    pub login: Option<LoginSpec>,
    pub token: TokenSource,
    pub refresh_pointer: Option<String>,
    pub expires_in_pointer: String,
    pub expiry: ExpirySource,
    pub ttl: Option<Duration>,
    pub skew: Duration,
    pub apply: Apply,
    pub retry_on: Vec<u16>,
    pub skip_login_requests: bool,
    pub identities: Vec<Identity>,
}

/// Default refresh skew: renew this long before a token expires.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(30);

/// Fields that are not secret: shown in messages, never masked.
const PUBLIC_FIELDS: [&str; 3] = ["tenant", "username", "client_id"];

impl AuthConfig {
    /// Checks `[auth]`; `base` is the config file's directory.
    pub fn resolve(f: AuthFile, base: &Path) -> Result<AuthConfig, UsageError> {
        let err = |m: String| UsageError(format!("[auth]: {m}"));
        let kind = f.kind.ok_or_else(|| {
            err("`kind` is required: oauth2_client_credentials, oauth2_password, json_login, cookie_login or api_key".into())
        })?;
        let env = |s: &Option<String>, what: &str| -> Result<Option<String>, UsageError> {
            s.as_deref()
                .map(|v| interpolate(v).map_err(|m| err(format!("{what}: {m}"))))
                .transpose()
        };
        let sources = [
            f.token_pointer.is_some(),
            f.token_header.is_some(),
            f.token_cookie.is_some(),
        ];
        if sources.iter().filter(|x| **x).count() > 1 {
            return Err(err(
                "set one of token_pointer, token_header and token_cookie".into(),
            ));
        }
        let token = match (&f.token_pointer, &f.token_header, &f.token_cookie) {
            (Some(p), _, _) => TokenSource::Pointer(pointer(p).map_err(err)?),
            (_, Some(h), _) => TokenSource::Header(h.to_ascii_lowercase()),
            (_, _, Some(c)) => TokenSource::Cookie(Some(c.clone())),
            _ => match kind {
                AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2Password => {
                    TokenSource::Pointer("/access_token".into())
                }
                AuthKind::JsonLogin => TokenSource::Pointer("/token".into()),
                AuthKind::CookieLogin => TokenSource::Cookie(None),
                AuthKind::ApiKey => TokenSource::Pointer(String::new()),
            },
        };
        let applies = [f.header.is_some(), f.cookie.is_some(), f.query.is_some()];
        if applies.iter().filter(|x| **x).count() > 1 {
            return Err(err("set one of header, cookie and query".into()));
        }
        if f.template.is_some() && f.header.is_none() && kind == AuthKind::CookieLogin {
            return Err(err("`template` goes with `header`".into()));
        }
        let apply = match (&f.header, &f.cookie, &f.query) {
            (Some(h), _, _) => Apply::Header(
                header_name(h).map_err(err)?,
                f.template.clone().unwrap_or_else(|| default_template(kind)),
            ),
            (_, Some(c), _) => Apply::Cookie(Some(c.clone())),
            (_, _, Some(q)) => Apply::Query(q.clone()),
            _ => match (kind, &token) {
                (AuthKind::CookieLogin, TokenSource::Cookie(name)) => Apply::Cookie(name.clone()),
                (AuthKind::CookieLogin, _) => Apply::Cookie(Some("session".into())),
                (AuthKind::ApiKey, _) => Apply::Header(
                    "x-api-key".into(),
                    f.template.clone().unwrap_or_else(|| "{token}".into()),
                ),
                _ => Apply::Header(
                    "authorization".into(),
                    f.template.clone().unwrap_or_else(|| default_template(kind)),
                ),
            },
        };
        if let Apply::Header(_, t) = &apply
            && !t.contains("{token}")
        {
            // Named by what is missing, not quoted: a header template can
            // hold a fixed credential.
            return Err(err("the header template has no {token}".to_string()));
        }
        if kind == AuthKind::ApiKey
            && (f.url.is_some() || f.body.is_some() || f.refresh_token_pointer.is_some())
        {
            return Err(err(
                "api_key sends a static key: url, body and refresh_token_pointer do not apply"
                    .into(),
            ));
        }
        if kind != AuthKind::CookieLogin && matches!(apply, Apply::Cookie(None)) {
            return Err(err("`cookie` needs a name".into()));
        }
        let login = if kind == AuthKind::ApiKey {
            None
        } else {
            let url = env(&f.url, "url")?.ok_or_else(|| {
                err(format!(
                    "`url` is required for {}: the login or token endpoint (a path on the target, or an absolute URL)",
                    kind.name()
                ))
            })?;
            if !url.starts_with('/') && !url.starts_with("http://") && !url.starts_with("https://")
            {
                return Err(err(format!(
                    "url `{}`: a path starting with / or an http(s) URL",
                    crate::model::redact::mask_url(&url)
                )));
            }
            let oauth = matches!(
                kind,
                AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2Password
            );
            if oauth && f.body.is_some() {
                return Err(err(
                    "OAuth2 grants have a standard body; `body` is for json_login and cookie_login"
                        .into(),
                ));
            }
            let body = match kind {
                AuthKind::JsonLogin => Some(f.body.clone().unwrap_or_else(|| {
                    r#"{"username": "{username}", "password": "{password}"}"#.into()
                })),
                AuthKind::CookieLogin => Some(
                    f.body
                        .clone()
                        .unwrap_or_else(|| "username={username}&password={password}".into()),
                ),
                _ => None,
            };
            let content_type = f.content_type.clone().or(match kind {
                AuthKind::JsonLogin => Some("application/json".into()),
                AuthKind::CookieLogin if body.as_deref().is_some_and(looks_json) => {
                    Some("application/json".into())
                }
                _ => Some("application/x-www-form-urlencoded".into()),
            });
            let mut headers = Vec::new();
            for (k, v) in &f.login_headers {
                let v = interpolate(v).map_err(|m| err(format!("login_headers.{k}: {m}")))?;
                headers.push((header_name(k).map_err(err)?, v));
            }
            Some(LoginSpec {
                url,
                method: f
                    .method
                    .clone()
                    .unwrap_or_else(|| "POST".into())
                    .to_ascii_uppercase(),
                body,
                content_type,
                headers,
                client_auth: f.client_auth.unwrap_or(ClientAuth::Basic),
                scope: env(&f.scope, "scope")?,
            })
        };
        let mut defaults = BTreeMap::new();
        for (name, v) in [
            ("client_id", &f.client_id),
            ("client_secret", &f.client_secret),
            ("username", &f.username),
            ("password", &f.password),
            ("key", &f.key),
        ] {
            if let Some(v) = env(v, name)? {
                defaults.insert(name.to_string(), v);
            }
        }
        let mut rows: Vec<Row> = Vec::new();
        for (i, u) in f.users.iter().enumerate() {
            rows.push((format!("users[{i}]"), u.clone()));
        }
        if let Some(p) = &f.credentials {
            let path = base.join(p);
            rows.extend(read_credentials(&path)?);
        }
        let mut identities = Vec::new();
        for (place, row) in rows {
            let mut fields = defaults.clone();
            let mut tenant = None;
            for (k, v) in row {
                let v = interpolate(&v).map_err(|m| err(format!("{place}.{k}: {m}")))?;
                if k == "tenant" {
                    tenant = (!v.is_empty() && v != "*").then_some(v);
                } else {
                    fields.insert(k, v);
                }
            }
            identities.push((place, Identity { tenant, fields }));
        }
        if identities.is_empty() {
            identities.push((
                "credentials".into(),
                Identity {
                    tenant: None,
                    fields: defaults,
                },
            ));
        }
        let needed: &[&str] = match kind {
            AuthKind::Oauth2ClientCredentials => &["client_id", "client_secret"],
            AuthKind::Oauth2Password => &["username", "password"],
            AuthKind::ApiKey => &["key"],
            _ => &[],
        };
        for (place, id) in &identities {
            for n in needed {
                if id.get(n).is_none_or(str::is_empty) {
                    return Err(err(format!(
                        "{place}: {} needs `{n}` (in the section, users or the credentials file)",
                        kind.name()
                    )));
                }
            }
            if let Some(l) = &login {
                for t in [Some(&l.url), l.body.as_ref()].into_iter().flatten() {
                    check_template(t, id).map_err(|m| err(format!("{place}: {m}")))?;
                }
                for (_, v) in &l.headers {
                    check_template(v, id).map_err(|m| err(format!("{place}: {m}")))?;
                }
            }
        }
        let expiry = f.expiry.unwrap_or(ExpirySource::Auto);
        if expiry == ExpirySource::Ttl && f.ttl.is_none() {
            return Err(err("expiry = \"ttl\" needs `ttl`".into()));
        }
        Ok(AuthConfig {
            kind,
            login,
            token,
            refresh_pointer: match &f.refresh_token_pointer {
                Some(p) => Some(pointer(p).map_err(err)?),
                None => (kind == AuthKind::Oauth2Password).then(|| "/refresh_token".into()),
            },
            expires_in_pointer: pointer(f.expires_in_pointer.as_deref().unwrap_or("/expires_in"))
                .map_err(err)?,
            expiry,
            ttl: f.ttl,
            skew: f.refresh_skew.unwrap_or(DEFAULT_SKEW),
            apply,
            retry_on: f.retry_on.clone().unwrap_or_else(|| vec![401]),
            skip_login_requests: f.skip_login_requests.unwrap_or(true),
            identities: identities.into_iter().map(|(_, id)| id).collect(),
        })
    }

    /// Every credential value that must never be shown.
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .identities
            .iter()
            .flat_map(|id| {
                id.fields
                    .iter()
                    .filter(|(k, _)| !PUBLIC_FIELDS.contains(&k.as_str()))
                    .map(|(_, v)| v.clone())
            })
            .filter(|v| !v.is_empty())
            .collect();
        // Literal secrets written into the login request itself: a
        // secret-looking query value of its URL, a credential header.
        if let Some(l) = &self.login {
            let query = l.url.split_once('?').map_or("", |(_, q)| q);
            let query = query.split_once('#').map_or(query, |(q, _)| q);
            let from_url = query.split('&').filter_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                crate::model::redact::is_secret_name(&k.to_ascii_lowercase()).then_some(v)
            });
            let from_headers = l.headers.iter().filter_map(|(k, v)| {
                (crate::model::redact::header_use(&k.to_ascii_lowercase(), &[])
                    == crate::model::redact::HeaderUse::Redact)
                    .then_some(v.as_str())
            });
            out.extend(
                from_url
                    .chain(from_headers)
                    .flat_map(literal_parts)
                    .map(str::to_string),
            );
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The literal text of a template outside its `{placeholders}` (the fields
/// put there are masked already) where it may be a secret: its words
/// (split at spaces and `;`) of six characters or more — shorter ones are
/// words like `true` that would be masked everywhere.
fn literal_parts(template: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        parts.push(&rest[..open]);
        rest = match rest[open..].find('}') {
            Some(close) => &rest[open + close + 1..],
            None => "",
        };
    }
    parts.push(rest);
    parts
        .into_iter()
        .flat_map(|p| p.split([' ', ';']))
        .filter(|w| w.len() >= 6 && !w.eq_ignore_ascii_case("bearer"))
}

fn default_template(kind: AuthKind) -> String {
    match kind {
        AuthKind::ApiKey => "{token}".into(),
        _ => "Bearer {token}".into(),
    }
}

fn looks_json(s: &str) -> bool {
    s.trim_start().starts_with('{') || s.trim_start().starts_with('[')
}

fn pointer(p: &str) -> Result<String, String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(p.to_string())
    } else {
        Err(format!(
            "`{p}` is not a JSON pointer: it starts with / (`/access_token`)"
        ))
    }
}

fn header_name(h: &str) -> Result<String, String> {
    hyper::header::HeaderName::from_bytes(h.trim().as_bytes())
        .map(|n| n.as_str().to_string())
        .map_err(|_| format!("`{h}` is not a header name"))
}

/// Replaces `${NAME}` with the environment variable's value.
pub fn interpolate(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in `{}`", &rest[i..]))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{name}}}` is not an environment variable name"));
        }
        match std::env::var(name) {
            Ok(v) => out.push_str(&v),
            Err(_) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `{name}` placeholders of a template (names of letters, digits, `_`
/// and `-`; other braces, as in JSON, are left alone).
pub fn placeholders(t: &str) -> impl Iterator<Item = &str> {
    let mut rest = t;
    std::iter::from_fn(move || {
        loop {
            let i = rest.find('{')?;
            let after = &rest[i + 1..];
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(after.len());
            if len > 0 && after[len..].starts_with('}') {
                rest = &after[len + 1..];
                return Some(&after[..len]);
            }
            rest = after;
        }
    })
}

fn check_template(t: &str, id: &Identity) -> Result<(), String> {
    for name in placeholders(t) {
        if id.get(name).is_none() && name != "tenant" {
            let mut known: Vec<&str> = id.fields.keys().map(String::as_str).collect();
            known.push("tenant");
            // The template is not quoted: a body can hold a password
            // written in it.
            return Err(format!(
                "`{{{name}}}` in a template is not a credential field (these are: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// A credentials row: where it came from (`users.csv:3`) and its fields.
type Row = (String, BTreeMap<String, String>);

/// Rows of a credentials file.
fn read_credentials(path: &Path) -> Result<Vec<Row>, UsageError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("[auth] credentials {shown}: {e}")))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    if json {
        let rows: Vec<BTreeMap<String, serde_json::Value>> =
            serde_json::from_str(&text).map_err(|e| {
                UsageError(format!(
                    "{shown}:{}:{}: {e} (expected an array of objects)",
                    e.line(),
                    e.column()
                ))
            })?;
        return rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let row = r
                    .into_iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => Ok((k, s)),
                        serde_json::Value::Number(n) => Ok((k, n.to_string())),
                        serde_json::Value::Bool(b) => Ok((k, b.to_string())),
                        _ => Err(UsageError(format!(
                            "{shown}: entry {i}, `{k}`: a string, number or boolean"
                        ))),
                    })
                    .collect::<Result<_, _>>()?;
                Ok((format!("{shown} entry {i}"), row))
            })
            .collect();
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| UsageError(format!("{shown}: {e}")))?
        .clone();
    if headers.iter().any(str::is_empty) {
        return Err(UsageError(format!(
            "{shown}:1: every column needs a name in the header row (tenant,username,password,...)"
        )));
    }
    if let Some(dup) = headers
        .iter()
        .enumerate()
        .find(|(i, h)| headers.iter().take(*i).any(|e| e == *h))
        .map(|(_, h)| h)
    {
        return Err(UsageError(format!(
            "{shown}:1: the column `{dup}` is named twice in the header row"
        )));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            UsageError(format!("{shown}:{line}: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let row = headers
            .iter()
            .zip(record.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        rows.push((format!("{shown}:{line}"), row));
    }
    if rows.is_empty() {
        return Err(UsageError(format!("{shown}: no credentials in it")));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(text: &str) -> Result<AuthConfig, UsageError> {
        let f: AuthFile = toml::from_str(text).expect("valid TOML");
        AuthConfig::resolve(f, Path::new("."))
    }

    #[test]
    fn defaults_by_kind() {
        let a = auth(
            "kind = \"json_login\"\nurl = \"/api/login\"\nusername = \"a@x\"\npassword = \"pw\"",
        )
        .unwrap();
        assert_eq!(a.token, TokenSource::Pointer("/token".into()));
        assert_eq!(
            a.apply,
            Apply::Header("authorization".into(), "Bearer {token}".into())
        );
        assert_eq!(a.retry_on, vec![401]);
        assert_eq!(a.skew, DEFAULT_SKEW);
        assert_eq!(
            a.login.unwrap().content_type.as_deref(),
            Some("application/json")
        );
        let a = auth("kind = \"api_key\"\nkey = \"k\"").unwrap();
        assert!(a.login.is_none());
        assert_eq!(a.apply, Apply::Header("x-api-key".into(), "{token}".into()));
        let a =
            auth("kind = \"cookie_login\"\nurl = \"/login\"\nusername = \"u\"\npassword = \"p\"")
                .unwrap();
        assert_eq!(a.apply, Apply::Cookie(None));
        let a = auth(
            "kind = \"oauth2_password\"\nurl = \"https://idp/token\"\nusername = \"u\"\npassword = \"p\"",
        )
        .unwrap();
        assert_eq!(a.refresh_pointer.as_deref(), Some("/refresh_token"));
    }

    #[test]
    fn environment_variables_fill_in_and_missing_ones_are_named() {
        // SAFETY: the variable is only read by this test.
        unsafe { std::env::set_var("REPRISE_TEST_SECRET_1", "s3cret") };
        let a = auth(
            "kind = \"oauth2_client_credentials\"\nurl = \"/token\"\nclient_id = \"ci\"\nclient_secret = \"${REPRISE_TEST_SECRET_1}\"",
        )
        .unwrap();
        assert_eq!(a.identities[0].get("client_secret"), Some("s3cret"));
        assert_eq!(a.secrets(), vec!["s3cret".to_string()]);
        let e = auth(
            "kind = \"oauth2_client_credentials\"\nurl = \"/token\"\nclient_id = \"ci\"\nclient_secret = \"${REPRISE_TEST_UNSET_VAR}\"",
        )
        .unwrap_err();
        assert!(e.0.contains("REPRISE_TEST_UNSET_VAR is not set"), "{e}");
        assert_eq!(
            interpolate("a${").unwrap_err(),
            "`${` without a closing `}` in `${`"
        );
        assert!(interpolate("${no-dash}").is_err());
    }

    #[test]
    fn credentials_files_csv_and_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("users.csv"),
            "tenant,username,password\nacme,a@acme.test,pw-a\nglobex,g@globex.test,pw-g\n*,any@x.test,pw-any\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("users.json"),
            r#"[{"tenant": "acme", "username": "j@acme.test", "password": "pw-j", "pin": 1234}]"#,
        )
        .unwrap();
        let f: AuthFile = toml::from_str(
            "kind = \"json_login\"\nurl = \"/api/login\"\ncredentials = \"users.csv\"\nbody = '{\"email\": \"{username}\", \"password\": \"{password}\"}'",
        )
        .unwrap();
        let a = AuthConfig::resolve(f, dir.path()).unwrap();
        assert_eq!(a.identities.len(), 3);
        assert_eq!(a.identities[0].tenant.as_deref(), Some("acme"));
        assert_eq!(a.identities[2].tenant, None);
        let f: AuthFile = toml::from_str(
            "kind = \"json_login\"\nurl = \"/api/login\"\ncredentials = \"users.json\"\nbody = '{\"u\": \"{username}\", \"pin\": \"{pin}\", \"pw\": \"{password}\"}'",
        )
        .unwrap();
        let a = AuthConfig::resolve(f, dir.path()).unwrap();
        assert_eq!(a.identities[0].get("pin"), Some("1234"));
        // A placeholder no row has is refused before anything is sent.
        let f: AuthFile = toml::from_str(
            "kind = \"json_login\"\nurl = \"/api/login\"\ncredentials = \"users.csv\"\nbody = '{\"u\": \"{user}\"}'",
        )
        .unwrap();
        let e = AuthConfig::resolve(f, dir.path()).unwrap_err();
        assert!(e.0.contains("users.csv:2") && e.0.contains("{user}"), "{e}");
        std::fs::write(
            dir.path().join("bad.csv"),
            "tenant,username\nacme,a,extra\n",
        )
        .unwrap();
        let f: AuthFile =
            toml::from_str("kind = \"json_login\"\nurl = \"/l\"\ncredentials = \"bad.csv\"")
                .unwrap();
        let e = AuthConfig::resolve(f, dir.path()).unwrap_err();
        assert!(e.0.contains("bad.csv:2"), "{e}");
        // Two columns of one name: which one is meant?
        std::fs::write(
            dir.path().join("bad.csv"),
            "tenant,username,password,password\nacme,a,old,new\n",
        )
        .unwrap();
        let f: AuthFile =
            toml::from_str("kind = \"json_login\"\nurl = \"/l\"\ncredentials = \"bad.csv\"")
                .unwrap();
        let e = AuthConfig::resolve(f, dir.path()).unwrap_err();
        assert!(
            e.0.contains("bad.csv:1") && e.0.contains("`password` is named twice"),
            "{e}"
        );
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for (text, expect) in [
            ("url = \"/l\"", "`kind` is required"),
            ("kind = \"json_login\"", "`url` is required"),
            (
                "kind = \"json_login\"\nurl = \"login\"",
                "a path starting with /",
            ),
            (
                "kind = \"oauth2_client_credentials\"\nurl = \"/t\"\nclient_id = \"x\"",
                "needs `client_secret`",
            ),
            (
                "kind = \"json_login\"\nurl = \"/l\"\ntoken_pointer = \"token\"",
                "not a JSON pointer",
            ),
            (
                "kind = \"json_login\"\nurl = \"/l\"\nheader = \"X-Auth\"\ntemplate = \"Bearer\"",
                "has no {token}",
            ),
            (
                "kind = \"json_login\"\nurl = \"/l\"\nheader = \"a\"\ncookie = \"b\"",
                "one of header, cookie and query",
            ),
            (
                "kind = \"api_key\"\nkey = \"k\"\nurl = \"/x\"",
                "do not apply",
            ),
            (
                "kind = \"json_login\"\nurl = \"/l\"\nusername = \"u\"\npassword = \"p\"\nexpiry = \"ttl\"",
                "needs `ttl`",
            ),
            (
                "kind = \"json_login\"\nurl = \"/l\"",
                "credentials: `{username}`",
            ),
        ] {
            let e = auth(text).unwrap_err();
            assert!(e.0.contains(expect), "{text}: {e}");
        }
        assert!(toml::from_str::<AuthFile>("kind = \"saml\"").is_err());
        assert!(toml::from_str::<AuthFile>("kind = \"api_key\"\nkeyy = \"x\"").is_err());
    }

    #[test]
    fn placeholders_are_found() {
        let v: Vec<_> = placeholders(r#"{"a": "{username}", "b": {"c": "{pass_word}"}}"#).collect();
        assert_eq!(v, vec!["username", "pass_word"]);
    }
}
