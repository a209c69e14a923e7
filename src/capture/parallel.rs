//! Parsing one input on several threads: a splitter cuts it into chunks —
//! whole lines of a log, whole entries of a HAR — and workers parse and
//! prepare the chunks, one batch per chunk, numbered so that the stream puts
//! them back in order.

use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use super::har::{self, Bad, Clock, Place, Scanner};
use super::merge::{BatchSink, Msg, Pool, Refill};
use super::{CaptureError, Exchange, Format, Input, InputStats, ReadOptions, access_log};

/// Bytes per chunk.
const CHUNK: usize = 256 << 10;

/// A chunk of an input: whole lines (no `entries`), or whole HAR entries at
/// the given byte ranges. Lines and entries are numbered from 1 in each
/// chunk; the stream shifts the numbers into place.
struct Chunk {
    seq: u64,
    data: Vec<u8>,
    entries: Vec<(usize, usize, Place)>,
}

type Buffers = Arc<Mutex<Vec<Vec<u8>>>>;

/// Whether `format` can be parsed in chunks: logs whose lines stand alone,
/// and HAR files whose entries carry their own times (a hand-made HAR
/// without `startedDateTime` is timed entry by entry, so read in order).
pub(super) fn suits(format: Format, input: &Input) -> bool {
    match format {
        Format::Har => memchr::memmem::find(&input.head, b"\"startedDateTime\"").is_some(),
        f => access_log::independent_lines(f),
    }
}

/// Starts the splitter and `workers` parsing threads.
pub(super) fn start<P, F, M>(
    input: Input,
    format: Format,
    opts: Arc<ReadOptions>,
    workers: usize,
    make_prepare: M,
    tx: SyncSender<Msg<P>>,
    pool: Pool<P>,
) -> Vec<JoinHandle<()>>
where
    P: Refill,
    F: FnMut(&Exchange, &mut P) + Send + 'static,
    M: Fn() -> F,
{
    // Four chunks per worker read ahead (1 MiB per worker): the reader is never
    // what a worker waits for.
    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(workers * 4);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let buffers: Buffers = Arc::new(Mutex::new(Vec::new()));
    let name = input.name.clone();
    let mut handles = Vec::new();
    for w in 0..workers {
        let (tx, pool, rx, opts, buffers) = (
            tx.clone(),
            pool.clone(),
            chunk_rx.clone(),
            opts.clone(),
            buffers.clone(),
        );
        let prepare = make_prepare();
        let name = name.clone();
        let spawned = thread::Builder::new()
            .name(format!("parse {name} #{w}"))
            .spawn(move || work(&name, format, &opts, &rx, &tx, pool, prepare, &buffers));
        handles.push(spawned.expect("spawning a parser thread"));
    }
    let reader = thread::Builder::new()
        .name(format!("read {name}"))
        .spawn(move || {
            let mut stats = InputStats::new(&input.name);
            stats.format = Some(format);
            let path = input.name.clone();
            let damage = input.damage.clone();
            let result = if format == Format::Har {
                stats.place = "entry";
                split_entries(input, &chunk_tx, &buffers)
            } else {
                split_lines(input, &chunk_tx, &buffers).map_err(|source| CaptureError::Io {
                    path,
                    error: source,
                })
            };
            drop(chunk_tx);
            if let Some(w) = damage.take() {
                stats.warnings.push(w);
            }
            let _ = tx.send(Msg::Done {
                batches: *result.as_ref().unwrap_or(&0),
                result: result.map(|_| stats),
            });
        });
    handles.push(reader.expect("spawning a reader thread"));
    handles
}

#[allow(clippy::too_many_arguments)]
fn work<P, F>(
    name: &str,
    format: Format,
    opts: &ReadOptions,
    rx: &Mutex<Receiver<Chunk>>,
    tx: &SyncSender<Msg<P>>,
    pool: Pool<P>,
    mut prepare: F,
    buffers: &Mutex<Vec<Vec<u8>>>,
) where
    P: Refill,
    F: FnMut(&Exchange, &mut P),
{
    let mut parser = (format != Format::Har).then(|| access_log::parser_for(format, opts));
    loop {
        let next = rx.lock().expect("chunk lock").recv();
        let Ok(chunk) = next else { return };
        let mut stats = InputStats::new(name);
        let mut sink = BatchSink::new(tx, pool.clone(), &mut prepare, true);
        sink.seq = chunk.seq;
        let (places, error) = match &mut parser {
            Some(p) => (
                access_log::read_chunk(
                    &mut **p,
                    &chunk.data,
                    chunk.seq == 0,
                    &mut stats,
                    &mut sink,
                ),
                None,
            ),
            None => (
                chunk.entries.len() as u64,
                entries(name, &chunk, &mut stats, &mut sink).err(),
            ),
        };
        buffers.lock().expect("buffer lock").push(chunk.data);
        stats.span = sink.span;
        sink.flush(Some(stats), error, places);
        if sink.gone {
            return;
        }
    }
}

fn entries(
    name: &str,
    chunk: &Chunk,
    stats: &mut InputStats,
    sink: &mut dyn super::Sink,
) -> Result<(), CaptureError> {
    stats.place = "entry";
    let mut clock = Clock::default();
    for (i, &(a, b, at)) in chunk.entries.iter().enumerate() {
        stats.records += 1;
        match har::entry(&chunk.data[a..b], &mut clock) {
            Ok(x) => {
                stats.accepted += 1;
                *sink.slot() = x;
                sink.commit();
            }
            Err(Bad::Skip(reason)) => stats.skip(i as u64 + 1, reason),
            Err(Bad::Json(e)) => return Err(har::syntax_error(name, at, &e)),
        }
    }
    Ok(())
}

