//! A loopback HTTP/1.1 server that answers every request after exactly the
//! same delay, for the latency-accuracy benchmark (benches/replay.sh): what
//! a load generator reports against it should be that delay.
//!
//! `cargo run --release --example fixed_delay -- [DELAY_MS] [ADDR]` prints
//! its address, then serves until killed. The delay is waited for with
//! reprise's precise (timerfd) clock, not tokio's millisecond timers, and
//! timed from when the request's head was read.

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reprise::replay::{Clock, PreciseClock};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let delay_ms: f64 = args
        .next()
        .map_or(Ok(20.0), |a| a.parse())
        .map_err(std::io::Error::other)?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let delay = Duration::from_secs_f64(delay_ms / 1000.0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let clock = PreciseClock::new()?;
        let listener = TcpListener::bind(&addr).await?;
        println!("http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let clock = clock.clone();
            tokio::task::spawn_local(async move {
                let svc = service_fn(move |_req| {
                    let clock = clock.clone();
                    async move {
                        let due = clock.now() + delay;
                        clock.sleep_until(due).await;
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"ok",
                        ))))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
