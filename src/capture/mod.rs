//! Readers: recorded traffic in, [`Exchange`] records out.
//!
//! Every capture format (HAR, the access-log family, later pcap) ends here as
//! the same `Exchange`: one request with what is known of its response. The
//! modeller never learns which format an exchange came from, so a new format is
//! one new reader and nothing else.
//!
//! Inputs are streamed: each input is read on its own thread into bounded
//! batches, and [`Merged`] interleaves the inputs by time, so several logs of
//! one fleet merge into one timeline without being loaded into memory.

pub mod access_log;
mod detect;
pub mod har;
mod input;
mod merge;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use detect::detect;
pub use input::{Input, open};
pub use merge::{Merged, spawn};

use crate::model::Timestamp;

/// One recorded request and what is known of its response.
///
/// Fields a format does not carry are `None` or empty; header names are
/// lower-case. Credentials (Authorization, Cookie, API keys) travel in
/// `headers` and `body` as recorded: the modeller uses them for tenant and
/// session identity and redacts them; they never leave it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exchange {
    /// When the request started (or, for logs that only record completion,
    /// when it was logged).
    pub time: Timestamp,
    pub method: String,
    pub scheme: Option<String>,
    pub host: Option<String>,
    /// The path as recorded (percent-encoded), starting with `/`.
    pub path: String,
    /// The query string without `?`.
    pub query: Option<String>,
    /// The client address as logged (no port), the originating one when a
    /// proxy chain was recorded.
    pub client: Option<String>,
    /// The authenticated user name a log recorded (`%u`, `cs-username`).
    pub user: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    pub status: Option<u16>,
    /// Total time to serve the request, where recorded.
    pub duration: Option<Duration>,
    /// Time to first byte of the response, where recorded.
    pub ttfb: Option<Duration>,
    pub response_bytes: Option<u64>,
    /// The response's media type, where recorded.
    pub response_type: Option<String>,
}

impl Exchange {
    /// The first value of a header (name in lower case).
    pub fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == lower_name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request body as recorded.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// Textual body (JSON, XML, plain text) with its media type.
    Text { mime: String, text: String },
    /// Form fields (urlencoded or multipart) as a HAR `params` list.
    Params { mime: String, params: Vec<Param> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub value: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
}

/// The capture formats reprise reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Format {
    /// HTTP Archive 1.1/1.2 (browsers, proxies, Playwright, mitmproxy).
    Har,
    /// Common / Combined Log Format and their nginx/Apache variants (vhost
    /// prefix, X-Forwarded-For lists, trailing timing fields).
    Clf,
    /// A user-given nginx `log_format` (or Apache `LogFormat`) string.
    LogFormat,
    /// AWS Application Load Balancer access logs.
    Alb,
    /// AWS Classic Load Balancer access logs.
    Elb,
    /// Amazon CloudFront standard logs (with or without `#Fields`).
    Cloudfront,
    /// W3C extended log format (IIS and others), fields from `#Fields`.
    W3c,
    /// JSON lines: Caddy, Traefik, Envoy, or a `--json-fields` mapping.
    Json,
    /// pcap / pcapng packet captures.
    Pcap,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Har => "har",
            Format::Clf => "clf",
            Format::LogFormat => "log-format",
            Format::Alb => "alb",
            Format::Elb => "elb",
            Format::Cloudfront => "cloudfront",
            Format::W3c => "w3c",
            Format::Json => "json",
            Format::Pcap => "pcap",
        }
    }
}

/// Reader options that some formats need.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// A compiled `--log-format`.
    pub log_format: Option<access_log::LogFormat>,
    /// A `--json-fields` mapping for JSON lines.
    pub json_fields: Option<access_log::json::FieldMap>,
}

/// What reading one input produced, for the import report and the model's
/// `sources` section.
#[derive(Clone, Debug, Default)]
pub struct InputStats {
    pub name: String,
    pub format: Option<Format>,
    /// Lines or entries seen (blank lines and comment/directive lines aside).
    pub records: u64,
    /// What a record is called when pointing at one: "line" or "entry".
    pub place: &'static str,
    pub accepted: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    /// The first few skips as (line or entry number, reason).
    pub first_skips: Vec<(u64, &'static str)>,
    pub warnings: Vec<String>,
    /// First and last request time read.
    pub span: Option<(Timestamp, Timestamp)>,
}

/// How many skipped records are shown by location.
pub const SHOWN_SKIPS: usize = 5;

impl InputStats {
    pub fn new(name: &str) -> Self {
        InputStats {
            name: name.to_string(),
            place: "line",
            ..Default::default()
        }
    }

    /// `file:12` for lines, `file entry 12` for entries.
    pub fn location(&self, n: u64) -> String {
        if self.place == "line" {
            format!("{}:{n}", self.name)
        } else {
            format!("{} {} {n}", self.name, self.place)
        }
    }

    pub fn skip(&mut self, place: u64, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
        if self.first_skips.len() < SHOWN_SKIPS {
            self.first_skips.push((place, reason));
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// `reason: count, ...` sorted by count.
    pub fn skip_summary(&self) -> String {
        let mut v: Vec<_> = self.skipped.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: nothing usable in {records} records ({summary}){first}")]
    NothingUsable {
        path: String,
        records: u64,
        summary: String,
        first: String,
    },
    #[error(
        "{path}: cannot tell what format this is (first bytes: {head:?}); name it with --format"
    )]
    UnknownFormat { path: String, head: String },
    #[error("reading {path} stopped unexpectedly: {message}")]
    Internal { path: String, message: String },
}

impl CaptureError {
    /// Bad input is the user's to fix (exit 2); the rest is ours (exit 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, CaptureError::Internal { .. })
    }
}

/// Where an input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn parse(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    pub fn display(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// Reads one opened input to the end, handing each exchange to `emit`.
pub fn read(
    input: Input,
    opts: &ReadOptions,
    stats: &mut InputStats,
    emit: &mut dyn FnMut(Exchange),
) -> Result<(), CaptureError> {
    let format = match opts.format {
        Some(f) => f,
        None if opts.log_format.is_some() => Format::LogFormat,
        None => detect(&input.head).ok_or_else(|| CaptureError::UnknownFormat {
            path: input.name.clone(),
            head: String::from_utf8_lossy(&input.head[..input.head.len().min(40)]).into_owned(),
        })?,
    };
    stats.format = Some(format);
    let path = input.name.clone();
    let mut reader = input.into_reader();
    match format {
        Format::Har => har::read(&path, &mut reader, stats, emit),
        Format::Pcap => Err(CaptureError::Invalid {
            path: path.clone(),
            message: "pcap/pcapng captures are not supported yet".into(),
        }),
        _ => access_log::read(format, opts, &path, &mut reader, stats, emit),
    }?;
    if stats.accepted == 0 {
        let first = stats
            .first_skips
            .first()
            .map(|(n, r)| format!("; first at {}: {r}", stats.location(*n)))
            .unwrap_or_default();
        return Err(CaptureError::NothingUsable {
            path,
            records: stats.records,
            summary: if stats.records == 0 {
                "empty".to_string()
            } else {
                stats.skip_summary()
            },
            first,
        });
    }
    Ok(())
}
