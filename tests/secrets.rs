//! Planted secrets never reach the model, what `inspect` prints, or what a
//! replay writes.

use crate::util::synth::jwt;
use crate::util::{import, reprise, text};

/// Distinctive values planted in every place a capture carries credentials.
fn planted() -> Vec<String> {
    vec![
        jwt(r#"{"sub":"planted-subject","org_id":"acme","secret":"x"}"#),
        "PLANTEDcookieVALUE42".into(),
        "PLANTEDcsrf9911".into(),
        "hunter2-PLANTED-pw".into(),
        "sk_live_PLANTEDapikey77".into(),
        "PLANTEDqueryTOKEN55".into(),
        "PLANTEDrefresh0099".into(),
        "PLANTEDbasicpass".into(),
        "PLANTEDformpw31".into(),
        "PLANTEDauthhdr66".into(),
        // A cookie with `+ / =` in it, and the same value as a URL
        // carries it, percent-encoded.
        "PLANTEDb64+tok/en==".into(),
        "PLANTEDb64%2Btok%2Fen%3D%3D".into(),
    ]
}

fn har_with_secrets(p: &[String]) -> String {
    let basic = base64_basic(&format!("alice:{}", p[7]));
    serde_json::to_string_pretty(&serde_json::json!({"log": {"entries": [
        {
            "startedDateTime": "2024-05-01T10:00:00.000Z", "time": 50,
            "request": {
                "method": "POST", "url": format!("https://app.example.com/api/login?access_token={}", p[5]),
                "headers": [
                    {"name": "Authorization", "value": format!("Bearer {}", p[0])},
                    {"name": "Cookie", "value": format!("sessionid={}; theme=dark", p[1])},
                    {"name": "X-CSRF-Token", "value": p[2]},
                    {"name": "X-Auth-Token", "value": p[9]},
                    {"name": "Content-Type", "value": "application/json"}
                ],
                "postData": {"mimeType": "application/json", "text": serde_json::json!({
                    "email": "alice@example.com", "password": p[3],
                    "nested": {"refresh_token": p[6], "note": format!("key {}", p[4])}
                }).to_string()}
            },
            "response": {"status": 200, "headers": [{"name": "Set-Cookie", "value": format!("sessionid={}; HttpOnly", p[1])}],
                         "content": {"mimeType": "application/json"}}
        },
        {
            "startedDateTime": "2024-05-01T10:00:05.000Z", "time": 30,
            "request": {
                "method": "GET", "url": format!("https://app.example.com/api/orders/17?api_key={}&page=2", p[4]),
                "headers": [{"name": "Authorization", "value": format!("Basic {basic}")}, {"name": "X-Api-Key", "value": p[4]}]
            },
            "response": {"status": 200}
        },
        {
            "startedDateTime": "2024-05-01T10:00:09.000Z", "time": 30,
            "request": {
                "method": "POST", "url": format!("https://app.example.com/reset/{}", p[0]),
                "headers": [{"name": "Cookie", "value": format!("sessionid={}", p[1])}],
                "postData": {"mimeType": "application/x-www-form-urlencoded",
                             "params": [{"name": "user", "value": "alice"}, {"name": "password", "value": p[8]},
                                        // A name that carries the cookie (Fiddler exports have these).
                                        {"name": format!("{{\"sid\":\"{}\"}}", p[1]), "value": "x"}]}
            },
            "response": {"status": 302}
        },
        {
            "startedDateTime": "2024-05-01T10:00:12.000Z", "time": 30,
            "request": {
                "method": "GET", "url": format!("https://app.example.com/api/resume/{}?state={}&page=1", p[11], p[11]),
                "headers": [{"name": "Cookie", "value": format!("session={}", p[10])}]
            },
            "response": {"status": 200}
        }
    ]}}))
    .unwrap()
}

fn base64_basic(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn assert_clean(what: &str, haystack: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !haystack.contains(s.as_str()),
            "{what} contains the planted secret {s}"
        );
    }
}

#[test]
fn planted_secrets_stay_out_of_har_models() {
    let p = planted();
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("secrets.har");
    std::fs::write(&har, har_with_secrets(&p)).unwrap();
    let (model, raw, out) = import(dir.path(), &[har.to_str().unwrap()]);
    assert_clean("model.json", &raw, &p);
    assert_clean(
        "import output",
        &(text(&out.stdout) + &text(&out.stderr)),
        &p,
    );
    // The redactions section says what was removed.
    let red: Vec<(String, String)> = model
        .redactions
        .iter()
        .map(|r| (r.kind.clone(), r.name.clone()))
        .collect();
    for want in [
        ("header", "authorization"),
        ("header", "cookie"),
        ("header", "x-csrf-token"),
        ("header", "x-api-key"),
        ("query", "access_token"),
        ("query", "api_key"),
        ("body-field", "password"),
        ("form-field", "password"),
        ("path", "token"),
    ] {
        assert!(
            red.contains(&(want.0.into(), want.1.into())),
            "{want:?} not in {red:?}"
        );
    }
    // Non-secret context survives: the page parameter, the e-mail, the theme
    // is not a credential but rides in Cookie, which is dropped as a whole.
    assert!(raw.contains("alice@example.com"));
    assert!(raw.contains("query.page"));
    for args in [vec!["inspect"], vec!["inspect", "--json"]] {
        let out = reprise()
            .args(&args)
            .arg(dir.path().join("model.json"))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_clean("inspect", &(text(&out.stdout) + &text(&out.stderr)), &p);
    }
}

