//! Telling a capture's format from its first bytes.

use super::Format;
use super::access_log;

/// Guesses the format of an input from its first (decompressed) bytes.
///
/// Binary magic first (pcap, pcapng), then JSON (a HAR document, or JSON
/// lines), then W3C directives, then the line formats: each candidate parser
/// is tried on the first lines and the one that parses most of them wins.
pub fn detect(head: &[u8]) -> Option<Format> {
    if is_pcap(head) {
        return Some(Format::Pcap);
    }
    let text = strip_bom(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = &text[start..];
    if text[0] == b'{' {
        return detect_json(text);
    }
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(32)
        .collect();
    if let Some(f) = detect_w3c(&lines) {
        return Some(f);
    }
    // The last line of the head may be cut short; do not judge on it.
    let complete = if lines.len() > 1 && !head.ends_with(b"\n") {
        &lines[..lines.len() - 1]
    } else {
        &lines[..]
    };
    [Format::Alb, Format::Elb, Format::Cloudfront, Format::Clf]
        .into_iter()
        .map(|f| (access_log::sniff(f, complete), f))
        .filter(|(n, _)| *n > 0)
        // Most lines parsed wins; ties go to the more specific format.
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, f)| f)
}

pub(crate) fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

fn is_pcap(head: &[u8]) -> bool {
    matches!(
        head.get(..4),
        Some([0xd4, 0xc3, 0xb2, 0xa1])
            | Some([0xa1, 0xb2, 0xc3, 0xd4])
            | Some([0x4d, 0x3c, 0xb2, 0xa1])
            | Some([0xa1, 0xb2, 0x3c, 0x4d])
            | Some([0x34, 0xcd, 0xb2, 0xa1])
            | Some([0x0a, 0x0d, 0x0d, 0x0a])
    )
}

fn detect_json(text: &[u8]) -> Option<Format> {
    let first_line = text.split(|&b| b == b'\n').next().unwrap_or(text);
    match serde_json::from_slice::<serde_json::Value>(first_line) {
        Ok(serde_json::Value::Object(obj)) => {
            if obj.get("log").is_some_and(|l| l.is_object()) {
                Some(Format::Har)
            } else {
                Some(Format::Json)
            }
        }
        Ok(_) => None,
        // A document spread over lines: HAR is the one we know.
        Err(_) => memchr::memmem::find(text, b"\"log\"").map(|_| Format::Har),
    }
}

fn detect_w3c(lines: &[&[u8]]) -> Option<Format> {
    let directive = |l: &&[u8]| {
        l.starts_with(b"#Fields:") || l.starts_with(b"#Version:") || l.starts_with(b"#Software:")
    };
    if !lines.iter().any(directive) {
        return None;
    }
    let cloudfront = lines.iter().any(|l| {
        l.starts_with(b"#Fields:") && memchr::memmem::find(l, b"x-edge-location").is_some()
    });
    Some(if cloudfront {
        Format::Cloudfront
    } else {
        Format::W3c
    })
}
