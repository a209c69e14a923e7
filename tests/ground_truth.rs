//! The importer recovers what synthetic traffic was generated from: tenant
//! weights within 1 point, the shape mix within 2 points, the think-time
//! median within 5%, and each tenant's ids in its own pools only.

use std::collections::BTreeMap;

use reprise::model::Model;

use crate::util::synth::{self, Truth};
use crate::util::{import, share};

fn check_tenants(model: &Model, truth: &Truth) {
    let total = truth.total_sessions() as u64;
    assert_eq!(
        model.capture.sessions, total,
        "every generated session found, none split or merged"
    );
    for (name, _) in &truth.tenants {
        let t = model
            .tenants
            .iter()
            .find(|t| t.name == *name)
            .unwrap_or_else(|| panic!("tenant {name}"));
        let want = share(truth.sessions(name) as u64, total);
        assert!(
            (t.session_share - want).abs() <= 0.01,
            "{name}: session share {} vs {want}",
            t.session_share
        );
    }
    assert_eq!(model.tenants.len(), truth.tenants.len(), "no stray tenants");
}

fn check_shapes(model: &Model, truth: &Truth, prefix: &str) {
    for (name, _) in &truth.tenants {
        let t = model
            .tenants
            .iter()
            .find(|t| t.name == *name)
            .expect("tenant");
        let got: BTreeMap<Vec<String>, f64> = t
            .shapes
            .iter()
            .map(|s| {
                let names = s.steps.iter().map(|&i| model.endpoints[i].name()).collect();
                (names, share(s.sessions, t.sessions))
            })
            .collect();
        let want = synth::shape_mix(truth, name, prefix);
        for (shape, w) in &want {
            let g = got.get(shape).copied().unwrap_or(0.0);
            assert!(
                (g - w).abs() <= 0.02,
                "{name} {shape:?}: {g} vs {w}; model has {got:?}"
            );
        }
        let stray: f64 = got
            .iter()
            .filter(|(s, _)| !want.contains_key(*s))
            .map(|(_, v)| v)
            .sum();
        assert!(
            stray <= 0.02,
            "{name}: {stray} of sessions in shapes never generated: {got:?}"
        );
    }
}

fn check_think(model: &Model, truth: &Truth) {
    let want = truth.think_median.as_secs_f64() * 1000.0;
    for t in &model.tenants {
        let p50 = t.think_ms.as_ref().expect("think times").p50;
        assert!(
            (p50 - want).abs() / want <= 0.05,
            "{}: think median {p50}ms vs {want}ms",
            t.name
        );
    }
}

fn check_pools(model: &Model, truth: &Truth, pool: &str) {
    for (i, (name, _)) in truth.tenants.iter().enumerate() {
        let t = model
            .tenants
            .iter()
            .find(|t| t.name == *name)
            .expect("tenant");
        let ids = Truth::product_ids(i);
        let p = t
            .pools
            .get(pool)
            .unwrap_or_else(|| panic!("{name} has no {pool} pool: {:?}", t.pools.keys()));
        assert!(
            p.values.len() > 20,
            "{name}: only {} ids recorded",
            p.values.len()
        );
        for (v, _) in &p.values {
            let id: u32 = v.parse().expect("numeric id");
            assert!(
                ids.contains(&id),
                "{name}'s pool {pool} holds {id}, another tenant's id"
            );
        }
        // Ids were drawn with a skew towards the low end: the pool is ordered
        // by recorded frequency.
        let first: u32 = p.values[0].0.parse().expect("id");
        assert!(first < ids.start + 30, "{name}: most frequent id {first}");
    }
}

