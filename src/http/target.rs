//! The target: where requests go, with `{tenant}` in the host for staging
//! set-ups that tell tenants apart by subdomain.

use std::fmt;

use url::Url;

/// A scheme, host and port requests are sent to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The Host header value (`host` or `host:port` when not the default).
    pub fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.authority())
    }
}

/// `--target`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As given, with a password masked: safe to print.
    pub raw: String,
    /// `Basic …` from the URL's `user:password@`, sent as the
    /// `Authorization` of every request (as curl and k6 do).
    pub basic_auth: Option<String>,
    /// `--header 'Host: …'`: the virtual host, for the logins the token
    /// manager sends to the target too (replayed requests carry it among
    /// their headers).
    pub host_header: Option<String>,
    https: bool,
    /// The host, possibly with `{tenant}` in it.
    host: String,
    port: u16,
    /// Path prefix without a trailing `/` (empty for none).
    pub base_path: String,
}

/// A `--target` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--target `{url}`: {message}")]
pub struct TargetError {
    pub url: String,
    pub message: String,
}

/// The `Authorization: Basic …` value for a URL's `user:password@`, if
/// it has one (percent-decoded, as curl does).
pub fn basic_auth(url: &Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(url.username()),
        decode(url.password().unwrap_or(""))
    );
    Some(format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pair)
    ))
}

impl Target {
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let err = |m: &str| TargetError {
            url: crate::model::redact::mask_url(raw),
            message: m.to_string(),
        };
        // `{tenant}` is not a valid host character: stand in a placeholder.
        let probe = raw.replace("{tenant}", "reprise-tenant-placeholder");
        let url = Url::parse(&probe).map_err(|e| err(&e.to_string()))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            s => return Err(err(&format!("scheme `{s}`: use http or https"))),
        };
        if raw
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('@'))
            && url.username().is_empty()
            && url.password().is_none()
        {
            // `http://ci:12/34@host` parses as host `ci`: an `@` after the
            // host is a password with an unencoded `/`, `?` or `#`.
            return Err(err(
                "an `@` after the host: percent-encode `/`, `?` and `#` in a password (%2F, %3F, %23)",
            ));
        }
        let host = url.host_str().ok_or_else(|| err("no host"))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(err("a target has no query or fragment"));
        }
        if raw.matches("{tenant}").count() != host.matches("reprise-tenant-placeholder").count() {
            return Err(err("`{tenant}` can only stand in the host"));
        }
        let host = host
            .replace("reprise-tenant-placeholder", "{tenant}")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let basic_auth = basic_auth(&url);
        Ok(Target {
            raw: crate::model::redact::mask_url(raw),
            basic_auth,
            host_header: None,
            https,
            port: url.port_or_known_default().ok_or_else(|| err("no port"))?,
            host,
            base_path: url.path().trim_end_matches('/').to_string(),
        })
    }

    pub fn https(&self) -> bool {
        self.https
    }

    /// Whether the host varies by tenant.
    pub fn per_tenant(&self) -> bool {
        self.host.contains("{tenant}")
    }

    /// The origin requests of `tenant` go to.
    pub fn origin(&self, tenant: &str) -> Origin {
        Origin {
            https: self.https,
            host: self.host.replace("{tenant}", &tenant.to_ascii_lowercase()),
            port: self.port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_with_a_slash_is_refused_and_not_shown() {
        for raw in [
            "http://ci:12/34@host",
            "http://ci:a?b@host",
            "http://ci:p#ss@host",
        ] {
            let e = Target::parse(raw).unwrap_err().to_string();
            assert!(e.contains("ci:***@host"), "{e}");
            assert!(
                !e.contains("12/34") && !e.contains("a?b") && !e.contains("p#ss"),
                "{e}"
            );
        }
        let t = Target::parse("http://ci:12%2F34@host").unwrap();
        assert_eq!(t.basic_auth.as_deref(), Some("Basic Y2k6MTIvMzQ="));
        assert_eq!(t.raw, "http://ci:***@host");
    }

    #[test]
    fn targets() {
        let t = Target::parse("https://{tenant}.staging.example.com/api/").unwrap();
        assert!(t.per_tenant());
        assert_eq!(t.origin("Acme").host, "acme.staging.example.com");
        assert_eq!(t.origin("acme").port, 443);
        assert_eq!(t.base_path, "/api");
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.origin("x").authority(), "127.0.0.1:8080");
        assert_eq!(t.base_path, "");
        let t = Target::parse("http://[::1]:9000").unwrap();
        assert_eq!(t.origin("x").authority(), "[::1]:9000");
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://x/{tenant}").is_err());
        assert!(Target::parse("http://{tenant}.x/{tenant}").is_err());
        assert!(Target::parse("http://{tenant}.x/?t={tenant}").is_err());
        assert!(Target::parse("not a url").is_err());
        assert!(Target::parse("http://x/?q=1").is_err());
    }
}
