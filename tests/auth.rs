//! Auth during replay, end to end: the binary logs in as test users against
//! the demo target and a revoking loopback server, keeps tokens fresh,
//! recovers from 401s, stops when nobody can log in, and never shows a
//! secret. Interop with oauth2-mock-server (npm) is in `oauth2_mock`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reprise::demo::TargetConfig;
use serde_json::Value;

use crate::replay::replay;
use crate::util::server::{Behaviour, Recorder};
use crate::util::{self, demo, demo_model, text};

/// Every file under `dir`, as text.
fn all_output(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).expect("out dir") {
        let p = e.expect("entry").path();
        s.push_str(&String::from_utf8_lossy(&std::fs::read(&p).expect("reads")));
    }
    s
}

const PASSWORD: &str = "planted-Pa55word-7f3a";

/// Runs `reprise replay model.json --config run.toml --out out` in `dir`
/// with one environment variable set; the output, everything it printed or
/// wrote as one text (to search for secrets), and summary.json.
fn run_in(dir: &Path, env: (&str, &str)) -> (std::process::Output, String, Value) {
    let out = util::replay_in(dir)
        .env(env.0, env.1)
        .output()
        .expect("runs");
    let everything = format!(
        "{}{}{}",
        text(&out.stdout),
        text(&out.stderr),
        all_output(&dir.join("out"))
    );
    let summary = std::fs::read(dir.join("out/summary.json"))
        .map(|b| serde_json::from_slice(&b).expect("summary.json is JSON"))
        .unwrap_or(Value::Null);
    (out, everything, summary)
}

