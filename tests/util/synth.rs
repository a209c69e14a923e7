//! Synthetic multi-tenant traffic from known parameters, rendered as an
//! nginx access log and as a HAR, for ground-truth tests: the importer must
//! recover what was put in.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use reprise::model::Timestamp;

/// A step of a session: method and path under the tenant's prefix; `{id}`
/// is filled from the tenant's product ids, `{order}` from its order ids.
pub type Step = (&'static str, &'static str);

pub const LIST: Step = ("GET", "/api/products");
pub const ITEM: Step = ("GET", "/api/products/{id}");
pub const ORDER: Step = ("POST", "/api/orders");
pub const TRACK: Step = ("GET", "/api/orders/{order}");
pub const LOGIN: Step = ("POST", "/api/login");

/// A tenant's session shapes and how many sessions of each.
pub type ShapeMix = Vec<(Vec<Step>, u32)>;

/// What a synthetic capture is made of.
pub struct Truth {
    pub tenants: Vec<(&'static str, ShapeMix)>,
    pub think_median: Duration,
    pub think_sigma: f64,
    pub seed: u64,
}

impl Truth {
    /// Three tenants, 50/30/20 by sessions, each with its own shape mix.
    pub fn standard() -> Truth {
        Truth {
            tenants: vec![
                (
                    "acme",
                    vec![
                        (vec![LIST, ITEM, ORDER], 300),
                        (vec![LIST, ITEM], 150),
                        (vec![TRACK], 150),
                    ],
                ),
                (
                    "globex",
                    vec![(vec![LIST, ITEM, ITEM], 180), (vec![TRACK, TRACK], 180)],
                ),
                (
                    "initech",
                    vec![(vec![LOGIN, LIST, ITEM, ORDER], 160), (vec![LIST], 80)],
                ),
            ],
            think_median: Duration::from_secs(20),
            think_sigma: 0.5,
            seed: 7,
        }
    }

    pub fn sessions(&self, tenant: &str) -> u32 {
        self.tenants
            .iter()
            .find(|(t, _)| *t == tenant)
            .map_or(0, |(_, s)| s.iter().map(|(_, n)| n).sum())
    }

    pub fn total_sessions(&self) -> u32 {
        self.tenants.iter().map(|(t, _)| self.sessions(t)).sum()
    }

    /// The ids a tenant's requests use (disjoint between tenants).
    pub fn product_ids(tenant_index: usize) -> std::ops::Range<u32> {
        let base = 1000 * (tenant_index as u32 + 1);
        base..base + 100
    }
}

/// One generated request.
#[derive(Clone, Debug)]
pub struct Event {
    pub time: Timestamp,
    pub tenant: &'static str,
    pub client: String,
    pub user: String,
    pub agent: String,
    pub method: &'static str,
    /// Path without the tenant prefix.
    pub path: String,
    pub status: u16,
    pub duration: Duration,
    pub body: Option<String>,
}

const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Version/17.1 Safari/605.1.15",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
];

/// Generates the events of `truth`, in time order. Every session has its own
/// user; a client (address + agent) runs several sessions an hour or more
/// apart, so grouping must split on the idle gap.
pub fn generate(truth: &Truth) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(truth.seed);
    let think =
        LogNormal::new(truth.think_median.as_secs_f64().ln(), truth.think_sigma).expect("valid");
    let origin = 1_700_000_000_000_000i64;
    let mut events = Vec::new();
    for (ti, (tenant, shapes)) in truth.tenants.iter().enumerate() {
        let mut sessions: Vec<&Vec<Step>> = shapes
            .iter()
            .flat_map(|(s, n)| std::iter::repeat_n(s, *n as usize))
            .collect();
        // Shuffle so that clients get a mix of shapes.
        for i in (1..sessions.len()).rev() {
            let j = rng.random_range(0..=i);
            sessions.swap(i, j);
        }
        let ids: Vec<u32> = Truth::product_ids(ti).collect();
        let orders: Vec<String> = (0..40).map(|k| uuid(&mut rng, ti, k)).collect();
        for (chunk_no, chunk) in sessions.chunks(4).enumerate() {
            // One client per four sessions: 10.<tenant>.<chunk>.
            let client = format!("10.{}.{}.{}", ti + 1, chunk_no / 250, chunk_no % 250 + 1);
            let agent = AGENTS[chunk_no % AGENTS.len()].to_string();
            let mut t = origin + rng.random_range(0..7_200_000_000i64);
            for (k, shape) in chunk.iter().enumerate() {
                let user = format!("user-{tenant}-{chunk_no}-{k}");
                for (si, (method, path)) in shape.iter().enumerate() {
                    let duration = Duration::from_millis(rng.random_range(20..80));
                    let id = ids[(rng.random::<f64>().powi(2) * ids.len() as f64) as usize];
                    let order = &orders[rng.random_range(0..orders.len())];
                    let path = path
                        .replace("{id}", &id.to_string())
                        .replace("{order}", order);
                    let body = match (*method, path.as_str()) {
                        ("POST", "/api/orders") => Some(format!(
                            r#"{{"product_id":{id},"quantity":{}}}"#,
                            rng.random_range(1..4)
                        )),
                        ("POST", "/api/login") => Some(format!(
                            r#"{{"email":"{user}@{tenant}.example","password":"pw-{user}"}}"#
                        )),
                        _ => None,
                    };
                    let status = if *method == "POST" { 201 } else { 200 };
                    events.push(Event {
                        time: Timestamp::from_micros(t),
                        tenant,
                        client: client.clone(),
                        user: user.clone(),
                        agent: agent.clone(),
                        method,
                        path,
                        status,
                        duration,
                        body,
                    });
                    t += duration.as_micros() as i64;
                    if si + 1 < shape.len() {
                        t += (think.sample(&mut rng) * 1e6) as i64;
                    }
                }
                // The next session of this client starts 60 to 120 minutes later.
                t += rng.random_range(3_600_000_000..7_200_000_000i64);
            }
        }
    }
    events.sort_by_key(|e| (e.time, e.client.clone()));
    events
}