/// A spent chunk buffer, emptied.
fn take(buffers: &Mutex<Vec<Vec<u8>>>) -> Vec<u8> {
    let mut b = spent(buffers);
    b.clear();
    b
}

/// A spent chunk buffer as it was left, old bytes and all.
fn spent(buffers: &Mutex<Vec<Vec<u8>>>) -> Vec<u8> {
    buffers
        .lock()
        .expect("buffer lock")
        .pop()
        .unwrap_or_default()
}

/// Fills `buf` from `reader`; returns how many bytes it read (fewer than
/// `buf.len()` only at the end of the input).
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match reader.read(&mut buf[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Sends the input as numbered chunks of whole lines; returns how many.
fn split_lines(input: Input, out: &SyncSender<Chunk>, buffers: &Buffers) -> std::io::Result<u64> {
    let mut reader = input.into_read();
    let mut seq = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        // A spent chunk's bytes are overwritten, not cleared first: only
        // what lies past its length is zeroed, a partial line's worth
        // (zeroing every chunk wrote the whole input once more: 2% of the
        // import's instructions in callgrind). The buffer is sized
        // once: `read_to_end` would probe past a full buffer and double
        // it, and the grown memory, handed back to the OS between chunks,
        // had to be faulted in and zeroed again.
        let mut buf = spent(buffers);
        let had = carry.len();
        if buf.len() < had + CHUNK {
            buf.resize(had + CHUNK, 0);
        }
        buf[..had].copy_from_slice(&carry);
        carry.clear();
        let got = read_full(&mut reader, &mut buf[had..had + CHUNK])?;
        buf.truncate(had + got);
        let eof = got == 0;
        if eof && buf.is_empty() {
            return Ok(seq);
        }
        // Cut after the last newline; the rest starts the next chunk. A
        // chunk with no newline at all is passed whole when it grows large
        // (the line-length limit deals with it).
        if !eof && let Some(i) = memchr::memrchr(b'\n', &buf) {
            carry.extend_from_slice(&buf[i + 1..]);
            buf.truncate(i + 1);
        } else if !eof && buf.len() < 64 * CHUNK {
            carry = buf;
            continue;
        }
        let chunk = Chunk {
            seq,
            data: buf,
            entries: Vec::new(),
        };
        if out.send(chunk).is_err() {
            return Ok(seq);
        }
        seq += 1;
        if eof {
            return Ok(seq);
        }
    }
}

/// Sends the entries of a HAR document as numbered chunks of whole entries;
/// returns how many.
fn split_entries(
    input: Input,
    out: &SyncSender<Chunk>,
    buffers: &Buffers,
) -> Result<u64, CaptureError> {
    let path = input.name.clone();
    let mut scanner = Scanner::new(input.into_read(), &path);
    let mut seq = 0u64;
    let mut chunk = Chunk {
        seq,
        data: take(buffers),
        entries: Vec::new(),
    };
    let send = |chunk: Chunk| out.send(chunk).is_ok();
    while let Some((raw, at)) = scanner.next_entry()? {
        let start = chunk.data.len();
        chunk.data.extend_from_slice(raw);
        chunk.entries.push((start, chunk.data.len(), at));
        if chunk.data.len() >= CHUNK {
            let next = Chunk {
                seq: seq + 1,
                data: take(buffers),
                entries: Vec::new(),
            };
            if !send(std::mem::replace(&mut chunk, next)) {
                return Ok(seq);
            }
            seq += 1;
        }
    }
    if !scanner.found_entries() {
        return Err(CaptureError::Invalid {
            path,
            message: "not a HAR document: no log.entries array".into(),
        });
    }
    if chunk.entries.is_empty() {
        return Ok(seq);
    }
    send(chunk);
    Ok(seq + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks are cut at line ends and, put together, are the input, even
    /// when the buffers they are read into held other bytes before (spent
    /// buffers are overwritten, not cleared) and a line is longer than a
    /// chunk.
    #[test]
    fn chunks_are_the_input_cut_at_line_ends_in_dirty_buffers() {
        let mut text = Vec::new();
        let mut n = 0u64;
        while text.len() < 5 * CHUNK {
            n += 1;
            let len = if n.is_multiple_of(997) {
                CHUNK + 300
            } else {
                (n * 37 % 180) as usize
            };
            text.extend(std::iter::repeat_n(b'a' + (n % 26) as u8, len));
            text.push(b'\n');
        }
        text.extend_from_slice(b"no newline at the end");
        let buffers: Buffers = Arc::new(Mutex::new(
            (0..3).map(|i| vec![b'#'; CHUNK / (i + 1) + 7]).collect(),
        ));
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let reader = {
            let (input, buffers) = (
                Input::from_bytes("t.log", text.clone()).unwrap(),
                buffers.clone(),
            );
            std::thread::spawn(move || split_lines(input, &tx, &buffers).unwrap())
        };
        let mut joined = Vec::new();
        let mut seqs = Vec::new();
        for chunk in rx {
            assert!(
                chunk.data.ends_with(b"\n") || joined.len() + chunk.data.len() == text.len(),
                "chunk {} ends mid-line",
                chunk.seq
            );
            joined.extend_from_slice(&chunk.data);
            seqs.push(chunk.seq);
            // Spent buffers go back dirty, as the parse threads return them.
            buffers.lock().unwrap().push(chunk.data);
        }
        let sent = reader.join().unwrap();
        assert_eq!(seqs, (0..sent).collect::<Vec<_>>());
        assert!(sent >= 5, "several chunks: {sent}");
        assert!(joined == text, "the chunks put together are the input");
    }
}
