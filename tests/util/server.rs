//! A loopback HTTP server for replay tests (HTTP/1.1, and HTTP/2 with prior
//! knowledge): bound to 127.0.0.1:0, records
//! every request it receives, answers 200 (after a stall, when asked to).
//! With `auth`, it is also a login server: `POST /login` issues `tok-N`
//! (valid 15 minutes), every other request needs a bearer token, and at the
//! given offset every token issued so far is revoked (a key rotation).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Since the first request arrived.
    pub at: Duration,
    /// When it arrived, by the wall clock.
    pub wall: std::time::SystemTime,
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// How the server behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Requests arriving within this window (offsets from the first
    /// request) are held until the window ends: a stall.
    pub stall: Option<(Duration, Duration)>,
    /// Require tokens; revoke all issued before this offset when it comes.
    pub auth: Option<Duration>,
    /// Every answer takes this long: a slow server.
    pub delay: Option<Duration>,
    /// Serve HTTPS with a self-signed certificate made for the run
    /// (ALPN `h2` and `http/1.1`).
    pub tls: bool,
    /// With `tls`: choose no protocol by ALPN (servers that never learnt
    /// it); the connection still speaks HTTP/1.1 or HTTP/2.
    pub no_alpn: bool,
}

#[derive(Default)]
struct Shared {
    first: Option<Instant>,
    seen: Vec<Seen>,
    /// When each token was issued (token N at index N - 1).
    issued: Vec<Duration>,
    /// Requests answered 401.
    unauthorized: u64,
}

/// The running server; stops when dropped.
pub struct Recorder {
    pub addr: SocketAddr,
    tls: bool,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// A server that holds requests arriving between `from` and `to`
    /// (offsets from the first request) until `to`.
    pub fn stalling(from: Duration, to: Duration) -> Recorder {
        Recorder::start(Behaviour {
            stall: Some((from, to)),
            ..Behaviour::default()
        })
    }

    pub fn start(behaviour: Behaviour) -> Recorder {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("sends");
                let acceptor = behaviour.tls.then(|| self_signed(!behaviour.no_alpn));
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let s = s.clone();
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |req| handle(s.clone(), behaviour, req));
                            // HTTP/1.1, or HTTP/2 with prior knowledge or by ALPN.
                            let http = auto::Builder::new(TokioExecutor::new());
                            let _ = match acceptor {
                                Some(a) => match a.accept(stream).await {
                                    Ok(tls) => http.serve_connection(TokioIo::new(tls), svc).await,
                                    Err(_) => return,
                                },
                                None => http.serve_connection(TokioIo::new(stream), svc).await,
                            };
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stop_rx => {}
                }
            });
        });
        Recorder {
            addr: addr_rx.recv().expect("server started"),
            tls: behaviour.tls,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().expect("lock").seen.clone()
    }

    /// Tokens issued (logins answered).
    pub fn logins(&self) -> usize {
        self.shared.lock().expect("lock").issued.len()
    }

    pub fn unauthorized(&self) -> u64 {
        self.shared.lock().expect("lock").unauthorized
    }
}

/// A TLS acceptor with a certificate for localhost and 127.0.0.1, signed
/// by itself.
fn self_signed(alpn: bool) -> tokio_rustls::TlsAcceptor {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .expect("a server config");
    if alpn {
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn handle(
    shared: Arc<Mutex<Shared>>,
    behaviour: Behaviour,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let now = Instant::now();
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let login = parts.method == hyper::Method::POST && parts.uri.path() == "/login";
    let big = parts.uri.path() == "/big";
    let bearer = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer tok-"))
        .and_then(|n| n.parse::<usize>().ok());
    let (at, auth_answer) = {
        let mut s = shared.lock().expect("lock");
        let first = *s.first.get_or_insert(now);
        let at = now - first;
        let auth_answer = match behaviour.auth {
            Some(_) if login => {
                s.issued.push(at);
                Some((
                    200,
                    format!(
                        "{{\"token\": \"tok-{}\", \"expires_in\": 900}}",
                        s.issued.len()
                    ),
                ))
            }
            Some(revoke) => {
                let valid = bearer
                    .and_then(|n| s.issued.get(n.wrapping_sub(1)))
                    .is_some_and(|issued| at < revoke || *issued >= revoke);
                if valid {
                    None
                } else {
                    s.unauthorized += 1;
                    Some((401, "{\"error\": \"invalid token\"}".to_string()))
                }
            }
            None => None,
        };
        s.seen.push(Seen {
            at,
            wall: std::time::SystemTime::now(),
            method: parts.method.to_string(),
            version: format!("{:?}", parts.version),
            target: parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.to_string()),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        });
        (at, auth_answer)
    };
    if let Some((status, body)) = auth_answer {
        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).expect("a status");
        return Ok(r);
    }
    if let Some(d) = behaviour.delay {
        tokio::time::sleep(d).await;
    }
    if let Some((from, to)) = behaviour.stall
        && at >= from
        && at < to
    {
        tokio::time::sleep(to - at).await;
    }
    if big {
        // Two MiB of JSON, its end past what is kept for checks.
        let body = format!("{{\"pad\":\"{}\",\"end\":true}}", "x".repeat(2 << 20));
        return Ok(hyper::Response::new(Full::new(Bytes::from(body))));
    }
    Ok(hyper::Response::new(Full::new(Bytes::from_static(
        b"{\"ok\":true}",
    ))))
}
