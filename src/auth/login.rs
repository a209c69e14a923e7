//! Login and token requests: built for one identity, sent on a connection
//! of their own, and the token taken out of the answer.
//!
//! Logins are rare next to the replayed traffic (one per identity per token
//! lifetime), so each gets a fresh HTTP/1.1 connection on whichever worker
//! asked; the business requests keep their per-worker pools untouched.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Url;

use super::config::{AuthConfig, AuthKind, ClientAuth, ExpirySource, Identity, TokenSource};
use crate::http::Target;

/// The largest login response read.
const MAX_BODY: usize = 1 << 20;

/// A login or token request, filled in.
#[derive(Clone, Debug)]
pub struct LoginRequest {
    pub method: String,
    pub url: Url,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// What came back.
#[derive(Clone, Debug, Default)]
pub struct LoginResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LoginResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub type LoginFuture = Pin<Box<dyn Future<Output = Result<LoginResponse, String>> + Send>>;

/// Sends login requests: over the network, or a stand-in in tests.
pub trait LoginTransport: Send + Sync {
    fn send(&self, req: LoginRequest) -> LoginFuture;
}

/// Logins over HTTP/1.1, TLS through rustls where the URL is https.
#[derive(Clone)]
pub struct HttpLogin {
    pub tls: Option<Arc<ClientConfig>>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl LoginTransport for HttpLogin {
    fn send(&self, req: LoginRequest) -> LoginFuture {
        let this = self.clone();
        Box::pin(async move {
            let timeout = this.timeout;
            tokio::time::timeout(timeout, this.exchange(req))
                .await
                .map_err(|_| format!("no response within {timeout:?}"))?
        })
    }
}

impl HttpLogin {
    async fn exchange(self, req: LoginRequest) -> Result<LoginResponse, String> {
        let host = req.url.host_str().ok_or("the URL has no host")?.to_string();
        let port = req
            .url
            .port_or_known_default()
            .ok_or("the URL has no port")?;
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((bare.as_str(), port)),
        )
        .await
        .map_err(|_| {
            format!(
                "no connection to {host}:{port} within {:?}",
                self.connect_timeout
            )
        })?
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if req.url.scheme() == "https" {
            let cfg = self.tls.clone().ok_or("TLS is not configured")?;
            let name = ServerName::try_from(bare.clone()).map_err(|e| format!("{host}: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            over(TokioIo::new(tls), req).await
        } else {
            over(TokioIo::new(tcp), req).await
        }
    }
}

async fn over<I>(io: I, req: LoginRequest) -> Result<LoginResponse, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let authority = match req.url.port() {
        Some(p) => format!("{}:{p}", req.url.host_str().unwrap_or_default()),
        None => req.url.host_str().unwrap_or_default().to_string(),
    };
    let path = &req.url[url::Position::BeforePath..];
    let mut b = hyper::Request::builder()
        .method(req.method.as_str())
        .uri(path);
    if !req.headers.iter().any(|(k, _)| k == "host") {
        b = b.header(hyper::header::HOST, authority);
    }
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let request = b
        .body(Full::new(Bytes::from(req.body.unwrap_or_default())))
        .map_err(|e| format!("building the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the response: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(LoginResponse {
        status,
        headers,
        body,
    })
}

/// What a login is for: a first token, or a refresh with a refresh token.
#[derive(Clone, Debug)]
pub enum Grant {
    Login,
    Refresh(String),
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

fn form_value(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `secret` as it may appear on the wire and so in an echoed answer or an
/// error: as is, JSON-escaped, form-encoded and percent-encoded, and each of
/// those encoded once more (a server that puts the JSON body it received
/// into a JSON error escapes it twice). A password with a quote or a space
/// must be masked in all of them.
pub fn encoded_forms(secret: &str) -> Vec<String> {
    let once = |s: &str| {
        let json = Value::String(s.to_string()).to_string();
        [
            json[1..json.len() - 1].to_string(),
            form_value(s),
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        ]
    };
    let mut forms = vec![secret.to_string()];
    for f in once(secret) {
        forms.extend(once(&f));
        forms.push(f);
    }
    forms.sort();
    forms.dedup();
    forms
}

/// How a value goes into a template.
#[derive(Clone, Copy)]
enum Escape {
    Json,
    Form,
    Path,
    Raw,
}

fn render(template: &str, id: &Identity, tenant: &str, escape: Escape) -> String {
    let mut out = template.to_string();
    for name in super::config::placeholders(template) {
        let value = if name == "tenant" {
            id.tenant.as_deref().unwrap_or(tenant)
        } else {
            id.get(name).unwrap_or_default()
        };
        let value = match escape {
            Escape::Json => {
                let quoted = Value::String(value.to_string()).to_string();
                quoted[1..quoted.len() - 1].to_string()
            }
            Escape::Form => form_value(value),
            Escape::Path => {
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            }
            Escape::Raw => value.to_string(),
        };
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    out
}

/// The request that logs `id` in for `tenant` (or refreshes its token).
pub fn request(
    cfg: &AuthConfig,
    id: &Identity,
    tenant: &str,
    target: &Target,
    grant: &Grant,
) -> Result<LoginRequest, String> {
    let spec = cfg.login.as_ref().ok_or("this kind of auth has no login")?;
    let url = render(&spec.url, id, tenant, Escape::Path);
    let to_target = url.starts_with('/');
    let full = if to_target {
        format!(
            "{}{}{url}",
            target.origin(id.tenant.as_deref().unwrap_or(tenant)),
            target.base_path
        )
    } else {
        url
    };
    let url = Url::parse(&full).map_err(|e| format!("login URL `{full}`: {e}"))?;
    let mut headers = vec![
        ("accept".to_string(), "application/json".to_string()),
        (
            "user-agent".to_string(),
            concat!("reprise/", env!("CARGO_PKG_VERSION")).to_string(),
        ),
    ];
    if to_target {
        // To the target: its basic auth and virtual host, as replayed
        // requests have them.
        if let Some(b) = &target.basic_auth {
            headers.push(("authorization".into(), b.clone()));
        }
        if let Some(h) = &target.host_header {
            headers.push(("host".into(), h.clone()));
        }
    }
    if let Some(ct) = &spec.content_type {
        headers.push(("content-type".into(), ct.clone()));
    }
    for (k, v) in &spec.headers {
        headers.retain(|(n, _)| n != k);
        headers.push((k.clone(), render(v, id, tenant, Escape::Raw)));
    }
    let body = match (cfg.kind, grant) {
        (AuthKind::Oauth2ClientCredentials | AuthKind::Oauth2Password, grant) => {
            let mut pairs: Vec<(&str, &str)> = match grant {
                Grant::Refresh(rt) => vec![("grant_type", "refresh_token"), ("refresh_token", rt)],
                Grant::Login if cfg.kind == AuthKind::Oauth2Password => vec![
                    ("grant_type", "password"),
                    ("username", id.get("username").unwrap_or_default()),
                    ("password", id.get("password").unwrap_or_default()),
                ],
                Grant::Login => vec![("grant_type", "client_credentials")],
            };
            if let Some(s) = &spec.scope {
                pairs.push(("scope", s));
            }
            let client_id = id.get("client_id").filter(|c| !c.is_empty());
            let secret = id.get("client_secret").filter(|c| !c.is_empty());
            match (client_id, secret, spec.client_auth) {
                (Some(c), Some(s), ClientAuth::Basic) => {
                    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        form_value(c),
                        form_value(s)
                    ));
                    headers.retain(|(n, _)| n != "authorization");
                    headers.push(("authorization".into(), format!("Basic {basic}")));
                }
                (Some(c), s, _) => {
                    pairs.push(("client_id", c));
                    if let Some(s) = s {
                        pairs.push(("client_secret", s));
                    }
                }
                _ => {}
            }
            Some(form(&pairs))
        }
        (_, _) => spec.body.as_ref().map(|b| {
            let json = spec
                .content_type
                .as_deref()
                .is_some_and(|c| c.to_ascii_lowercase().contains("json"));
            let form = spec
                .content_type
                .as_deref()
                .is_some_and(|c| c.to_ascii_lowercase().contains("x-www-form-urlencoded"));
            let escape = if json {
                Escape::Json
            } else if form {
                Escape::Form
            } else {
                Escape::Raw
            };
            render(b, id, tenant, escape).into_bytes()
        }),
    };
    Ok(LoginRequest {
        method: spec.method.clone(),
        url,
        headers,
        body,
    })
}

/// A token taken from a response.
#[derive(Clone, Debug)]
pub struct Obtained {
    pub value: String,
    pub refresh: Option<String>,
    pub expires_at: Option<Instant>,
}

/// Takes the token out of a login response (received at `now`).
pub fn extract(cfg: &AuthConfig, r: &LoginResponse, now: Instant) -> Result<Obtained, String> {
    let ok = (200..300).contains(&r.status)
        || (cfg.kind == AuthKind::CookieLogin && (300..400).contains(&r.status));
    if !ok {
        return Err(format!("status {}", r.status));
    }
    let json: Option<Value> = serde_json::from_slice(&r.body).ok();
    let at = |p: &str| -> Option<String> {
        match json.as_ref()?.pointer(p)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let cookies: Vec<(String, String, Option<u64>)> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .filter_map(|(_, v)| set_cookie(v))
        .collect();
    let mut max_age = None;
    let value = match &cfg.token {
        TokenSource::Pointer(p) => at(p).ok_or_else(|| match &json {
            Some(_) => format!("status {}, but no token at {p} in the response", r.status),
            None => format!("status {}, but the response is not JSON", r.status),
        })?,
        TokenSource::Header(h) => r
            .header(h)
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_string())
            .ok_or_else(|| format!("status {}, but no {h} header in the response", r.status))?,
        TokenSource::Cookie(Some(name)) => {
            let c = cookies
                .iter()
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| format!("status {}, but no {name} cookie was set", r.status))?;
            max_age = c.2;
            c.1.clone()
        }
        TokenSource::Cookie(None) => {
            if cookies.is_empty() {
                return Err(format!("status {}, but no cookie was set", r.status));
            }
            max_age = cookies.iter().filter_map(|c| c.2).min();
            cookies
                .iter()
                .map(|(n, v, _)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    if value.is_empty() {
        return Err(format!("status {}, but the token is empty", r.status));
    }
    let seconds = at(&cfg.expires_in_pointer)
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite());
    let expires_in = || seconds.map(|s| now + Duration::from_secs_f64(s.clamp(0.0, 1e9)));
    let jwt = || {
        let exp = crate::model::identity::jwt_claims(&value)?
            .get("exp")?
            .as_f64()?;
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(now + Duration::from_secs_f64((exp - unix).clamp(0.0, 1e9)))
    };
    let cookie = || max_age.map(|s| now + Duration::from_secs(s.min(1_000_000_000)));
    let ttl = || cfg.ttl.map(|t| now + t);
    let expires_at =
        match cfg.expiry {
            // Both told: the earlier, as the target checks the JWT's exp,
            // which an IdP rounds down from its clock.
            ExpirySource::Auto => match (expires_in(), jwt()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b).or_else(cookie).or_else(ttl),
            },
            ExpirySource::ExpiresIn => Some(expires_in().ok_or_else(|| {
                format!(
                    "status {}, but no expires_in at {}",
                    r.status, cfg.expires_in_pointer
                )
            })?),
            ExpirySource::Jwt => Some(jwt().ok_or_else(|| {
                format!("status {}, but the token is not a JWT with exp", r.status)
            })?),
            ExpirySource::Ttl => ttl(),
            ExpirySource::Never => None,
        };
    // A token that is dead on arrival (expires_in 0 or less, a JWT's exp
    // past, Max-Age=0) cannot be used: a failure (with its back-off, and
    // the stop when every login fails), not a login per request.
    if expires_at.is_some_and(|e| e <= now) {
        return Err(format!(
            "status {}, but the token it gave has expired already",
            r.status
        ));
    }
    Ok(Obtained {
        refresh: cfg.refresh_pointer.as_deref().and_then(at),
        value,
        expires_at,
    })
}

/// A Set-Cookie header: name, value and Max-Age.
fn set_cookie(v: &str) -> Option<(String, String, Option<u64>)> {
    let mut parts = v.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let max_age = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().parse::<u64>().ok())
            .flatten()
    });
    Some((name.trim().to_string(), value.trim().to_string(), max_age))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::auth::config::{AuthConfig, AuthFile};