#[test]
fn access_log_ground_truth() {
    let truth = Truth::standard();
    let events = synth::generate(&truth);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, synth::access_log(&events)).unwrap();
    let (model, _, _) = import(dir.path(), &[log.to_str().unwrap()]);
    assert_eq!(
        model.settings.tenant_rules,
        vec!["path:2"],
        "tenant path found automatically"
    );
    assert!(model.settings.tenant_rules_automatic);
    check_tenants(&model, &truth);
    check_shapes(&model, &truth, "/t/{tenant}");
    check_think(&model, &truth);
    check_pools(&model, &truth, "products.id");
    assert_eq!(model.capture.requests, events.len() as u64);
}

#[test]
fn har_ground_truth() {
    let truth = Truth::standard();
    let events = synth::generate(&truth);
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("capture.har");
    std::fs::write(&har, synth::har(&events)).unwrap();
    let (model, _, _) = import(dir.path(), &[har.to_str().unwrap()]);
    assert_eq!(model.settings.tenant_rules[0], "header:x-tenant-id");
    check_tenants(&model, &truth);
    check_shapes(&model, &truth, "");
    check_think(&model, &truth);
    check_pools(&model, &truth, "products.id");
    // The order body's product id is recognised as a pool value.
    let order = model
        .endpoints
        .iter()
        .find(|e| e.name() == "POST /api/orders")
        .expect("orders endpoint");
    match &order.body {
        Some(reprise::model::BodyTemplate::Json { slots, .. }) => {
            assert!(
                slots
                    .iter()
                    .any(|s| s.pointer == "/product_id" && s.pool == "products.id"),
                "{slots:?}"
            );
        }
        other => panic!("order body kept as JSON template, got {other:?}"),
    }
}

#[test]
fn explicit_rules_and_session_keys() {
    let truth = Truth::standard();
    let events = synth::generate(&truth);
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("capture.har");
    std::fs::write(&har, synth::har(&events)).unwrap();
    // Tenant from the JWT claim, sessions from the bearer subject.
    let (model, _, _) = import(
        dir.path(),
        &[
            har.to_str().unwrap(),
            "--tenant",
            "jwt:org_id",
            "--session-key",
            "jwt:sub",
        ],
    );
    assert_eq!(model.settings.tenant_rules, vec!["jwt:org_id"]);
    check_tenants(&model, &truth);
    // One session per client address instead: far fewer sessions.
    let (by_ip, _, _) = import(dir.path(), &[har.to_str().unwrap(), "--session-key", "ip"]);
    assert!(by_ip.capture.sessions < model.capture.sessions);
}

/// Servers that log a request when it has answered (nginx, IIS,
/// CloudFront, Caddy): its start is the logged time less its duration, so
/// think times are measured from the end of one response to the start of
/// the next, not between the two log times.
#[test]
fn think_times_from_logs_written_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    // One client: /a from T to T+2, /b from T+3 to T+3.5, /c from T+4 to
    // T+7 (T = 2026-01-10 10:00:00 UTC). Thinks: 1.0 s and 0.5 s. Read as
    // starts, the log times give 0 (clamped from -0.5) and 3.0 s.
    std::fs::write(
        &log,
        "10.0.0.1 1768039202.000 \"GET /a HTTP/1.1\" 200 2.000\n\
         10.0.0.1 1768039203.500 \"GET /b HTTP/1.1\" 200 0.500\n\
         10.0.0.1 1768039207.000 \"GET /c HTTP/1.1\" 200 3.000\n",
    )
    .unwrap();
    let (model, _, _) = import(
        dir.path(),
        &[
            log.to_str().unwrap(),
            "--log-format",
            r#"$remote_addr $msec "$request" $status $request_time"#,
        ],
    );
    let think = model.tenants[0].think_ms.as_ref().expect("think times");
    assert_eq!(think.count, 2);
    assert!((think.min - 500.0).abs() < 1.0, "{think:?}");
    assert!((think.max - 1000.0).abs() < 1.0, "{think:?}");
    assert_eq!(
        model.capture.start.to_rfc3339(),
        "2026-01-10T10:00:00Z",
        "the session started when /a did"
    );
}