#[test]
fn planted_secrets_stay_out_of_log_models() {
    let p = planted();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let lines = [
        format!(
            r#"10.0.0.1 - - [01/May/2024:10:00:00 +0000] "GET /api/items?api_key={}&q=shoes HTTP/1.1" 200 10 "-" "curl/8" "{}""#,
            p[4], p[1]
        ),
        format!(
            r#"10.0.0.1 - - [01/May/2024:10:00:02 +0000] "GET /api/items/42?token={}&access_token={} HTTP/1.1" 200 10 "-" "curl/8" "{}""#,
            p[5], p[0], p[1]
        ),
        format!(
            r#"10.0.0.1 - - [01/May/2024:10:00:03 +0000] "GET /verify/{} HTTP/1.1" 200 10 "-" "curl/8" "-""#,
            p[0]
        ),
    ];
    std::fs::write(&log, lines.join("\n")).unwrap();
    let (_, raw, out) = import(
        dir.path(),
        &[
            log.to_str().unwrap(),
            "--log-format",
            r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$cookie_sessionid""#,
        ],
    );
    assert_clean("model.json", &raw, &p);
    assert_clean(
        "import output",
        &(text(&out.stdout) + &text(&out.stderr)),
        &p,
    );
    assert!(raw.contains("shoes"), "ordinary query values are kept");
}

/// Everything a run wrote under `dir` (files) and printed, as one text.
fn everything_written(dir: &std::path::Path, out: &std::process::Output) -> String {
    let mut all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for e in std::fs::read_dir(dir).expect("out dir") {
        let p = e.expect("entry").path();
        all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).expect("reads")));
    }
    all
}

#[test]
fn passwords_in_target_and_watch_urls_are_sent_as_basic_auth_and_never_shown() {
    use crate::util::server::{Behaviour, Recorder};
    let dir = tempfile::tempdir().expect("tempdir");
    crate::util::ping_model(dir.path(), 60);
    let target = Recorder::start(Behaviour::default());
    let metrics = Recorder::start(Behaviour::default());
    let secrets = vec![
        "t0p-s3cret".to_string(),
        "w4tch-s3cret".to_string(),
        base64_basic("ci:t0p-s3cret"),
        base64_basic("prom:w4tch-s3cret"),
    ];
    let target_url = format!("http://ci:t0p-s3cret@{}", target.addr);
    let watch = format!("db=http://prom:w4tch-s3cret@{}/metrics", metrics.addr);
    let run = |extra: &[&str]| {
        reprise()
            .args(["replay", "model.json", "--target", &target_url])
            .args(["--allow-host", "127.0.0.1", "--watch", &watch])
            .args(["--rate", "10", "--duration", "2s", "--grace", "1s"])
            .args(["--watch-every", "250ms", "--out", "out", "--html"])
            .arg(dir.path().join("out/report.html"))
            .args(extra)
            .current_dir(dir.path())
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("runs")
    };
    // A --watch that cannot be used: the error names it, password masked.
    for bad in [
        "http://prom:w4tch-s3cret@127.0.0.1/metrics",
        "http://prom@127.0.0.1/m?password=w4tch-s3cret",
        "db=ftp://prom:w4tch-s3cret@127.0.0.1/metrics",
    ] {
        let out = reprise()
            .args(["replay", "model.json", "--target", "http://127.0.0.1:9"])
            .args(["--dry-run", "--watch", bad])
            .current_dir(dir.path())
            .output()
            .expect("runs");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("--watch"), "{err}");
        assert_clean("a --watch error", &err, &secrets);
    }
    let dry = run(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("http://ci:***@127.0.0.1"),
        "{}",
        text(&dry.stdout)
    );
    assert_clean(
        "the dry run",
        &format!("{}{}", text(&dry.stdout), text(&dry.stderr)),
        &secrets,
    );
    assert!(target.seen().is_empty(), "a dry run sends nothing");

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let seen = target.seen();
    assert!(seen.len() >= 10, "{} requests", seen.len());
    let basic = format!("Basic {}", base64_basic("ci:t0p-s3cret"));
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some(basic.as_str()))
    );
    let scrapes = metrics.seen();
    assert!(!scrapes.is_empty());
    let basic = format!("Basic {}", base64_basic("prom:w4tch-s3cret"));
    assert!(
        scrapes
            .iter()
            .all(|s| s.header("authorization") == Some(basic.as_str()))
    );
    let all = everything_written(&dir.path().join("out"), &out);
    assert!(
        all.contains("http://prom:***@127.0.0.1"),
        "the watch is named, masked"
    );
    assert_clean("the run's output", &all, &secrets);
}

