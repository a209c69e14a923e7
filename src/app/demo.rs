//! `reprise demo-target` and `reprise demo`: the built-in target alone, and
//! the whole product in one command against it.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use std::path::Path;

use super::replay::{describe, execute, finish, judge};
use super::{build_model, exit, runtime};
use crate::auth::{Auth, AuthConfig, AuthFile, HttpLogin};
use crate::capture::{Input, ReadOptions};
use crate::check::Checks;
use crate::cli::{DemoArgs, DemoTargetArgs};
use crate::config::{UsageError, available_cpus, defaults};
use crate::demo::{DemoTarget, TargetConfig};
use crate::http::{ClientOptions, Target};
use crate::metrics::RunMeta;
use crate::model::ModelOptions;
use crate::plan::{Mode, Placement, Plan, PlanConfig, Profile, Stage, Unit};
use crate::replay::{Interrupts, ReplayOptions, Shutdown};

/// The capture the demo replays: mitmproxy's HAR of traffic to the demo target
/// (captures/README.md says how it was recorded).
const CAPTURE: &[u8] = include_bytes!("../../captures/demo-shop.har.gz");
const CAPTURE_NAME: &str = "captures/demo-shop.har.gz";

/// The demo target's pool: small, so the spike goes past its capacity.
const DEMO_WORKERS: usize = 1;
const DEMO_QUEUE: usize = 32;
const DEMO_TOKEN_TTL: Duration = Duration::from_secs(10);

/// How the demo logs in: five test shoppers, each able to shop at any
/// tenant, through the demo target's JSON login (docs/auth.md explains each
/// key). The recorded logins in the capture carry redacted passwords; the
/// token manager logs in instead.
fn demo_auth() -> String {
    format!(
        r#"kind = "json_login"
url = "/api/login"
body = '{{"email": "{{username}}", "password": "{{password}}"}}'
login_headers = {{ "x-tenant-id" = "{{tenant}}" }}
password = "{password}"
users = [
  {{ username = "shopper1@demo.test" }},
  {{ username = "shopper2@demo.test" }},
  {{ username = "shopper3@demo.test" }},
  {{ username = "shopper4@demo.test" }},
  {{ username = "shopper5@demo.test" }},
]
"#,
        password = crate::demo::target::DEFAULT_PASSWORD
    )
}

pub fn demo_target(a: DemoTargetArgs) -> Result<u8> {
    if a.workers == 0 || !(a.service_scale.is_finite() && a.service_scale >= 0.0) {
        return Err(UsageError(
            "--workers must be at least 1 and --service-scale a non-negative number".into(),
        )
        .into());
    }
    let cfg = TargetConfig {
        workers: a.workers,
        queue: a.queue,
        service_scale: a.service_scale,
        token_ttl: a.token_ttl,
        require_auth: a.require_auth,
        password: a.password,
    };
    runtime()?.block_on(async {
        let target = DemoTarget::start(a.listen, cfg)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        println!("demo target listening on {}", target.url());
        let _ = std::io::stdout().flush();
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        target.stop().await;
        Ok(exit::OK)
    })
}

/// The demo's load profile over `d`, in sessions per second: a ramp to a
/// baseline the target handles, a spike to four times it (past the target's
/// capacity), and back to the baseline to watch it recover.
pub fn demo_profile(d: Duration) -> Profile {
    let part = |f: f64| d.mul_f64(f);
    let stage = |f: f64, target: f64| Stage {
        duration: part(f),
        target,
    };
    Profile {
        unit: Unit::SessionsPerSec,
        start: 0.0,
        stages: vec![
            stage(0.2, 15.0),
            stage(0.25, 15.0),
            stage(0.05, 60.0),
            stage(0.15, 60.0),
            stage(0.05, 15.0),
            stage(0.3, 15.0),
        ],
    }
}

