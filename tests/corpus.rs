//! Every real capture in ../shared/corpus imports, or — the malformed ones —
//! fails with exit 2 and a message naming the file and the place.

use crate::util::{corpus, reprise, text};
use reprise::model::Model;

/// Files that must be rejected, and the place their message must name.
const MALFORMED: [(&str, &str); 2] = [
    (
        "har/harviewer_not-json.har",
        "harviewer_not-json.har:8:5: broken HAR JSON",
    ),
    (
        "logs/crowdsec_nginx_malformed_requests.log",
        "crowdsec_nginx_malformed_requests.log:1: malformed request line",
    ),
];

/// Exact expectations: file, detected format, records, accepted, modelled
/// requests (after static assets and websockets are left out).
const EXACT: [(&str, &str, u64, u64, u64); 18] = [
    (
        "logs/elastic-examples_apache_combined.log",
        "clf",
        10_000,
        10_000,
        4_591,
    ),
    (
        "logs/lnav_playground_access_log.gz",
        "clf",
        2_492,
        2_492,
        2_443,
    ),
    (
        "logs/crowdsec_apache_common_nikto-probing.log",
        "clf",
        77,
        75,
        75,
    ),
    ("logs/filebeat_nginx_host_xff.log", "clf", 10, 8, 8),
    ("logs/crowdsec_traefik_clf.log", "clf", 7, 7, 7),
    (
        "logs/lnav_zanbil_nginx_combined_xff.log",
        "clf",
        1_000,
        1_000,
        924,
    ),
    ("logs/crowdsec_aws_alb.log", "alb", 14, 14, 14),
    (
        "logs/crowdsec_aws_cloudfront_noheader.log",
        "cloudfront",
        2,
        2,
        2,
    ),
    ("logs/crowdsec_traefik_json.log", "json", 80, 80, 78),
    ("logs/crowdsec_caddy_json.log", "json", 11, 10, 10),
    ("logs/lnav_iis85_w3c.log", "w3c", 210, 210, 191),
    ("logs/lnav_iis_advanced_logging_w3c.log", "w3c", 3, 3, 3),
    ("har/haralyzer_cnn_firebug.har", "har", 145, 145, 13),
    ("har/harviewer_fiddler2_noPages.har", "har", 87, 87, 10),
    (
        "har/pagexray_chrome-har_case-sensitive-protocol.har",
        "har",
        169,
        169,
        36,
    ),
    ("har/mitmproxy_firefox.har", "har", 14, 14, 5),
    ("har/har-to-k6_multipart-formdata.har", "har", 5, 5, 5),
    ("har/mitmproxy_websocket.har", "har", 3, 3, 0),
];

#[test]
fn every_corpus_file_imports_or_fails_cleanly() {
    let Some(root) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for sub in ["har", "logs"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            seen += 1;
            let rel = format!("{sub}/{}", f.file_name().unwrap().to_string_lossy());
            let out_path = dir.path().join("m.json");
            let out = reprise()
                .args(["import", "-q"])
                .arg(&f)
                .arg("-o")
                .arg(&out_path)
                .output()
                .unwrap();
            let stderr = text(&out.stderr);
            assert!(!stderr.contains("panicked"), "{rel}: {stderr}");
            if let Some((_, place)) = MALFORMED.iter().find(|(m, _)| *m == rel) {
                assert_eq!(
                    out.status.code(),
                    Some(2),
                    "{rel} must be rejected: {stderr}"
                );
                assert!(
                    stderr.contains(place),
                    "{rel}: message should name {place}: {stderr}"
                );
                continue;
            }
            assert_eq!(out.status.code(), Some(0), "{rel} must import: {stderr}");
            let model = Model::load(&out_path).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert_eq!(model.capture.sources.len(), 1);
            assert!(model.capture.sources[0].accepted > 0, "{rel}");
            if let Some((_, fmt, records, accepted, requests)) = EXACT.iter().find(|x| x.0 == rel) {
                let s = &model.capture.sources[0];
                assert_eq!(
                    (s.format.as_str(), s.records, s.accepted),
                    (*fmt, *records, *accepted),
                    "{rel}"
                );
                assert_eq!(
                    model.capture.requests, *requests,
                    "{rel}: requests modelled"
                );
            }
        }
    }
    assert!(
        seen >= 41,
        "the corpus has 21 HAR files and 20 logs, saw {seen}"
    );
}

#[test]
fn corpus_details_survive_into_the_model() {
    let Some(root) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (alb, _, _) = crate::util::import(
        dir.path(),
        &[root.join("logs/crowdsec_aws_alb.log").to_str().unwrap()],
    );
    assert!(
        alb.capture.hosts.contains(&"www.example.com".to_string()),
        "{:?}",
        alb.capture.hosts
    );
    let (xff, _, _) = crate::util::import(
        dir.path(),
        &[root
            .join("logs/filebeat_nginx_host_xff.log")
            .to_str()
            .unwrap()],
    );
    assert!(xff.capture.hosts.contains(&"example.com".to_string()));
    // The skipped lines are reported with their places.
    assert_eq!(xff.capture.sources[0].skipped.values().sum::<u64>(), 2);
    assert!(
        xff.capture.sources[0]
            .first_skips
            .iter()
            .any(|s| s.contains("filebeat_nginx_host_xff.log:7"))
    );
    // Durations from the ALB processing times and IIS time-taken.
    assert!(alb.endpoints.iter().any(|e| e.latency_ms.is_some()));
    let (iis, _, _) = crate::util::import(
        dir.path(),
        &[root.join("logs/lnav_iis85_w3c.log").to_str().unwrap()],
    );
    assert!(iis.endpoints.iter().all(|e| e.latency_ms.is_some()));
    // A websocket-only capture imports with its upgrades left out.
    let (ws, _, _) = crate::util::import(
        dir.path(),
        &[root.join("har/mitmproxy_websocket.har").to_str().unwrap()],
    );
    assert_eq!(ws.capture.filtered.get("websocket"), Some(&3));
    // Several real inputs of different formats merge into one model.
    let (both, _, _) = crate::util::import(
        dir.path(),
        &[
            root.join("logs/crowdsec_aws_alb.log").to_str().unwrap(),
            root.join("har/mitmproxy_firefox.har").to_str().unwrap(),
        ],
    );
    assert_eq!(both.capture.sources.len(), 2);
    assert_eq!(both.capture.requests, 14 + 5);
}

#[test]
fn bundled_captures_import() {
    let dir = tempfile::tempdir().unwrap();
    let log = crate::util::repo("captures/demo-shop-nginx.log");
    let (m, _, _) = crate::util::import(dir.path(), &[log.to_str().unwrap()]);
    assert_eq!(m.capture.requests, 1_884);
    assert_eq!(m.settings.tenant_rules, vec!["host:subdomain"]);
    let names: Vec<&str> = m.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["acme", "globex", "initech", "umbrella"]);
    assert_eq!(m.endpoints.len(), 7);
    let har = crate::util::repo("captures/demo-shop.har.gz");
    let (h, raw, _) = crate::util::import(dir.path(), &[har.to_str().unwrap()]);
    assert_eq!(
        h.capture.requests, 1_884,
        "the HAR holds the same requests as the log"
    );
    assert_eq!(h.settings.tenant_rules[0], "header:x-tenant-id");
    assert!(!raw.contains("eyJ"), "no token survives");
    // Both views of the same traffic agree on the tenant mix within a point.
    for t in &m.tenants {
        let other = h
            .tenants
            .iter()
            .find(|x| x.name == t.name)
            .expect("same tenants");
        assert!((t.request_share - other.request_share).abs() < 0.01);
    }
}
