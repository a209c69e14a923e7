//! Results → what people and machines read. Every output goes through one
//! seam, the [`Exporter`] trait: a format is one file here, and the run
//! directory (`--out DIR`) is whatever the exporters write into it.

mod files;
mod html;
mod junit;
mod load;
pub mod summary;
pub mod terminal;

use std::path::{Path, PathBuf};

pub use files::{Histograms, JsonSummary, TimelineCsv, decode_histogram};
pub use html::Html;
pub use junit::JUnit;
pub use load::load;
pub use summary::{Stats, Summary};
pub use terminal::Terminal;

use crate::metrics::Results;
use crate::output::write_atomic;

/// A report that could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("rendering {file}: {message}")]
    Render { file: &'static str, message: String },
    // The reason is part of the message, not a source: printed as a
    // chain (`{:#}`), it would be said twice.
    #[error("writing {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

/// A finished run, with its summary computed once for every exporter.
pub struct Run<'a> {
    pub results: &'a Results,
    pub summary: Summary,
}

impl<'a> Run<'a> {
    pub fn new(results: &'a Results) -> Run<'a> {
        Run {
            summary: Summary::of(results),
            results,
        }
    }
}

/// Escapes text for HTML and XML content and attribute values (control
/// characters XML cannot carry are dropped).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// One output format.
pub trait Exporter {
    /// The file it writes in the run directory.
    fn file_name(&self) -> &'static str;
    fn render(&self, run: &Run<'_>) -> Result<Vec<u8>, ReportError>;
}

/// The exporters of a run directory.
pub fn standard() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(JsonSummary),
        Box::new(TimelineCsv),
        Box::new(Histograms),
        Box::new(Terminal { top: 20 }),
        Box::new(Html),
    ]
}

/// Writes every exporter's file into `dir` (created if needed), each file
/// atomically (a temporary file renamed into place), and returns the paths.
pub fn write_dir(
    dir: &Path,
    run: &Run<'_>,
    exporters: &[Box<dyn Exporter>],
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Write {
        path: dir.display().to_string(),
        error: source,
    })?;
    let mut written = Vec::new();
    for e in exporters {
        let bytes = e.render(run)?;
        let path = dir.join(e.file_name());
        write_atomic(&path, &bytes).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            error: source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Writes one exporter's output to `path` (`--junit FILE`), atomically.
pub fn write_file(path: &Path, run: &Run<'_>, exporter: &dyn Exporter) -> Result<(), ReportError> {
    let bytes = exporter.render(run)?;
    write_atomic(path, &bytes).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        error: source,
    })
}
