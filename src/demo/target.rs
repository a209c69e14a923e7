//! A small multi-tenant shop API with a deliberately limited worker pool.
//!
//! Tenants (`acme`, `globex`, `initech`, `umbrella`) are told apart by the
//! `X-Tenant-ID` header, the first label of the host, or the token's tenant
//! claim. `POST /api/login` issues expiring HS256 tokens. Business requests
//! take a worker from a fixed pool for a simulated service time; when all
//! workers are busy they queue, and past the queue bound they are refused
//! with 503 — so latency rises and errors appear past capacity, and the
//! target recovers when the load drops. `/metrics` exposes the pool in
//! Prometheus text format.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

type Hmac256 = hmac::Hmac<sha2::Sha256>;

/// The demo target's tenants.
pub const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
/// Products per tenant; ids are `(tenant index + 1) * 1000 + n`.
pub const PRODUCTS: u32 = 500;
/// Password every demo user logs in with unless configured otherwise.
pub const DEFAULT_PASSWORD: &str = "demo-password";

/// How the demo target behaves.
#[derive(Clone, Debug)]
pub struct TargetConfig {
    /// Requests served at once.
    pub workers: usize,
    /// Requests waiting for a worker before further ones get 503.
    pub queue: usize,
    /// Multiplies every simulated service time.
    pub service_scale: f64,
    pub token_ttl: Duration,
    /// Refuse business requests without a valid token (401).
    pub require_auth: bool,
    pub password: String,
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            workers: 32,
            queue: 256,
            service_scale: 1.0,
            token_ttl: Duration::from_secs(900),
            require_auth: false,
            password: DEFAULT_PASSWORD.into(),
        }
    }
}

/// Counters the target keeps about itself (tests read them directly).
#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub logins: AtomicU64,
    pub refused: AtomicU64,
    pub unauthorized: AtomicU64,
    pub in_use: AtomicUsize,
    pub waiting: AtomicUsize,
    by_route: Mutex<HashMap<(&'static str, u16), u64>>,
}

impl Stats {
    /// Requests per (route, status).
    pub fn by_route(&self) -> HashMap<(&'static str, u16), u64> {
        self.by_route.lock().expect("stats lock").clone()
    }
}

struct State {
    cfg: TargetConfig,
    key: [u8; 32],
    pool: Semaphore,
    stats: Arc<Stats>,
    orders: Mutex<HashMap<String, VecDeque<Value>>>,
}

/// A running demo target.
pub struct DemoTarget {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl DemoTarget {
    /// Binds `addr` (port 0 for any) and serves on the current runtime.
    pub async fn start(addr: SocketAddr, cfg: TargetConfig) -> std::io::Result<DemoTarget> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = (addr.port() as usize * 31 + i * 7) as u8;
        }
        let state = Arc::new(State {
            pool: Semaphore::new(cfg.workers.max(1)),
            cfg,
            key,
            stats: stats.clone(),
            orders: Mutex::new(HashMap::new()),
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, state, cancel.clone()));
        Ok(DemoTarget {
            addr,
            stats,
            cancel,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => {
                    // Out of file descriptors and the like: back off, go on.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = conn.serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

type Resp = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Value) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Resp {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (route, resp) = route(&state, req).await;
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
        state.stats.refused.fetch_add(1, Ordering::Relaxed);
    }
    if resp.status() == StatusCode::UNAUTHORIZED {
        state.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
    }
    *state
        .stats
        .by_route
        .lock()
        .expect("stats lock")
        .entry((route, resp.status().as_u16()))
        .or_default() += 1;
    resp
}

async fn route(state: &State, req: Request<Incoming>) -> (&'static str, Resp) {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match (&method, segs.as_slice()) {
        (&Method::GET, ["health"]) => ("health", reply(StatusCode::OK, json!({"status": "ok"}))),
        (&Method::GET, ["metrics"]) => ("metrics", metrics(state)),
        (_, ["api", ..]) => api(state, req, &method, &segs[1..]).await,
        _ => (
            "other",
            reply(StatusCode::NOT_FOUND, json!({"error": "no such route"})),
        ),
    }
}

/// Base service time of each route, before jitter and scaling.
fn service_time(route: &str) -> Duration {
    Duration::from_millis(match route {
        "login" => 20,
        "products_list" | "orders_list" => 8,
        "orders_create" => 12,
        _ => 3,
    })
}

async fn api(
    state: &State,
    req: Request<Incoming>,
    method: &Method,
    segs: &[&str],
) -> (&'static str, Resp) {
    let route: &'static str = match (method, segs) {
        (&Method::POST, ["login"]) => "login",
        (&Method::GET, ["products"]) => "products_list",
        (&Method::GET, ["products", _]) => "products_get",
        (&Method::GET, ["orders"]) => "orders_list",
        (&Method::POST, ["orders"]) => "orders_create",
        (&Method::GET, ["orders", _]) => "orders_get",
        (&Method::GET, ["me"]) => "me",
        _ => {
            return (
                "other",
                reply(StatusCode::NOT_FOUND, json!({"error": "no such route"})),
            );
        }
    };
    // The pool: wait for a worker, unless too many already wait.
    if state.stats.waiting.fetch_add(1, Ordering::AcqRel) >= state.cfg.queue {
        state.stats.waiting.fetch_sub(1, Ordering::AcqRel);
        return (
            route,
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "overloaded"}),
            ),
        );
    }
    let permit = state.pool.acquire().await.expect("pool never closed");
    state.stats.waiting.fetch_sub(1, Ordering::AcqRel);
    state.stats.in_use.fetch_add(1, Ordering::AcqRel);
    let jitter = 0.7 + 0.6 * pseudo_random();
    tokio::time::sleep(service_time(route).mul_f64(jitter * state.cfg.service_scale)).await;
    let resp = serve_route(state, req, route, segs).await;
    state.stats.in_use.fetch_sub(1, Ordering::AcqRel);
    drop(permit);
    (route, resp)
}

