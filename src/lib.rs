//! reprise: recorded traffic → a model of real usage → replayed against
//! staging.
//!
//! The pipeline, one module per stage, dependencies pointing one way:
//!
//! - [`capture`]: readers (HAR, access logs) turn inputs into `Exchange`s.
//! - [`model`]: the pivot types, and the modeller that builds a `Model` from
//!   exchanges (tenants, sessions, templated endpoints, value pools).
//! - [`inspect`]: a human (or JSON) summary of a model.
//! - [`demo`]: the built-in multi-tenant target to replay against.
//! - [`cli`], [`config`], [`app`]: flags → typed options → the stages wired
//!   for each command. Only `app` uses `anyhow`; the core never sees clap.

/// `eprintln!` that does not panic when stderr is gone (`reprise import
/// … 2>&1 | head -1` closed it: the import died with exit 101 when it
/// printed its summary). A message nobody can read is dropped.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

pub mod app;
pub mod auth;
pub mod background;
pub mod capture;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod drill;
pub mod http;
pub mod inspect;
pub mod live;
pub mod metrics;
pub mod model;
pub mod output;
pub mod plan;
pub mod replay;
pub mod report;
pub mod threshold;
pub mod watch;