fn uuid(rng: &mut SmallRng, tenant: usize, k: usize) -> String {
    let a: u32 = rng.random();
    let b: u16 = rng.random();
    format!(
        "{a:08x}-{b:04x}-4{tenant:03x}-8{k:03x}-{:012x}",
        rng.random::<u64>() & 0xffff_ffff_ffff
    )
}

fn clf_time(t: Timestamp) -> String {
    // The model's RFC 3339 formatter, rearranged into CLF.
    let iso = t.to_rfc3339();
    let (date, rest) = iso.split_at(10);
    let (y, m, d) = (&date[0..4], &date[5..7], &date[8..10]);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mon = MONTHS[m.parse::<usize>().expect("month") - 1];
    format!("{d}/{mon}/{y}:{} +0000", &rest[1..9])
}

/// nginx combined plus `$request_time`; the tenant is the second path
/// segment (`/t/acme/api/...`). As nginx does, the time written is when the
/// request ended.
pub fn access_log(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&format!(
            "{} - - [{}] \"{} /t/{}{} HTTP/1.1\" {} {} \"-\" \"{}\" {:.3}\n",
            e.client,
            clf_time(e.time.saturating_add(e.duration)),
            e.method,
            e.tenant,
            e.path,
            e.status,
            512,
            e.agent,
            e.duration.as_secs_f64()
        ));
    }
    out
}

/// A JWT (unsigned) with the given claims.
pub fn jwt(claims: &str) -> String {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b.encode(claims)
    )
}

/// A HAR as a proxy would record it: tenant in `X-Tenant-ID`, users told
/// apart by their bearer token's subject.
pub fn har(events: &[Event]) -> String {
    let entries: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let token = jwt(&format!(
                r#"{{"sub":"{}","org_id":"{}"}}"#,
                e.user, e.tenant
            ));
            let mut request = serde_json::json!({
                "method": e.method,
                "url": format!("https://api.example.com{}", e.path),
                "httpVersion": "HTTP/1.1",
                "headers": [
                    {"name": "X-Tenant-ID", "value": e.tenant},
                    {"name": "Authorization", "value": format!("Bearer {token}")},
                    {"name": "User-Agent", "value": e.agent},
                    {"name": "Accept", "value": "application/json"}
                ],
                "cookies": [], "queryString": [], "headersSize": -1, "bodySize": -1
            });
            if let Some(b) = &e.body {
                request["postData"] =
                    serde_json::json!({"mimeType": "application/json", "text": b});
            }
            let ms = e.duration.as_secs_f64() * 1000.0;
            serde_json::json!({
                "startedDateTime": e.time.to_rfc3339(),
                "time": ms,
                "request": request,
                "response": {
                    "status": e.status, "statusText": "", "httpVersion": "HTTP/1.1",
                    "headers": [], "cookies": [],
                    "content": {"size": 100, "mimeType": "application/json"},
                    "redirectURL": "", "headersSize": -1, "bodySize": 100
                },
                "cache": {},
                "timings": {"send": 0.1, "wait": ms - 0.2, "receive": 0.1}
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "log": {"version": "1.2", "creator": {"name": "synth", "version": "1"}, "entries": entries}
    }))
    .expect("serialises")
}

/// Known shape mix of a tenant as endpoint names (`GET /api/products`) →
/// share of its sessions.
pub fn shape_mix(truth: &Truth, tenant: &str, prefix: &str) -> BTreeMap<Vec<String>, f64> {
    let total = truth.sessions(tenant) as f64;
    let (_, shapes) = truth
        .tenants
        .iter()
        .find(|(t, _)| *t == tenant)
        .expect("tenant");
    shapes
        .iter()
        .map(|(steps, n)| {
            let names = steps
                .iter()
                .map(|(m, p)| {
                    let p = p.replace("{order}", "{uuid}");
                    format!("{m} {prefix}{p}")
                })
                .collect();
            (names, *n as f64 / total)
        })
        .collect()
}