    fn cfg(text: &str) -> AuthConfig {
        let f: AuthFile = toml::from_str(text).unwrap();
        AuthConfig::resolve(f, Path::new(".")).unwrap()
    }

    fn target() -> Target {
        Target::parse("http://127.0.0.1:9000/base").unwrap()
    }

    #[test]
    fn logins_to_the_target_carry_its_basic_auth_and_virtual_host() {
        let c = cfg(
            "kind = \"json_login\"\nurl = \"/api/login\"\nusername = \"u\"\npassword = \"p\"\nbody = '{}'",
        );
        let mut t = Target::parse("http://ci:s3cret@127.0.0.1:9000").unwrap();
        t.host_header = Some("api.staging".into());
        let r = request(&c, &c.identities[0], "acme", &t, &Grant::Login).unwrap();
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("authorization"), Some("Basic Y2k6czNjcmV0"));
        assert_eq!(header("host"), Some("api.staging"));
        assert!(!r.url.as_str().contains("s3cret"), "{}", r.url);
        // A login elsewhere (an identity provider) gets neither.
        let c = cfg(
            "kind = \"json_login\"\nurl = \"http://idp.example/login\"\nusername = \"u\"\npassword = \"p\"\nbody = '{}'",
        );
        let r = request(&c, &c.identities[0], "acme", &t, &Grant::Login).unwrap();
        assert!(
            r.headers
                .iter()
                .all(|(k, _)| k != "authorization" && k != "host")
        );
    }

    #[test]
    fn json_login_bodies_are_escaped() {
        let c = cfg(
            "kind = \"json_login\"\nurl = \"/api/login\"\nusername = \"a\\\"b@x\"\npassword = \"p\\\\w\"\nbody = '{\"email\": \"{username}\", \"password\": \"{password}\", \"org\": \"{tenant}\"}'",
        );
        let r = request(&c, &c.identities[0], "acme", &target(), &Grant::Login).unwrap();
        assert_eq!(r.url.as_str(), "http://127.0.0.1:9000/base/api/login");
        let v: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(v["email"], "a\"b@x");
        assert_eq!(v["password"], "p\\w");
        assert_eq!(v["org"], "acme");
    }

    #[test]
    fn oauth2_grants() {
        let c = cfg(
            "kind = \"oauth2_password\"\nurl = \"https://idp.test/{tenant}/token\"\nclient_id = \"app\"\nclient_secret = \"s:1\"\nusername = \"u\"\npassword = \"p&w\"\nscope = \"api read\"",
        );
        let r = request(&c, &c.identities[0], "acme", &target(), &Grant::Login).unwrap();
        assert_eq!(r.url.as_str(), "https://idp.test/acme/token");
        assert_eq!(
            String::from_utf8(r.body.unwrap()).unwrap(),
            "grant_type=password&username=u&password=p%26w&scope=api+read"
        );
        let basic = r
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.1.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"app:s%3A1");
        let r = request(
            &c,
            &c.identities[0],
            "acme",
            &target(),
            &Grant::Refresh("rt-1".into()),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(r.body.unwrap()).unwrap(),
            "grant_type=refresh_token&refresh_token=rt-1&scope=api+read"
        );
        let c = cfg(
            "kind = \"oauth2_client_credentials\"\nurl = \"/token\"\nclient_id = \"app\"\nclient_secret = \"s\"\nclient_auth = \"body\"",
        );
        let r = request(&c, &c.identities[0], "x", &target(), &Grant::Login).unwrap();
        assert_eq!(
            String::from_utf8(r.body.unwrap()).unwrap(),
            "grant_type=client_credentials&client_id=app&client_secret=s"
        );
    }

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> LoginResponse {
        LoginResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn tokens_and_expiry_are_taken_out() {
        let now = Instant::now();
        let c = cfg("kind = \"json_login\"\nurl = \"/l\"\nusername = \"u\"\npassword = \"p\"");
        let o = extract(
            &c,
            &response(200, r#"{"token": "t1", "expires_in": 900}"#, &[]),
            now,
        )
        .unwrap();
        assert_eq!(o.value, "t1");
        assert_eq!(o.expires_at, Some(now + Duration::from_secs(900)));
        // As a string too.
        let o = extract(
            &c,
            &response(200, r#"{"token": "t1", "expires_in": "60"}"#, &[]),
            now,
        )
        .unwrap();
        assert_eq!(o.expires_at, Some(now + Duration::from_secs(60)));
        // Dead on arrival: a failure, not a token for ever or for nothing.
        for dead in ["0", "-5", "\"0\""] {
            let e = extract(
                &c,
                &response(
                    200,
                    &format!(r#"{{"token": "t1", "expires_in": {dead}}}"#),
                    &[],
                ),
                now,
            )
            .unwrap_err();
            assert!(e.contains("expired already"), "{dead}: {e}");
        }
        // A JWT's exp when there is no expires_in.
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 120;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"u","exp":{exp}}}"#));
        let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig");
        let o = extract(
            &c,
            &response(200, &format!(r#"{{"token": "{jwt}"}}"#), &[]),
            now,
        )
        .unwrap();
        let left = o.expires_at.unwrap() - now;
        assert!(
            (Duration::from_secs(115)..=Duration::from_secs(121)).contains(&left),
            "{left:?}"
        );
        // With an expires_in too, the earlier of the two: the target
        // checks the JWT's exp.
        let o = extract(
            &c,
            &response(
                200,
                &format!(r#"{{"token": "{jwt}", "expires_in": 900}}"#),
                &[],
            ),
            now,
        )
        .unwrap();
        let left = o.expires_at.unwrap() - now;
        assert!(left <= Duration::from_secs(121), "{left:?}");
        // A JWT whose exp is past is dead on arrival too.
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"u","exp":{}}}"#, exp - 600));
        let old = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig");
        let e = extract(
            &c,
            &response(200, &format!(r#"{{"token": "{old}"}}"#), &[]),
            now,
        )
        .unwrap_err();
        assert!(e.contains("expired already"), "{e}");
        assert!(
            extract(&c, &response(401, r#"{"error": "no"}"#, &[]), now)
                .unwrap_err()
                .contains("status 401")
        );
        assert!(
            extract(&c, &response(200, r#"{"tok": "x"}"#, &[]), now)
                .unwrap_err()
                .contains("no token at /token")
        );
        let c = cfg("kind = \"cookie_login\"\nurl = \"/l\"\nusername = \"u\"\npassword = \"p\"");
        let o = extract(
            &c,
            &response(
                302,
                "",
                &[
                    ("set-cookie", "sid=abc; Path=/; HttpOnly; Max-Age=60"),
                    ("set-cookie", "csrf=z; Path=/"),
                ],
            ),
            now,
        )
        .unwrap();
        assert_eq!(o.value, "sid=abc; csrf=z");
        assert_eq!(o.expires_at, Some(now + Duration::from_secs(60)));
        let e = extract(
            &c,
            &response(302, "", &[("set-cookie", "sid=abc; Max-Age=0")]),
            now,
        )
        .unwrap_err();
        assert!(e.contains("expired already"), "{e}");
        let c = cfg(
            "kind = \"oauth2_password\"\nurl = \"/t\"\nusername = \"u\"\npassword = \"p\"\nexpiry = \"ttl\"\nttl = \"5m\"",
        );
        let o = extract(
            &c,
            &response(
                200,
                r#"{"access_token": "a", "refresh_token": "r", "expires_in": 1}"#,
                &[],
            ),
            now,
        )
        .unwrap();
        assert_eq!(o.refresh.as_deref(), Some("r"));
        assert_eq!(o.expires_at, Some(now + Duration::from_secs(300)));
    }
}