#[test]
fn short_lived_tokens_are_refreshed_and_no_401_reaches_the_business_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    demo_model(dir.path());
    let (_rt, target) = demo(TargetConfig {
        workers: 16,
        queue: 512,
        token_ttl: Duration::from_secs(2),
        require_auth: true,
        password: PASSWORD.into(),
        ..TargetConfig::default()
    });
    std::fs::write(
        dir.path().join("users.csv"),
        "tenant,username,password\n,alice@demo.test,${REPRISE_TEST_DEMO_PASSWORD}\n*,bob@demo.test,${REPRISE_TEST_DEMO_PASSWORD}\n",
    )
    .expect("writes");
    let toml = format!(
        r#"target = "{}"
allow_hosts = ["127.0.0.1"]
think_scale = 0.05
grace = "3s"
[profile]
unit = "sessions_per_sec"
start = 20
stages = [{{ duration = "10s", target = 20 }}]
[auth]
kind = "json_login"
url = "/api/login"
body = '{{"email": "{{username}}", "password": "{{password}}"}}'
login_headers = {{ "x-tenant-id" = "{{tenant}}" }}
credentials = "users.csv"
"#,
        target.url()
    );
    let config = dir.path().join("run.toml");
    std::fs::write(&config, &toml).expect("writes");
    let (out, everything, summary) = run_in(dir.path(), ("REPRISE_TEST_DEMO_PASSWORD", PASSWORD));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    crate::report::assert_schema(&summary);
    let auth = &summary["auth"];
    let n = |v: &Value| v.as_u64().expect("a count");
    let (logins, refreshes, failures) = (
        n(&auth["logins"]),
        n(&auth["token_refreshes"]),
        n(&auth["auth_failures"]),
    );
    // Two users, four tenants: at most eight first logins however many
    // sessions ran; 2 s tokens over 10 s: renewed over and over.
    let sessions = n(&summary["sessions"]["started"]);
    assert!(sessions > 150, "{sessions} sessions");
    assert!((1..=8).contains(&logins), "{logins} logins");
    assert!(
        refreshes >= 8,
        "{refreshes} refreshes in 10 s of 2 s tokens"
    );
    assert_eq!(failures, 0);
    // Single-flight, counted at the server: one login per token obtained.
    assert_eq!(
        target.stats.logins.load(Ordering::Relaxed),
        logins + refreshes,
        "logins at the server"
    );
    // No 401 in the business metrics: every one the server gave (if any)
    // was retried with a new token.
    let by_class: Vec<Value> = summary["requests"]["by_class"]
        .as_array()
        .expect("classes")
        .clone();
    assert!(
        by_class.iter().all(|c| c[0] != "4xx"),
        "no 4xx among business requests: {by_class:?}"
    );
    assert_eq!(
        target.stats.unauthorized.load(Ordering::Relaxed),
        n(&auth["auth_retries"])
    );
    assert_eq!(summary["requests"]["failed"], 0);
    // The recorded logins were left out: the business metrics have none.
    assert!(
        summary["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .all(|e| e["name"] != "POST /api/login"),
        "{}",
        summary["endpoints"]
    );
    assert!(n(&auth["auth_req_duration"]["count"]) >= logins + refreshes);
    assert!(stdout.contains("token_refreshes"), "{stdout}");
    // Planted secrets: neither the password nor any token is anywhere.
    assert!(!everything.contains(PASSWORD));
    // A JWT, not the three letters: histograms.json is base64, where
    // `eyJ` turns up by chance (a base64 run has no dots, a JWT two).
    let jwt = regex::Regex::new(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.").expect("regex");
    assert!(!jwt.is_match(&everything), "a token leaked");
}

#[test]
fn a_revoked_token_is_replaced_once_and_the_request_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 300);
    let server = Recorder::start(Behaviour {
        auth: Some(Duration::from_secs(3)),
        ..Behaviour::default()
    });
    let toml = format!(
        r#"target = "{}"
[profile]
unit = "sessions_per_sec"
start = 100
stages = [{{ duration = "6s", target = 100 }}]
[auth]
kind = "json_login"
url = "/login"
username = "probe"
password = "{PASSWORD}"
"#,
        server.url()
    );
    let (out, summary) = replay(
        dir.path(),
        &dir.path().join("model.json"),
        &toml,
        &["--quiet"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let auth = &summary["auth"];
    // One user: one login, and one more after the revocation, however many
    // requests on both workers got a 401 at that moment.
    assert_eq!(server.logins(), 2, "logins at the server");
    assert_eq!(auth["logins"], 1);
    assert_eq!(auth["token_refreshes"], 1);
    let retries = auth["auth_retries"].as_u64().expect("retries");
    assert!(retries >= 1);
    assert_eq!(server.unauthorized(), retries);
    assert_eq!(summary["requests"]["failed"], 0, "{}", summary["requests"]);
    let seen = server.seen();
    let business = seen.iter().filter(|s| s.path() == "/ping").count() as u64;
    assert_eq!(
        summary["requests"]["total"].as_u64().expect("total") + retries,
        business,
        "each retried request counted once"
    );
    assert!(
        seen.iter()
            .filter(|s| s.path() == "/ping")
            .all(|s| s.header("authorization").is_some()),
        "every business request carried a token"
    );
    let login = seen.iter().find(|s| s.path() == "/login").expect("a login");
    let body: Value = serde_json::from_slice(&login.body).expect("JSON login");
    assert_eq!(body["username"], "probe");
}

#[test]
fn when_every_login_fails_the_run_stops_early_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    demo_model(dir.path());
    let (_rt, target) = demo(TargetConfig {
        require_auth: true,
        ..TargetConfig::default()
    });
    let toml = format!(
        r#"target = "{}"
allow_hosts = ["127.0.0.1"]
[profile]
unit = "sessions_per_sec"
start = 20
stages = [{{ duration = "60s", target = 20 }}]
[auth]
kind = "json_login"
url = "/api/login"
body = '{{"email": "{{username}}", "password": "{{password}}"}}'
login_headers = {{ "x-tenant-id" = "acme" }}
username = "mallory@demo.test"
password = "${{REPRISE_TEST_WRONG_PASSWORD}}"
"#,
        target.url()
    );
    std::fs::write(dir.path().join("run.toml"), &toml).expect("writes");
    let started = std::time::Instant::now();
    let (out, everything, summary) = run_in(dir.path(), ("REPRISE_TEST_WRONG_PASSWORD", PASSWORD));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped long before the planned minute"
    );
    assert!(stderr.contains("every login failed"), "{stderr}");
    assert!(stderr.contains("status 401"), "{stderr}");
    assert!(
        stderr.contains("POST http://127.0.0.1") && stderr.contains("mallory@demo.test"),
        "{stderr}"
    );
    assert!(
        summary["run"]["aborted"]
            .as_str()
            .is_some_and(|r| r.contains("every login failed"))
    );
    assert_eq!(summary["run"]["interrupted"], false);
    assert_eq!(summary["auth"]["logins"], 0);
    assert!(summary["auth"]["sessions_denied"].as_u64().expect("denied") > 0);
    // Nothing unauthenticated reached the business endpoints.
    assert_eq!(summary["requests"]["total"], 0);
    assert!(!everything.contains(PASSWORD), "the password leaked");
}

#[test]
fn auth_mistakes_are_usage_errors_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 10);
    let server = Recorder::start(Behaviour::default());
    for (auth, expect) in [
        (
            "kind = \"json_login\"\nurl = \"/login\"\nusername = \"u\"\npassword = \"${REPRISE_TEST_NOT_SET_ANYWHERE}\"",
            "REPRISE_TEST_NOT_SET_ANYWHERE is not set",
        ),
        (
            "kind = \"json_login\"\nurl = \"/login\"\nusers = [{ tenant = \"acme\", username = \"u\", password = \"p\" }]",
            "no credentials for tenant default",
        ),
        ("kind = \"kerberos\"", "unknown variant `kerberos`"),
    ] {
        let toml = format!("target = \"{}\"\nrate = 1\n[auth]\n{auth}\n", server.url());
        let (out, _) = replay(
            dir.path(),
            &dir.path().join("model.json"),
            &toml,
            &["--quiet"],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{auth}: {stderr}");
        assert!(stderr.contains(expect), "{auth}: {stderr}");
    }
    assert!(server.seen().is_empty(), "nothing was sent");
}