async fn serve_route(
    state: &State,
    req: Request<Incoming>,
    route: &'static str,
    segs: &[&str],
) -> Resp {
    let tenant_hint = tenant_of(&req);
    let claims = bearer(&req).map(|t| verify(&state.key, t));
    let claims = match claims {
        Some(Ok(c)) => Some(c),
        Some(Err(why)) => return reply(StatusCode::UNAUTHORIZED, json!({"error": why})),
        None if state.cfg.require_auth && route != "login" => {
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing bearer token"}),
            );
        }
        None => None,
    };
    let tenant = tenant_hint.or_else(|| {
        claims
            .as_ref()
            .and_then(|c| c["tenant"].as_str().map(str::to_string))
    });
    let Some(tenant) = tenant.filter(|t| TENANTS.contains(&t.as_str())) else {
        return reply(StatusCode::NOT_FOUND, json!({"error": "unknown tenant"}));
    };
    let t_index = TENANTS.iter().position(|t| *t == tenant).expect("known") as u32;
    let query = req.uri().query().unwrap_or("").to_string();
    match route {
        "login" => login(state, req, &tenant).await,
        "products_list" => list(
            &query,
            |i| product(t_index, (t_index + 1) * 1000 + i),
            PRODUCTS,
        ),
        "products_get" => match segs[1].parse::<u32>() {
            Ok(id) if (id / 1000) == t_index + 1 && id % 1000 < PRODUCTS => {
                reply(StatusCode::OK, product(t_index, id))
            }
            _ => reply(StatusCode::NOT_FOUND, json!({"error": "no such product"})),
        },
        "orders_list" => {
            let orders = state.orders.lock().expect("orders lock");
            let mine: Vec<Value> = orders
                .get(&tenant)
                .map(|o| o.iter().rev().take(20).cloned().collect())
                .unwrap_or_default();
            reply(StatusCode::OK, json!({"items": mine}))
        }
        "orders_create" => create_order(state, req, &tenant, t_index).await,
        "orders_get" => {
            let orders = state.orders.lock().expect("orders lock");
            let found = orders
                .get(&tenant)
                .and_then(|o| o.iter().find(|x| x["id"] == segs[1]).cloned());
            match found {
                Some(o) => reply(StatusCode::OK, o),
                // Orders placed before this process started (the bundled
                // captures' ids, say) live in the archive.
                None if uuid::Uuid::parse_str(segs[1]).is_ok() => {
                    reply(StatusCode::OK, json!({"id": segs[1], "status": "archived"}))
                }
                None => reply(StatusCode::NOT_FOUND, json!({"error": "no such order"})),
            }
        }
        "me" => match claims {
            Some(c) => reply(StatusCode::OK, json!({"user": c["sub"], "tenant": tenant})),
            None => reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing bearer token"}),
            ),
        },
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "no such route"})),
    }
}

fn product(t_index: u32, id: u32) -> Value {
    json!({"id": id, "name": format!("{} item {}", TENANTS[t_index as usize], id % 1000), "price_cents": 100 + (id * 37) % 9000})
}

fn list(query: &str, item: impl Fn(u32) -> Value, total: u32) -> Resp {
    let param = |k: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(n, _)| *n == k)
            .and_then(|(_, v)| v.parse::<u32>().ok())
    };
    let per_page = param("per_page").unwrap_or(20).clamp(1, 100);
    let page = param("page").unwrap_or(1).max(1);
    let start = (page - 1).saturating_mul(per_page);
    let items: Vec<Value> = (start..total.min(start.saturating_add(per_page)))
        .map(item)
        .collect();
    reply(
        StatusCode::OK,
        json!({"page": page, "per_page": per_page, "total": total, "items": items}),
    )
}

