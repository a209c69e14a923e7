//! Writing files safely and numbers readably.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Writes `bytes` to `path` atomically: a temporary file beside it, then a
/// rename, so a reader never sees half a file. `-` writes to standard output.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        return out.flush();
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Pretty JSON with two-space indentation, except that arrays of numbers
/// and short arrays of strings stay on one line: series of counts and
/// `[value, count]` pairs read (and diff) better that way.
pub fn pretty_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out.push('\n');
    out
}

fn is_flat(a: &[serde_json::Value]) -> bool {
    use serde_json::Value;
    let scalars = a
        .iter()
        .all(|x| matches!(x, Value::Number(_) | Value::Null | Value::Bool(_)))
        || (a.len() <= 4 && a.iter().all(|x| !x.is_array() && !x.is_object()));
    scalars && !a.is_empty()
}

fn write_value(out: &mut String, v: &serde_json::Value, depth: usize) {
    use serde_json::Value;
    let indent = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("  ");
        }
    };
    match v {
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Array(a) if is_flat(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&x.to_string());
            }
            out.push(']');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_value(out, x, depth + 1);
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_value(out, x, depth + 1);
            }
            indent(out, depth);
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// 1234567 → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: `850ms`, `12.5s`, `4m 10s`, `3h 02m`, `2d 4h`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    // Whole seconds as shown: 59.999 s is "1m 00s", not "60.0s".
    let s = if ms >= 1000.0 {
        (d.as_secs_f64() * 10.0).round() as u64 / 10
    } else {
        d.as_secs()
    };
    if ms < 1.0 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 1000.0 {
        if ms < 10.0 {
            format!("{ms:.2}ms")
        } else {
            format!("{ms:.0}ms")
        }
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h {:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}d {}h", s / 86_400, s / 3600 % 24)
    }
}

/// The directory a file goes in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether `path`, given as `flag`, can name a file to write, found
/// without writing it: not a directory, and in a directory that exists
/// (or that `made` says will be made first).
pub fn file_place(flag: &str, path: &Path, made: bool) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "{flag} {}: is a directory (it names a file)",
            path.display()
        ));
    }
    let dir = parent_dir(path);
    if !dir.is_dir() && !made {
        return Err(format!(
            "{flag} {}: the directory {} does not exist",
            path.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// Milliseconds for people.
pub fn human_ms(ms: f64) -> String {
    human_duration(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}

/// A percentage with one decimal.
pub fn percent(part: u64, whole: u64) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole.max(1) as f64)
}

/// A sparkline of `values` in at most `width` characters (values are summed
/// into wider bins when there are more).
pub fn sparkline(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let per = values.len().div_ceil(width);
    let bins: Vec<u64> = values.chunks(per).map(|c| c.iter().sum()).collect();
    let max = bins.iter().copied().max().unwrap_or(0).max(1);
    bins.iter()
        .map(|&v| {
            if v == 0 {
                ' '
            } else {
                BARS[((v * 7) / max) as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_secs(250)), "4m 10s");
        assert_eq!(human_duration(Duration::from_millis(59_999)), "1m 00s");
        assert_eq!(human_duration(Duration::from_millis(59_940)), "59.9s");
        assert_eq!(sparkline(&[0, 1, 2, 4, 8], 5), " ▁▂▄█");
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a":[1,2,3],"b":[["x",1],["y",2]],"c":{"d":[]}}"#).unwrap();
        let p = pretty_json(&v);
        assert_eq!(
            p,
            "{\n  \"a\": [1, 2, 3],\n  \"b\": [\n    [\"x\", 1],\n    [\"y\", 2]\n  ],\n  \"c\": {\n    \"d\": []\n  }\n}\n"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&p).unwrap(), v);
    }
}