/// A third-party server from npm, run by node from tests/interop (installed
/// there by `.ci/run`: `npm ci --prefix tests/interop`). The script prints
/// its URL on the first line, then lines the test counts.
struct NodeServer {
    child: std::process::Child,
    url: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NodeServer {
    /// `None` (said loudly) without node or the package, unless
    /// REPRISE_REQUIRE_INTEROP is set (CI), where that is a failure.
    fn start(script: &str, package: &str, env: &[(&str, &str)]) -> Option<NodeServer> {
        use std::io::BufRead;
        let dir = util::repo("tests/interop");
        let installed = dir.join("node_modules").join(package).is_dir();
        let node = std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !(installed && node) {
            let why = if node {
                format!(
                    "tests/interop/node_modules has no {package} (npm ci --prefix tests/interop)"
                )
            } else {
                "node is not installed".to_string()
            };
            if std::env::var_os("REPRISE_REQUIRE_INTEROP").is_some() {
                panic!("{package} interop is required (REPRISE_REQUIRE_INTEROP) but {why}");
            }
            eprintln!("SKIPPED: {package} interop test: {why}");
            return None;
        }
        let mut child = std::process::Command::new("node")
            .arg(dir.join(script))
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node starts");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("the server's URL");
        let url = first.trim().replace("localhost", "127.0.0.1");
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "{package} said {first:?}"
        );
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                l.lock().expect("lock").push(line);
            }
        });
        Some(NodeServer { child, url, lines })
    }

    /// How many lines it printed that are exactly `line`.
    fn count(&self, line: &str) -> u64 {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| *l == line)
            .count() as u64
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// oauth2-mock-server with tokens of `ttl_secs`; it prints `token GRANT`
/// per token response.
struct OAuth2Mock(NodeServer);

impl OAuth2Mock {
    fn start(ttl_secs: u32) -> Option<OAuth2Mock> {
        let ttl = ttl_secs.to_string();
        NodeServer::start(
            "oauth2-mock.mjs",
            "oauth2-mock-server",
            &[("TOKEN_TTL", &ttl)],
        )
        .map(OAuth2Mock)
    }

    fn grants(&self, grant: &str) -> u64 {
        self.0.count(&format!("token {grant}"))
    }
}

/// The `exp` claim of a bearer JWT.
fn jwt_exp(authorization: &str) -> u64 {
    use base64::Engine;
    let token = authorization
        .strip_prefix("Bearer ")
        .expect("a bearer token");
    let payload = token.split('.').nth(1).expect("a JWT");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&raw).expect("JSON claims");
    claims["exp"].as_u64().expect("exp")
}

/// Replays ping sessions for 6 s against a recording server with `[auth]`
/// from oauth2-mock-server; the summary and the recording server.
fn replay_with_oauth2(dir: &Path, mock: &OAuth2Mock, auth: &str) -> (Value, Recorder, String) {
    util::ping_model(dir, 300);
    let server = Recorder::start(Behaviour::default());
    let toml = format!(
        r#"target = "{}"
[profile]
unit = "sessions_per_sec"
start = 50
stages = [{{ duration = "6s", target = 50 }}]
[auth]
url = "{}/token"
{auth}
"#,
        server.url(),
        mock.0.url
    );
    std::fs::write(dir.join("run.toml"), &toml).expect("writes");
    let (out, all, summary) = run_in(dir, ("REPRISE_TEST_CLIENT_SECRET", PASSWORD));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Every business request carried a token that had not expired.
    let seen = server.seen();
    assert!(seen.len() > 200, "{} requests", seen.len());
    for s in &seen {
        let exp = jwt_exp(s.header("authorization").expect("a token on every request"));
        let at = s
            .wall
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        assert!(exp >= at, "a token that expired at {exp} was sent at {at}");
    }
    assert!(!all.contains(PASSWORD), "the client secret leaked");
    (summary, server, all)
}

#[test]
fn oauth2_mock_server_client_credentials_with_two_second_tokens() {
    let Some(mock) = OAuth2Mock::start(2) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (summary, _server, _) = replay_with_oauth2(
        dir.path(),
        &mock,
        "kind = \"oauth2_client_credentials\"\nclient_id = \"reprise-ci\"\nclient_secret = \"${REPRISE_TEST_CLIENT_SECRET}\"\nscope = \"api\"",
    );
    let auth = &summary["auth"];
    assert_eq!(auth["logins"], 1);
    let refreshes = auth["token_refreshes"].as_u64().expect("refreshes");
    assert!(
        refreshes >= 3,
        "{refreshes} refreshes of 2 s tokens over 6 s"
    );
    assert_eq!(mock.grants("client_credentials"), 1 + refreshes);
    assert_eq!(auth["auth_failures"], 0);
    assert_eq!(summary["requests"]["failed"], 0);
}

