//! Readers: recorded traffic in, [`Exchange`] records out.
//!
//! Every capture format (HAR, the access-log family, pcap) ends here as
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
mod parallel;
pub mod pcap;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use detect::detect;
pub use input::{Input, ReadProgress, open};
pub use merge::{Item, Merged, Refill, Stream, spawn};

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
    /// Allocations kept for reuse by [`Exchange::reset`].
    #[doc(hidden)]
    pub spare: Spare,
}

/// Strings an exchange held before it was reset, kept to be filled again:
/// the import loop reuses exchanges instead of allocating per line.
#[derive(Default)]
pub struct Spare {
    strings: Vec<String>,
    headers: Vec<(String, String)>,
}

impl Clone for Spare {
    fn clone(&self) -> Spare {
        Spare::default()
    }
}

impl PartialEq for Spare {
    fn eq(&self, _: &Spare) -> bool {
        true
    }
}

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spare")
    }
}

fn keep(slot: &mut Option<String>, spare: &mut Vec<String>) {
    if let Some(mut s) = slot.take() {
        s.clear();
        spare.push(s);
    }
}

fn fill(slot: &mut Option<String>, spare: &mut Vec<String>, v: &str) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(v);
        }
        None => {
            let mut s = spare.pop().unwrap_or_default();
            s.push_str(v);
            *slot = Some(s);
        }
    }
}

impl Exchange {
    /// The first value of a header (name in lower case).
    pub fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == lower_name)
            .map(|(_, v)| v.as_str())
    }

    /// Empties the exchange, keeping its allocations for the next fill.
    pub fn reset(&mut self) {
        let sp = &mut self.spare;
        for slot in [
            &mut self.scheme,
            &mut self.host,
            &mut self.query,
            &mut self.client,
            &mut self.user,
            &mut self.response_type,
        ] {
            keep(slot, &mut sp.strings);
        }
        self.method.clear();
        self.path.clear();
        // Cleared in place, then moved as a block: moving each pair through
        // the stack after clearing it stalled on store forwarding.
        for (n, v) in &mut self.headers {
            n.clear();
            v.clear();
        }
        sp.headers.append(&mut self.headers);
        self.time = Timestamp::default();
        self.body = None;
        self.status = None;
        self.duration = None;
        self.ttfb = None;
        self.response_bytes = None;
    }

    /// Adds a header (`name` in lower case), reusing spare strings.
    pub fn push_header(&mut self, name: &str, value: &str) {
        // Moved first and filled in place: filling the pair on the stack
        // and then moving it stalled on store forwarding (2% of an
        // import's cycles).
        let pair = self.spare.headers.pop().unwrap_or_default();
        self.headers.push(pair);
        if let Some((n, v)) = self.headers.last_mut() {
            n.push_str(name);
            v.push_str(value);
        }
    }

    pub fn set_scheme(&mut self, v: &str) {
        fill(&mut self.scheme, &mut self.spare.strings, v);
    }

    pub fn set_host(&mut self, v: &str) {
        fill(&mut self.host, &mut self.spare.strings, v);
    }

    pub fn set_query(&mut self, v: &str) {
        fill(&mut self.query, &mut self.spare.strings, v);
    }

    pub fn set_client(&mut self, v: &str) {
        fill(&mut self.client, &mut self.spare.strings, v);
    }

    pub fn set_user(&mut self, v: &str) {
        fill(&mut self.user, &mut self.spare.strings, v);
    }
}

impl Exchange {
    /// Asks the CPU to fetch the buffers a refill of this exchange writes
    /// into: its strings and its header list. Recycled exchanges were last
    /// touched many batches ago on another thread, so a parse thread's
    /// first write to each was a cache miss (`push_header` and `reset`
    /// took 9% of the import's cycles for 2% of its instructions). The
    /// header strings are fetched by [`Exchange::warm_headers`], called
    /// later, once the list they are found through has arrived.
    pub(crate) fn warm_buffers(&self) {
        warm_str(&self.method);
        warm_str(&self.path);
        for s in [&self.query, &self.client, &self.host, &self.user]
            .into_iter()
            .flatten()
        {
            warm_str(s);
        }
        // The header list, and the spare lists `reset` moves strings to.
        for list in [&self.headers, &self.spare.headers] {
            if list.capacity() > 0 {
                prefetch(list.as_ptr().cast());
            }
        }
        if self.spare.strings.capacity() > 0 {
            prefetch(self.spare.strings.as_ptr().cast());
        }
    }

    /// Fetches the first header strings (see [`Exchange::warm_buffers`]).
    pub(crate) fn warm_headers(&self) {
        for (n, v) in self.headers.iter().take(3) {
            warm_str(n);
            warm_str(v);
        }
    }
}

/// Fetches the start of `s`'s buffer, if it has one.
#[inline(always)]
fn warm_str(s: &str) {
    if !s.is_empty() {
        prefetch(s.as_ptr());
    }
}

/// A hint to load the cache line at `p`; it never faults, whatever `p` is.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing the program sees and
    // cannot fault, so any address is allowed.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Where a reader puts what it read: an exchange to fill, then a commit.
/// Exchanges are handed out for reuse, so a reader resets the one it gets.
pub trait Sink {
    /// The exchange to fill next (holding stale data until reset).
    fn slot(&mut self) -> &mut Exchange;
    /// The slot holds a complete exchange.
    fn commit(&mut self);
}

