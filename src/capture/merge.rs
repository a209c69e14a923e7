//! Reading inputs on their own threads and interleaving them by time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{self, JoinHandle};

use super::{CaptureError, Exchange, Input, InputStats, ReadOptions, read};
use crate::model::Timestamp;

const BATCH: usize = 1024;
/// Batches in flight per input: bounds memory whatever the input size.
const BATCHES_IN_FLIGHT: usize = 4;

enum Msg {
    Batch(Vec<Exchange>),
    Done(Result<InputStats, CaptureError>),
}

/// One input being read on its own thread.
pub struct Stream {
    name: String,
    rx: Receiver<Msg>,
    batch: std::vec::IntoIter<Exchange>,
    handle: Option<JoinHandle<()>>,
    done: bool,
}

/// Starts reading `input` on a thread of its own.
pub fn spawn(input: Input, opts: Arc<ReadOptions>) -> Stream {
    let name = input.name.clone();
    let (tx, rx) = sync_channel(BATCHES_IN_FLIGHT);
    let handle = thread::Builder::new()
        .name(format!("read {name}"))
        .spawn(move || run_reader(input, &opts, tx))
        .expect("spawning a reader thread");
    Stream {
        name,
        rx,
        batch: Vec::new().into_iter(),
        handle: Some(handle),
        done: false,
    }
}

fn run_reader(input: Input, opts: &ReadOptions, tx: SyncSender<Msg>) {
    let mut stats = InputStats::new(&input.name);
    let mut batch = Vec::with_capacity(BATCH);
    let mut receiver_gone = false;
    let mut span: Option<(Timestamp, Timestamp)> = None;
    let result = read(input, opts, &mut stats, &mut |x| {
        if receiver_gone {
            return;
        }
        span = Some(span.map_or((x.time, x.time), |(a, b)| (a.min(x.time), b.max(x.time))));
        batch.push(x);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            receiver_gone = tx.send(Msg::Batch(full)).is_err();
        }
    });
    stats.span = span;
    if !batch.is_empty() && !receiver_gone {
        let _ = tx.send(Msg::Batch(batch));
    }
    let _ = tx.send(Msg::Done(result.map(|()| stats)));
}

enum Pulled {
    Exchange(Exchange),
    End(InputStats),
}

impl Stream {
    fn pull(&mut self) -> Result<Pulled, CaptureError> {
        loop {
            if let Some(x) = self.batch.next() {
                return Ok(Pulled::Exchange(x));
            }
            let msg = self.rx.recv();
            match msg {
                Ok(Msg::Batch(b)) => self.batch = b.into_iter(),
                Ok(Msg::Done(r)) => {
                    self.done = true;
                    self.join();
                    return r.map(Pulled::End);
                }
                Err(_) => {
                    // The thread ended without saying so: it panicked.
                    self.done = true;
                    self.join();
                    return Err(CaptureError::Internal {
                        path: self.name.clone(),
                        message: "the reader thread panicked".into(),
                    });
                }
            }
        }
    }

    fn join(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Interleaves several inputs into one stream ordered by request time (each
/// input keeps its own order), tagging each exchange with its input's index.
pub struct Merged {
    streams: Vec<Stream>,
    heads: Vec<Option<Exchange>>,
    heap: BinaryHeap<Reverse<(Timestamp, usize)>>,
    stats: Vec<Option<InputStats>>,
    primed: bool,
}

impl Merged {
    pub fn new(streams: Vec<Stream>) -> Merged {
        let n = streams.len();
        Merged {
            streams,
            heads: (0..n).map(|_| None).collect(),
            heap: BinaryHeap::with_capacity(n),
            stats: (0..n).map(|_| None).collect(),
            primed: false,
        }
    }

    fn advance(&mut self, i: usize) -> Result<(), CaptureError> {
        match self.streams[i].pull()? {
            Pulled::Exchange(x) => {
                self.heap.push(Reverse((x.time, i)));
                self.heads[i] = Some(x);
            }
            Pulled::End(stats) => self.stats[i] = Some(stats),
        }
        Ok(())
    }

    /// The next exchange in time order, with the index of its input.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<(usize, Exchange)>, CaptureError> {
        if !self.primed {
            self.primed = true;
            for i in 0..self.streams.len() {
                self.advance(i)?;
            }
        }
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let x = self.heads[i].take().expect("a queued input has a head");
        self.advance(i)?;
        Ok(Some((i, x)))
    }

    /// Statistics of the inputs that have ended, in input order.
    pub fn stats(&self) -> Vec<&InputStats> {
        self.stats.iter().flatten().collect()
    }

    pub fn into_stats(self) -> Vec<InputStats> {
        self.stats.into_iter().flatten().collect()
    }

    pub fn input_count(&self) -> usize {
        self.streams.len()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Unblock a reader still sending, then let it finish on its own.
        if !self.done {
            let (_, rx) = sync_channel(0);
            drop(std::mem::replace(&mut self.rx, rx));
        }
    }
}