#[test]
fn oauth2_mock_server_password_grant_renews_with_the_refresh_token() {
    let Some(mock) = OAuth2Mock::start(2) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (summary, _server, _) = replay_with_oauth2(
        dir.path(),
        &mock,
        "kind = \"oauth2_password\"\nclient_id = \"reprise-ci\"\nclient_secret = \"${REPRISE_TEST_CLIENT_SECRET}\"\nusername = \"loadtest\"\npassword = \"${REPRISE_TEST_CLIENT_SECRET}\"",
    );
    let auth = &summary["auth"];
    assert_eq!(auth["logins"], 1);
    assert_eq!(mock.grants("password"), 1, "one password login");
    let refreshes = auth["token_refreshes"].as_u64().expect("refreshes");
    assert!(refreshes >= 3, "{refreshes} refreshes");
    assert_eq!(
        mock.grants("refresh_token"),
        refreshes,
        "every renewal used the refresh token"
    );
}

#[test]
fn json_server_auth_jwt_login_in_front_of_json_server() {
    let Some(server) = NodeServer::start(
        "json-server-auth.cjs",
        "json-server-auth",
        &[("LOGIN_PASSWORD", PASSWORD)],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    util::path_model(dir.path(), 120, "/products");
    let toml = format!(
        r#"target = "{}"
grace = "2s"
[profile]
unit = "sessions_per_sec"
start = 40
stages = [{{ duration = "3s", target = 40 }}]
[auth]
kind = "json_login"
url = "/login"
body = '{{"email": "{{username}}", "password": "{{password}}"}}'
token_pointer = "/accessToken"
username = "loadtest@example.test"
password = "${{REPRISE_TEST_JSON_SERVER_PASSWORD}}"
"#,
        server.url
    );
    std::fs::write(dir.path().join("run.toml"), &toml).expect("writes");
    let (out, everything, summary) =
        run_in(dir.path(), ("REPRISE_TEST_JSON_SERVER_PASSWORD", PASSWORD));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let total = summary["requests"]["total"].as_u64().expect("total");
    assert!(total > 80, "{total} requests");
    assert_eq!(summary["requests"]["failed"], 0, "{}", summary["requests"]);
    // One login; the JWT's exp (an hour away) needs no refresh in 3 s.
    assert_eq!(summary["auth"]["logins"], 1);
    assert_eq!(summary["auth"]["token_refreshes"], 0);
    // json-server's own log: one login, every read allowed, no 401.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.count("POST /login 200"), 1);
    assert_eq!(server.count("GET /products 200"), total);
    assert!(
        !server
            .lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.ends_with(" 401")),
        "a request was refused"
    );
    assert!(!everything.contains(PASSWORD));
}

/// A login server that never answers within the run: the logins still
/// waiting at the end are counted and explained, and a run that could
/// send nothing fails instead of passing with zero requests.
#[test]
fn logins_still_waiting_when_the_run_ends_are_counted_and_fail_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    util::ping_model(dir.path(), 30);
    let target = Recorder::start(Behaviour::default());
    let login = Recorder::stalling(Duration::ZERO, Duration::from_secs(60));
    let toml = format!(
        r#"target = "{}"
allow_hosts = ["127.0.0.1"]
timeout = "30s"
[profile]
unit = "sessions_per_sec"
start = 5
stages = [{{ duration = "2s", target = 5 }}]
[auth]
kind = "json_login"
url = "{}/login"
username = "slow@x.test"
password = "${{REPRISE_TEST_PASSWORD}}"
"#,
        target.url(),
        login.url()
    );
    std::fs::write(dir.path().join("run.toml"), &toml).expect("writes");
    let started = std::time::Instant::now();
    let (out, everything, summary) = run_in(dir.path(), ("REPRISE_TEST_PASSWORD", PASSWORD));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the run kept its length"
    );
    assert_eq!(summary["auth"]["auth_cut_short"], 1, "{summary}");
    assert_eq!(summary["requests"]["total"], 0);
    let example = summary["auth"]["examples"][0].as_str().expect("example");
    assert!(
        example.contains("slow@x.test") && example.contains("cut short by the end of the run"),
        "{example}"
    );
    assert!(
        stderr.contains("no login answered before the run ended"),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).contains("1 login was still waiting for an answer"),
        "{}",
        text(&out.stdout)
    );
    assert!(!everything.contains(PASSWORD), "the password leaked");
    assert_eq!(target.seen().len(), 0);
}
