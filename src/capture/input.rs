//! Opening inputs: files, stdin, gzip detected by its magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread;

use flate2::read::MultiGzDecoder;

use super::{CaptureError, Source};

/// How much of an input is read ahead to detect its format (and to sample
/// its first exchanges for automatic tenant rules).
const HEAD_BYTES: usize = 1024 * 1024;
const BUF_BYTES: usize = 256 * 1024;

/// An opened input: its first bytes (already decompressed) for detection, and
/// the whole stream.
pub struct Input {
    pub name: String,
    pub head: Vec<u8>,
    rest: Box<dyn Read + Send>,
    /// Bytes read from the file so far (compressed bytes for `.gz`), and
    /// its size when known: for import progress.
    pub progress: ReadProgress,
    /// Set when a `.gz` input broke off: a warning for its stats.
    pub damage: Damage,
}

/// How far through its file an input's reader is.
#[derive(Clone, Debug, Default)]
pub struct ReadProgress {
    pub read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub size: Option<u64>,
}

impl ReadProgress {
    pub fn bytes_read(&self) -> u64 {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Counts the bytes read through it.
struct Counting<R>(R, std::sync::Arc<std::sync::atomic::AtomicU64>);

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl Input {
    /// The whole input, head included, buffered.
    pub fn into_reader(self) -> Box<dyn BufRead + Send> {
        Box::new(BufReader::with_capacity(
            BUF_BYTES,
            Cursor::new(self.head).chain(self.rest),
        ))
    }

    /// The whole input, head included, unbuffered (for readers that read in
    /// large blocks of their own).
    pub fn into_read(self) -> Box<dyn Read + Send> {
        Box::new(Cursor::new(self.head).chain(self.rest))
    }

    /// An input from bytes in memory (tests, fuzzing).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Input, CaptureError> {
        let progress = ReadProgress {
            size: Some(bytes.len() as u64),
            ..ReadProgress::default()
        };
        let raw = Counting(Cursor::new(bytes), progress.read.clone());
        Input::from_read(name.to_string(), Box::new(raw), progress)
    }

    fn from_read(
        name: String,
        mut raw: Box<dyn Read + Send>,
        progress: ReadProgress,
    ) -> Result<Input, CaptureError> {
        let io_err = |source| CaptureError::Io {
            path: name.clone(),
            error: source,
        };
        let head = read_head(&mut raw).map_err(io_err)?;
        let damage = Damage::default();
        if head.starts_with(&[0x1f, 0x8b]) {
            let mut gz: Box<dyn Read + Send> = Box::new(GzErrors {
                inner: MultiGzDecoder::new(Cursor::new(head).chain(raw)),
                at: 0,
                damage: damage.clone(),
                broken: false,
            });
            let head = read_head(&mut gz).map_err(io_err)?;
            if head.is_empty()
                && let Some((_, why)) = damage.take_raw()
            {
                return Err(CaptureError::Invalid {
                    path: name.clone(),
                    message: format!("broken gzip stream: nothing could be inflated ({why})"),
                });
            }
            let rest = ReadAhead::spawn(&name, gz);
            return Ok(Input {
                name,
                head,
                rest: Box::new(rest),
                progress,
                damage,
            });
        }
        Ok(Input {
            name,
            head,
            rest: raw,
            progress,
            damage,
        })
    }
}

/// Where a broken `.gz` stream stopped, once it has: the input ends there,
/// and what came before is read (a truncated download keeps its complete
/// records; a gzip trailer cut off loses nothing).
#[derive(Clone, Debug, Default)]
pub struct Damage(std::sync::Arc<std::sync::Mutex<Option<(u64, String)>>>);

impl Damage {
    /// The warning, once (none when the stream was whole).
    pub fn take(&self) -> Option<String> {
        self.take_raw().map(|(at, e)| {
            format!("broken gzip stream after {at} bytes of content ({e}); everything before it was read")
        })
    }

    /// Where the stream broke (bytes of content) and why.
    fn take_raw(&self) -> Option<(u64, String)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Opens a file or stdin, decompressing gzip transparently.
pub fn open(source: &Source) -> Result<Input, CaptureError> {
    let name = source.display();
    let mut progress = ReadProgress::default();
    let raw: Box<dyn Read + Send> = match source {
        Source::Stdin => Box::new(Counting(io::stdin(), progress.read.clone())),
        Source::File(path) => {
            let f = File::open(path).map_err(|source| CaptureError::Io {
                path: name.clone(),
                error: source,
            })?;
            progress.size = f.metadata().ok().map(|m| m.len()).filter(|n| *n > 0);
            Box::new(Counting(f, progress.read.clone()))
        }
    };
    Input::from_read(name, raw, progress)
}

fn read_head(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    r.take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Ends a gzip stream where it breaks (cut short, or corrupt), saying
/// where in its content, instead of failing the whole input.
struct GzErrors<R> {
    inner: R,
    /// Bytes of content inflated so far.
    at: u64,
    damage: Damage,
    broken: bool,
}

impl<R: Read> Read for GzErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use io::ErrorKind as K;
        if self.broken {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.at += n as u64;
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    K::InvalidInput | K::InvalidData | K::UnexpectedEof
                ) =>
            {
                *self.damage.0.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((self.at, e.to_string()));
                self.broken = true;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}

/// Blocks inflated ahead of the reader.
const AHEAD_BLOCK: usize = 1 << 20;
const AHEAD_BLOCKS: usize = 4;

/// Reads on a thread of its own, a few blocks ahead: decompressing and
/// parsing then run at the same time, on two cores.
struct ReadAhead {
    rx: Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    fn spawn(name: &str, mut inner: impl Read + Send + 'static) -> ReadAhead {
        let (tx, rx) = sync_channel(AHEAD_BLOCKS);
        let spawned = thread::Builder::new()
            .name(format!("inflate {name}"))
            .spawn(move || {
                loop {
                    let mut block = Vec::with_capacity(AHEAD_BLOCK);
                    let got = (&mut inner)
                        .take(AHEAD_BLOCK as u64)
                        .read_to_end(&mut block);
                    // What was inflated before a failure (a truncated .gz)
                    // is handed on first: the error comes after it, at its
                    // own place, and no complete record is lost.
                    match got {
                        Ok(n) => {
                            // The reader stopped listening, or the input is
                            // done (an empty block says so).
                            if tx.send(Ok(block)).is_err() || n == 0 {
                                return;
                            }
                        }
                        Err(e) => {
                            if !block.is_empty() && tx.send(Ok(block)).is_err() {
                                return;
                            }
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            let (tx, rx) = sync_channel(1);
            let _ = tx.send(Err(e));
            return ReadAhead::from(rx);
        }
        ReadAhead::from(rx)
    }

    fn from(rx: Receiver<io::Result<Vec<u8>>>) -> ReadAhead {
        ReadAhead {
            rx,
            block: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(block)) => {
                    self.done = block.is_empty();
                    self.block = block;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the decompressing thread stopped"));
                }
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