pub fn demo(a: DemoArgs, interrupts: &Interrupts) -> Result<u8> {
    if a.duration < Duration::from_secs(5) {
        return Err(UsageError("--duration: the demo needs at least 5s".into()).into());
    }
    let outputs = super::replay::Outputs {
        dir: a.out.clone(),
        ..Default::default()
    };
    outputs.check()?;
    let rt = runtime()?;
    let target = rt
        .block_on(DemoTarget::start(
            ([127, 0, 0, 1], 0).into(),
            TargetConfig {
                workers: DEMO_WORKERS,
                queue: DEMO_QUEUE,
                // Business requests need a token, and tokens live a third
                // of the run: the summary shows logins and refreshes.
                require_auth: true,
                token_ttl: DEMO_TOKEN_TTL,
                ..TargetConfig::default()
            },
        ))
        .context("starting the demo target on 127.0.0.1")?;
    let url = target.url();
    crate::say!(
        "reprise demo: the demo target (a small multi-tenant shop API, {DEMO_WORKERS} workers) listens on {url}"
    );
    crate::say!("reprise demo: importing the bundled capture {CAPTURE_NAME}");
    let input = Input::from_bytes(CAPTURE_NAME, CAPTURE.to_vec())?;
    let model_opts = ModelOptions {
        tenant_rules_automatic: true,
        ..ModelOptions::default()
    };
    let model = build_model(vec![input], &ReadOptions::default(), model_opts, false)?;
    let checks = Arc::new(Checks::new(&model, &[], true)?);
    let plan_cfg = PlanConfig {
        mode: Mode::Stages(demo_profile(a.duration)),
        ..PlanConfig::default()
    };
    let profile = describe(&plan_cfg);
    let plan = Arc::new(Plan::new(Arc::new(model), plan_cfg)?);
    let planned_sessions = plan.planned_per_second();
    let stages = plan.stage_starts();
    crate::say!(
        "reprise demo: replaying it for {}: {profile} — the target's pool saturates in the spike and recovers after",
        crate::output::human_duration(plan.length())
    );
    // The demo target tells tenants apart by the X-Tenant-ID header.
    let opts = ReplayOptions {
        target: Target::parse(&url)?,
        placement: Placement {
            tenant_header: Some("x-tenant-id".into()),
            headers: Vec::new(),
        },
        client: ClientOptions {
            timeout: defaults::TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            http2: false,
            tls: None,
        },
        workers: available_cpus(),
        max_inflight: defaults::MAX_INFLIGHT,
        max_sessions: defaults::MAX_SESSIONS,
        late_after: defaults::LATE_AFTER,
        grace: Duration::from_secs(5),
        checks: checks.clone(),
    };
    let meta = RunMeta {
        version: env!("CARGO_PKG_VERSION").to_string(),
        command: "reprise demo".into(),
        model: CAPTURE_NAME.into(),
        target: url,
        profile,
        seed: 1,
        ..RunMeta::default()
    };
    let shutdown = Shutdown::new();
    let auth_file: AuthFile = toml::from_str(&demo_auth()).context("the demo's [auth]")?;
    let auth = Auth::new(
        AuthConfig::resolve(auth_file, Path::new("."))?,
        &plan,
        opts.target.clone(),
        Arc::new(HttpLogin {
            tls: None,
            timeout: defaults::TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
        }),
        shutdown.clone(),
    )?;
    // The demo target's own metrics beside latency: its pool and queue.
    let watching = crate::watch::WatchRun::start(
        &crate::watch::WatchOptions {
            targets: vec![
                format!("demo-target={}/metrics", meta.target)
                    .parse()
                    .map_err(anyhow::Error::msg)?,
            ],
            metrics: vec![
                "demo_pool_in_use".into(),
                "demo_queue_length".into(),
                "demo_logins_total".into(),
            ],
            every: Duration::from_millis(500),
        },
        std::time::Instant::now() + Duration::from_millis(50),
    );
    let results = execute(
        plan,
        opts,
        Some(Arc::new(auth)),
        (shutdown, None, None),
        meta,
        interrupts,
        false,
    );
    let mut results = results;
    results.check_names = checks.names.clone();
    results.watch = watching.finish();
    results.planned_sessions = planned_sessions;
    results.stages = stages;
    judge(&mut results, &[], None);
    rt.block_on(target.stop());
    finish(&results, &outputs, false)
}
