//! Parallel chunked reading gives exactly what serial reading gives: the
//! same exchanges in the same order, the same counts, the same line numbers.

use std::sync::Arc;

use reprise::capture::{self, Emit, Exchange, Input, InputStats, Merged, ReadOptions};

use crate::util::synth::{self, Truth};

/// A log of several chunks with junk lines scattered through it, CRLF
/// endings on some lines and no newline at the end.
fn messy_log() -> Vec<u8> {
    let events = synth::generate(&Truth::standard());
    let mut out = Vec::new();
    let good = synth::access_log(&events);
    for (i, line) in good.lines().cycle().take(40_000).enumerate() {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
        if i % 997 == 0 {
            out.extend_from_slice(b"garbage that is not a log line\n");
        }
        if i % 5003 == 0 {
            out.extend_from_slice(b"\n   \n");
        }
    }
    out.extend_from_slice(
        b"10.0.0.1 - - [01/May/2024:10:00:00 +0000] \"GET /last HTTP/1.1\" 200 1 \"-\" \"ua\"",
    );
    out
}

fn serial(bytes: &[u8]) -> (Vec<Exchange>, InputStats) {
    let input = Input::from_bytes("log", bytes.to_vec()).unwrap();
    let mut stats = InputStats::new("log");
    let mut out = Vec::new();
    capture::read(
        input,
        &ReadOptions::default(),
        &mut stats,
        &mut Emit::new(|x| out.push(x)),
    )
    .unwrap();
    (out, stats)
}

fn streamed(bytes: &[u8]) -> (Vec<Exchange>, InputStats) {
    let input = Input::from_bytes("log", bytes.to_vec()).unwrap();
    let stream = capture::spawn(input, Arc::new(ReadOptions::default()), || {
        |x: &Exchange, p: &mut u64| *p = x.time.as_micros() as u64
    });
    let mut merged = Merged::new(vec![stream]);
    let mut out = Vec::new();
    while let Some((_, item)) = merged.next().unwrap() {
        assert_eq!(
            item.prep,
            item.x.time.as_micros() as u64,
            "prepared alongside its exchange"
        );
        out.push(item.x.clone());
    }
    (out, merged.into_stats().remove(0))
}

#[test]
fn chunked_reading_matches_serial_reading() {
    let bytes = messy_log();
    assert!(bytes.len() > 2_000_000, "spans several chunks");
    let (a, sa) = serial(&bytes);
    let (b, sb) = streamed(&bytes);
    assert_eq!(a.len(), b.len());
    assert!(a == b, "same exchanges in the same order");
    assert_eq!((sa.records, sa.accepted), (sb.records, sb.accepted));
    assert_eq!(sa.skipped, sb.skipped);
    assert_eq!(sa.first_skips, sb.first_skips, "same line numbers");
    assert_eq!(sa.first_skips[0].0, 2, "the first garbage line is line 2");
    assert_eq!(
        b.last().unwrap().path,
        "/last",
        "a last line without newline is read"
    );
}

fn har_bytes() -> Vec<u8> {
    synth::har(&synth::generate(&Truth::standard())).into_bytes()
}

#[test]
fn parallel_har_reading_matches_serial_reading() {
    let bytes = har_bytes();
    assert!(
        bytes.len() > 1_000_000,
        "spans several chunks: {}",
        bytes.len()
    );
    let (a, sa) = serial(&bytes);
    let (b, sb) = streamed(&bytes);
    assert!(a == b, "same exchanges in the same order");
    assert_eq!(
        (sa.records, sa.accepted, sa.place),
        (sb.records, sb.accepted, sb.place)
    );
}

#[test]
fn broken_json_deep_in_a_har_is_placed_exactly() {
    let mut bytes = har_bytes();
    // Break the JSON of an entry far into the file: `"time": <number>` with
    // a stray character after the number.
    let at = bytes.len() * 3 / 4;
    let off = memchr::memmem::find(&bytes[at..], b"\"time\": ").unwrap() + at + 8;
    bytes.insert(off, b'@');
    let line = bytes[..off].iter().filter(|&&b| b == b'\n').count() + 1;
    let column = off - bytes[..off].iter().rposition(|&b| b == b'\n').unwrap();
    for how in ["serial", "streamed"] {
        let input = Input::from_bytes("b.har", bytes.clone()).unwrap();
        let err = if how == "serial" {
            let mut stats = InputStats::new("b.har");
            capture::read(
                input,
                &ReadOptions::default(),
                &mut stats,
                &mut Emit::new(|_| {}),
            )
            .unwrap_err()
        } else {
            let stream = capture::spawn(input, Arc::new(ReadOptions::default()), || {
                |_: &Exchange, _: &mut ()| {}
            });
            let mut merged = Merged::new(vec![stream]);
            loop {
                match merged.next() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("{how}: broken JSON accepted"),
                    Err(e) => break e,
                }
            }
        };
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("b.har:{line}:{column}: broken HAR JSON")),
            "{how}: {msg}"
        );
    }
}