/// A config file with a mistake on a line that holds a credential: the
/// error names the file, line, column and key, and never the value (toml's
/// own message quotes the whole line, serde's the value).
#[test]
fn config_file_errors_do_not_print_the_secret_on_the_line() {
    let dir = tempfile::tempdir().unwrap();
    crate::util::ping_model(dir.path(), 5);
    let model = dir.path().join("model.json");
    let auth =
        "target = \"http://127.0.0.1:9\"\n[auth]\nkind = \"json_login\"\nurl = \"/api/login\"\n";
    for (config, secret, place) in [
        (
            "target = \"http://ci:TargetPw_1234@127.0.0.1:9\n".to_string(),
            "TargetPw_1234",
            "run.toml:1:",
        ),
        (
            format!("{auth}username = \"alice\"\npassword = \"S3cretPassw0rd\n"),
            "S3cretPassw0rd",
            "run.toml:6:27: invalid basic string",
        ),
        (
            format!("{auth}client_secret = \"CliSecret123\" x\n"),
            "CliSecret123",
            "run.toml:5:",
        ),
        (
            format!("{auth}password = 87654321\n"),
            "87654321",
            "run.toml:5:12: invalid type: integer `***`, expected a string (in `password = …`)",
        ),
        (
            format!(
                "{auth}users = [{{ tenant = \"acme\", username = \"u\", password = 12345678 }}]\n"
            ),
            "12345678",
            "(in `users = …`)",
        ),
        (
            "target = \"http://127.0.0.1:9\"\nheaders = \"Authorization: Bearer PLANTEDhdr\"\n"
                .to_string(),
            "PLANTEDhdr",
            "run.toml:2:11: invalid type: string `***`, expected a map (in `headers = …`)",
        ),
        (
            format!("{auth}users = [\"alice:PLANTEDpw\"]\n"),
            "PLANTEDpw",
            "(in `users = …`)",
        ),
        (
            format!("{auth}body = \"\"\"\n{{\"password\":\"PLANTEDbody\",\"x\":\"a=b\\q\"}}\n\"\"\"\n"),
            "PLANTEDbody",
            "run.toml:6:",
        ),
        (
            "target = \"http://127.0.0.1:9\"\nheaders = 'Authorization: Digest username=\"a\", response=\"PLANTEDdigest\", nonce=\"n\"'\n"
                .to_string(),
            "PLANTEDdigest",
            "run.toml:2:",
        ),
        (
            format!("{auth}users = '[{{\"username\":\"a\",\"password\":\"PLANTEDjson\"}}]'\n"),
            "PLANTEDjson",
            "run.toml:5:",
        ),
        // Checks after parsing: a header name, an auth URL, a template.
        (
            "target = \"http://127.0.0.1:9\"\nheaders = { \"Bad Name\" = \"Bearer PLANTEDbadname\" }\n"
                .to_string(),
            "PLANTEDbadname",
            "`bad name` is not a header name",
        ),
        (
            "target = \"http://127.0.0.1:9\"\n[auth]\nkind = \"json_login\"\nurl = \"ftp://u:PLANTEDurlpw@127.0.0.1:9/login\"\nusername = \"u\"\npassword = \"p\"\n"
                .to_string(),
            "PLANTEDurlpw",
            "a path starting with / or an http(s) URL",
        ),
        (
            format!(
                "{auth}username = \"u\"\npassword = \"p\"\nbody = '{{\"user\": \"{{username}}\", \"pin\": \"PLANTEDpin\", \"x\": \"{{nope}}\"}}'\n"
            ),
            "PLANTEDpin",
            "`{nope}` in a template is not a credential field",
        ),
        (
            "[watch]\ndb = 7\n[auth]\nkind = \"json_login\"\nurl = \"https://u:Watch_pw_99@idp/x\" y\n"
                .to_string(),
            "Watch_pw_99",
            "run.toml:5:",
        ),
    ] {
        let file = dir.path().join("run.toml");
        std::fs::write(&file, &config).unwrap();
        let out = crate::util::reprise()
            .args(["replay", model.to_str().unwrap(), "--config"])
            .arg(&file)
            .arg("--dry-run")
            .output()
            .expect("runs");
        let stderr = crate::util::text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}: {stderr}");
        assert!(
            !stderr.contains(secret),
            "{config}: the secret is shown: {stderr}"
        );
        assert!(stderr.contains(place), "{config}: {stderr}");
    }
    // The flag's own error does not repeat the value either.
    let out = crate::util::reprise()
        .args([
            "replay",
            model.to_str().unwrap(),
            "--target",
            "http://127.0.0.1:9",
        ])
        .args(["--header", "Bad Name: Bearer PLANTEDflag", "--dry-run"])
        .output()
        .expect("runs");
    let stderr = crate::util::text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("PLANTEDflag"), "{stderr}");
    assert!(
        stderr.contains("--header: `bad name` is not a header name"),
        "{stderr}"
    );
}