async fn json_body(req: Request<Incoming>) -> Option<Value> {
    let body = Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .ok()?
        .to_bytes();
    serde_json::from_slice(&body).ok()
}

async fn login(state: &State, req: Request<Incoming>, tenant: &str) -> Resp {
    state.stats.logins.fetch_add(1, Ordering::Relaxed);
    let Some(body) = json_body(req).await else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "expected a JSON body"}),
        );
    };
    let email = body["email"].as_str().unwrap_or("");
    if email.is_empty() || body["password"].as_str() != Some(state.cfg.password.as_str()) {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid credentials"}),
        );
    }
    let ttl = state.cfg.token_ttl;
    let token = issue(&state.key, email, tenant, ttl);
    reply(
        StatusCode::OK,
        json!({"token": token, "token_type": "Bearer", "expires_in": ttl.as_secs_f64()}),
    )
}

async fn create_order(state: &State, req: Request<Incoming>, tenant: &str, t_index: u32) -> Resp {
    let Some(body) = json_body(req).await else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "expected a JSON body"}),
        );
    };
    let product_id = body["product_id"].as_u64().unwrap_or(0) as u32;
    if product_id / 1000 != t_index + 1 || product_id % 1000 >= PRODUCTS {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "no such product for this tenant"}),
        );
    }
    let order = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "product_id": product_id,
        "quantity": body["quantity"].as_u64().unwrap_or(1),
        "status": "placed"
    });
    let mut orders = state.orders.lock().expect("orders lock");
    let list = orders.entry(tenant.to_string()).or_default();
    if list.len() >= 10_000 {
        list.pop_front();
    }
    list.push_back(order.clone());
    reply(StatusCode::CREATED, order)
}

fn metrics(state: &State) -> Resp {
    let s = &state.stats;
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    };
    gauge(
        &mut out,
        "demo_pool_size",
        "Workers in the pool.",
        state.cfg.workers as u64,
    );
    gauge(
        &mut out,
        "demo_pool_in_use",
        "Workers serving a request.",
        s.in_use.load(Ordering::Relaxed) as u64,
    );
    gauge(
        &mut out,
        "demo_queue_length",
        "Requests waiting for a worker.",
        s.waiting.load(Ordering::Relaxed) as u64,
    );
    out.push_str("# HELP demo_requests_total Requests served, by route and status.\n# TYPE demo_requests_total counter\n");
    let mut routes: Vec<_> = s.by_route().into_iter().collect();
    routes.sort();
    for ((route, status), n) in routes {
        out.push_str(&format!(
            "demo_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP demo_logins_total Logins.\n# TYPE demo_logins_total counter\ndemo_logins_total {}\n",
        s.logins.load(Ordering::Relaxed)
    ));
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4")
        .body(Full::new(Bytes::from(out)))
        .expect("valid response")
}

fn tenant_of(req: &Request<Incoming>) -> Option<String> {
    if let Some(t) = req
        .headers()
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok())
    {
        return Some(t.to_string());
    }
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host())?;
    let first = host.split('.').next()?;
    TENANTS.contains(&first).then(|| first.to_string())
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn sign(key: &[u8], data: &str) -> String {
    let mut mac = Hmac256::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// An HS256 JWT for `sub` in `tenant`, valid for `ttl`.
fn issue(key: &[u8], sub: &str, tenant: &str, ttl: Duration) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = now_secs();
    let header = b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"sub": sub, "tenant": tenant, "org_id": tenant, "iat": now.floor(), "exp": now + ttl.as_secs_f64()});
    let payload = b64.encode(claims.to_string());
    let signing = format!("{header}.{payload}");
    let sig = sign(key, &signing);
    format!("{signing}.{sig}")
}

fn verify(key: &[u8], token: &str) -> Result<Value, &'static str> {
    let mut parts = token.rsplitn(2, '.');
    let (sig, signing) = (
        parts.next().unwrap_or(""),
        parts.next().ok_or("malformed token")?,
    );
    if sign(key, signing) != sig {
        return Err("bad token signature");
    }
    let payload = signing.split('.').nth(1).ok_or("malformed token")?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| "malformed token")?;
    let claims: Value = serde_json::from_slice(&raw).map_err(|_| "malformed token")?;
    if claims["exp"].as_f64().unwrap_or(0.0) <= now_secs() {
        return Err("token expired");
    }
    Ok(claims)
}

/// A cheap, thread-local jitter source (quality does not matter here).
fn pseudo_random() -> f64 {
    use std::cell::Cell;
    thread_local!(static S: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) });
    S.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}
