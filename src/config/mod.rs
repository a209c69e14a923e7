//! What the user typed → what a command runs with.
//!
//! The CLI has parsed and validated each value; here they are combined into
//! the typed options each stage takes, in one place per command.

mod run;

use std::path::PathBuf;

pub(crate) use run::opt_duration;
pub use run::{RunConfig, RunFile, available_cpus, defaults};

use crate::capture::pcap::PcapOptions;
use crate::capture::{ReadOptions, Source};
use crate::cli::ImportArgs;
use crate::model::ModelOptions;
use crate::model::identity;

/// A usage mistake found after parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Everything `reprise import` needs.
#[derive(Debug)]
pub struct ImportConfig {
    pub sources: Vec<Source>,
    pub output: PathBuf,
    pub read: ReadOptions,
    pub model: ModelOptions,
    pub quiet: bool,
}

impl ImportConfig {
    pub fn from_args(a: ImportArgs) -> Result<ImportConfig, UsageError> {
        let sources: Vec<Source> = a.inputs.iter().map(|s| Source::parse(s)).collect();
        if sources.iter().filter(|s| **s == Source::Stdin).count() > 1 {
            return Err(UsageError(
                "standard input (`-`) can be read only once".into(),
            ));
        }
        if a.log_format.is_some()
            && a.format
                .is_some_and(|f| f != crate::capture::Format::LogFormat)
        {
            return Err(UsageError("--log-format describes an access log; it cannot go with --format other than log-format".into()));
        }
        for (flag, n) in [
            ("--max-endpoints", a.max_endpoints),
            ("--max-pool-values", a.max_pool_values),
            ("--max-shapes", a.max_shapes),
        ] {
            if n == 0 {
                return Err(UsageError(format!("{flag} must be at least 1")));
            }
        }
        if a.max_buffered_bytes < a.max_flow_bytes {
            return Err(UsageError(format!(
                "--max-buffered-bytes ({}) is less than --max-flow-bytes ({}): one connection could not use what it is allowed",
                a.max_buffered_bytes, a.max_flow_bytes
            )));
        }
        if a.session_gap.is_zero() {
            return Err(UsageError("--session-gap must be longer than zero".into()));
        }
        let mut session_rules = a.session_keys;
        if session_rules.is_empty() {
            session_rules = identity::default_session_rules();
        }
        Ok(ImportConfig {
            sources,
            output: a.output,
            read: ReadOptions {
                format: a.format,
                log_format: a.log_format,
                json_fields: a.json_fields,
                pcap: PcapOptions {
                    ports: a.ports,
                    max_flow_bytes: a.max_flow_bytes,
                    max_buffered_bytes: a.max_buffered_bytes,
                },
            },
            model: ModelOptions {
                tenant_rules_automatic: a.tenants.is_empty(),
                tenant_rules: a.tenants,
                session_rules,
                session_gap: a.session_gap,
                keep_assets: a.keep_assets,
                slot_rules: a.slots,
                keep_headers: a.keep_headers,
                include: a.include,
                exclude: a.exclude,
                methods: a
                    .methods
                    .iter()
                    .map(|m| m.trim().to_ascii_uppercase())
                    .filter(|m| !m.is_empty())
                    .collect(),
                max_endpoints: a.max_endpoints,
                max_pool_values: a.max_pool_values,
                max_shapes: a.max_shapes,
                ..ModelOptions::default()
            },
            quiet: a.quiet,
        })
    }
}