/// A [`Sink`] calling a function with each exchange.
pub struct Emit<F: FnMut(Exchange)> {
    f: F,
    x: Exchange,
}

impl<F: FnMut(Exchange)> Emit<F> {
    pub fn new(f: F) -> Emit<F> {
        Emit {
            f,
            x: Exchange::default(),
        }
    }
}

impl<F: FnMut(Exchange)> Sink for Emit<F> {
    fn slot(&mut self) -> &mut Exchange {
        &mut self.x
    }

    fn commit(&mut self) {
        (self.f)(std::mem::take(&mut self.x));
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
    /// Ports and memory limits for packet captures.
    pub pcap: pcap::PcapOptions,
}

/// What reading one input produced, for the import report and the model's
/// `sources` section.
#[derive(Clone, Debug, Default)]
pub struct InputStats {
    pub name: String,
    pub format: Option<Format>,
    /// Lines or entries seen (blank lines and comment/directive lines aside).
    pub records: u64,
    /// What a record is called when pointing at one: "line", "entry", or
    /// "byte" (packet captures, whose records are requests found at a byte
    /// offset).
    pub place: &'static str,
    pub accepted: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    /// The first few skips as (line or entry number, reason).
    pub first_skips: Vec<(u64, &'static str)>,
    pub warnings: Vec<String>,
    /// First and last request time read.
    pub span: Option<(Timestamp, Timestamp)>,
    /// What a packet capture held besides requests.
    pub pcap: Option<pcap::Tally>,
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

    /// Adds what another part of the same input counted (chunks parsed in
    /// parallel are merged in input order), its places shifted by `shift`.
    pub fn absorb(&mut self, other: &InputStats, shift: u64) {
        self.records += other.records;
        self.accepted += other.accepted;
        for (r, n) in &other.skipped {
            *self.skipped.entry(r).or_default() += n;
        }
        for &(n, r) in &other.first_skips {
            if self.first_skips.len() < SHOWN_SKIPS {
                self.first_skips.push((n + shift, r));
            }
        }
        self.warnings.extend(other.warnings.iter().cloned());
        if other.pcap.is_some() {
            self.pcap.clone_from(&other.pcap);
        }
        if let Some((a, b)) = other.span {
            self.span = Some(self.span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
        }
    }

    /// What the records are, in the plural.
    pub fn records_name(&self) -> &'static str {
        match self.place {
            "entry" => "entries",
            "byte" => "requests",
            _ => "lines",
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
    // The reason is part of the message, not a source: printed as a
    // chain (`{:#}`), it would be said twice.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: byte {offset}: {message}")]
    At {
        path: String,
        offset: u64,
        message: String,
    },
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

/// The first exchanges (at most `per_input`) of each input, read from the
/// bytes already taken for format detection; the inputs are left as they are.
pub fn sample(inputs: &[Input], opts: &ReadOptions, per_input: usize) -> Vec<Exchange> {
    let mut out = Vec::new();
    for input in inputs {
        let Ok(copy) = Input::from_bytes(&input.name, input.head.clone()) else {
            continue;
        };
        let mut stats = InputStats::new(&input.name);
        let mut got = Vec::new();
        {
            let mut sink = Emit::new(|x| {
                if got.len() < per_input {
                    got.push(x)
                }
            });
            // A head cut mid-record ends in an error; what came before counts.
            let _ = read(copy, opts, &mut stats, &mut sink);
        }
        out.extend(got);
    }
    out
}

/// Reads one opened input to the end, handing each exchange to `emit`.
pub fn read(
    input: Input,
    opts: &ReadOptions,
    stats: &mut InputStats,
    sink: &mut dyn Sink,
) -> Result<(), CaptureError> {
    let format = format_of(&input, opts)?;
    stats.format = Some(format);
    let path = input.name.clone();
    let damage = input.damage.clone();
    let read = if format == Format::Pcap {
        pcap::read(&path, input.into_read(), &opts.pcap, stats, sink)
    } else {
        let mut reader = input.into_reader();
        match format {
            Format::Har => har::read(&path, &mut reader, stats, sink),
            _ => access_log::read(format, opts, &path, &mut reader, stats, sink),
        }
    };
    if let Some(w) = damage.take() {
        stats.warnings.push(w);
    }
    read?;
    usable(stats)
}

/// The format of an opened input: forced, implied by `--log-format`, or
/// detected.
pub fn format_of(input: &Input, opts: &ReadOptions) -> Result<Format, CaptureError> {
    Ok(match opts.format {
        Some(f) => f,
        None if opts.log_format.is_some() => Format::LogFormat,
        None => detect(&input.head).ok_or_else(|| CaptureError::UnknownFormat {
            path: input.name.clone(),
            head: String::from_utf8_lossy(&input.head[..input.head.len().min(40)]).into_owned(),
        })?,
    })
}

/// An input that yielded no exchange at all is an error.
pub fn usable(stats: &InputStats) -> Result<(), CaptureError> {
    if stats.accepted > 0 {
        return Ok(());
    }
    let first = stats
        .first_skips
        .first()
        .map(|(n, r)| format!("; first at {}: {r}", stats.location(*n)))
        .unwrap_or_default();
    Err(CaptureError::NothingUsable {
        path: stats.name.clone(),
        records: stats.records,
        summary: if stats.records == 0 {
            "empty".to_string()
        } else {
            stats.skip_summary()
        },
        first,
    })
}
