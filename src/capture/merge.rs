//! Reading inputs on their own threads and interleaving them by time.
//!
//! Each input is read off the importing thread, which also runs a
//! caller-given `prepare` step on every exchange (the modeller's stateless
//! work: templating, identity) so that work is spread over the cores. Logs
//! whose lines stand alone (combined, ALB, ...) are cut into chunks at line
//! ends and parsed by several workers at once; chunks come back numbered and
//! are put back in order. Exchanges travel in batches; spent batches go back
//! to be filled again, so the import loop does not allocate per line.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use super::parallel;
use super::{
    CaptureError, Exchange, Input, InputStats, ReadOptions, Sink, format_of, read, usable,
};
use crate::model::Timestamp;

const BATCH: usize = 1024;
/// Batches in flight per input: bounds memory whatever the input size. With
/// 4, the parse threads of a chunked log waited on the merging thread often
/// enough that the import used 171–178% of two CPUs; with 8, 181–182%, for
/// about 20 MB more peak memory on the 1 GB log.
const BATCHES_IN_FLIGHT: usize = 8;

/// What a reader thread prepares alongside each exchange (the modeller's
/// [`crate::model::Prep`]; plain values in tests).
pub trait Refill: Default + Send + 'static {
    /// Asks the CPU to fetch the buffers the next preparation writes into
    /// (see [`Exchange::warm_buffers`]); nothing to fetch by default.
    fn warm_buffers(&self) {}
}

impl Refill for () {}
impl Refill for u64 {}

/// An exchange and what the reader thread prepared from it.
#[derive(Default)]
pub struct Item<P> {
    pub x: Exchange,
    pub prep: P,
}

pub(super) enum Msg<P> {
    /// Batch number `seq`; `stats` counts what its chunk held, `error` is
    /// what stopped it (parallel parsing only).
    /// Chunk stats number their lines or entries from 1; `places` is how
    /// many the chunk had, which shifts the numbers of the chunks after it.
    Batch {
        seq: u64,
        /// The first `filled` items are this batch; the rest are spare
        /// exchanges kept for reuse.
        items: Vec<Item<P>>,
        filled: usize,
        stats: Option<InputStats>,
        error: Option<CaptureError>,
        places: u64,
    },
    /// Reading ended after `batches` batches; the stats hold the totals of
    /// serial reading, or what belongs to the whole input.
    Done {
        batches: u64,
        result: Result<InputStats, CaptureError>,
    },
}

/// Spent batches, for the producers to fill again.
pub(super) type Pool<P> = Arc<Mutex<Vec<Vec<Item<P>>>>>;

fn take_batch<P>(pool: &Pool<P>) -> Vec<Item<P>> {
    pool.lock()
        .expect("pool lock")
        .pop()
        .unwrap_or_else(|| Vec::with_capacity(2 * BATCH))
}

type Pending<P> = (
    Vec<Item<P>>,
    usize,
    Option<InputStats>,
    Option<CaptureError>,
    u64,
);

/// One input being read off this thread.
pub struct Stream<P> {
    name: String,
    rx: Receiver<Msg<P>>,
    pool: Pool<P>,
    batch: Vec<Item<P>>,
    /// How many items of `batch` are filled.
    batch_len: usize,
    pos: usize,
    next_seq: u64,
    /// Batches that arrived before their turn, with their chunk's stats and
    /// error.
    pending: BTreeMap<u64, Pending<P>>,
    total: Option<u64>,
    stats: InputStats,
    /// Lines or entries in the chunks absorbed so far.
    places: u64,
    handles: Vec<JoinHandle<()>>,
    done: bool,
}

/// Starts reading `input`. `make_prepare` makes the per-exchange step for
/// each thread that parses.
pub fn spawn<P, F, M>(input: Input, opts: Arc<ReadOptions>, make_prepare: M) -> Stream<P>
where
    P: Refill,
    F: FnMut(&Exchange, &mut P) + Send + 'static,
    M: Fn() -> F,
{
    let name = input.name.clone();
    let (tx, rx) = sync_channel(BATCHES_IN_FLIGHT);
    let pool: Pool<P> = Arc::new(Mutex::new(Vec::new()));
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let format = format_of(&input, &opts);
    let handles = match format {
        Ok(f) if workers > 1 && parallel::suits(f, &input) => {
            parallel::start(input, f, opts, workers, make_prepare, tx, pool.clone())
        }
        _ => vec![serial(input, opts, make_prepare(), tx, pool.clone())],
    };
    Stream {
        stats: InputStats::new(&name),
        name,
        rx,
        pool,
        batch: Vec::new(),
        batch_len: 0,
        pos: 0,
        next_seq: 0,
        pending: BTreeMap::new(),
        total: None,
        places: 0,
        handles,
        done: false,
    }
}

fn serial<P, F>(
    input: Input,
    opts: Arc<ReadOptions>,
    prepare: F,
    tx: SyncSender<Msg<P>>,
    pool: Pool<P>,
) -> JoinHandle<()>
where
    P: Refill,
    F: FnMut(&Exchange, &mut P) + Send + 'static,
{
    let name = input.name.clone();
    thread::Builder::new()
        .name(format!("read {name}"))
        .spawn(move || {
            let mut sink = BatchSink::new(&tx, pool, prepare, false);
            let mut stats = InputStats::new(&input.name);
            let result = read(input, &opts, &mut stats, &mut sink);
            sink.flush(None, None, 0);
            stats.span = sink.span;
            let _ = tx.send(Msg::Done {
                batches: sink.seq,
                result: result.map(|()| stats),
            });
        })
        .expect("spawning a reader thread")
}

pub(super) struct BatchSink<'a, P, F> {
    batch: Vec<Item<P>>,
    filled: usize,
    tx: &'a SyncSender<Msg<P>>,
    pool: Pool<P>,
    prepare: F,
    pub(super) seq: u64,
    /// A chunk's sink sends one batch, whole, when the chunk is parsed.
    chunk: bool,
    /// The consumer stopped listening: read on without sending.
    pub(super) gone: bool,
    pub(super) span: Option<(Timestamp, Timestamp)>,
}

impl<'a, P: Refill, F: FnMut(&Exchange, &mut P)> BatchSink<'a, P, F> {
    pub(super) fn new(tx: &'a SyncSender<Msg<P>>, pool: Pool<P>, prepare: F, chunk: bool) -> Self {
        BatchSink {
            batch: take_batch(&pool),
            filled: 0,
            tx,
            pool,
            prepare,
            seq: 0,
            chunk,
            gone: false,
            span: None,
        }
    }

    /// Sends what is filled (with the chunk's stats and error when parsing
    /// chunks).
    pub(super) fn flush(
        &mut self,
        stats: Option<InputStats>,
        error: Option<CaptureError>,
        places: u64,
    ) {
        if self.gone || (self.filled == 0 && stats.is_none()) {
            return;
        }
        // A chunk's sink sends once and is dropped: no next batch to fill.
        let fresh = if self.chunk {
            Vec::new()
        } else {
            take_batch(&self.pool)
        };
        let items = std::mem::replace(&mut self.batch, fresh);
        let filled = std::mem::take(&mut self.filled);
        let msg = Msg::Batch {
            seq: self.seq,
            items,
            filled,
            stats,
            error,
            places,
        };
        self.seq += 1;
        self.gone = self.tx.send(msg).is_err();
    }
}

impl<P, F> Drop for BatchSink<'_, P, F> {
    fn drop(&mut self) {
        let b = std::mem::take(&mut self.batch);
        if b.capacity() > 0 {
            self.pool.lock().expect("pool lock").push(b);
        }
    }
}

impl<P: Refill, F: FnMut(&Exchange, &mut P)> Sink for BatchSink<'_, P, F> {
    fn slot(&mut self) -> &mut Exchange {
        // Recycled items ahead are fetched in steps (see
        // `Exchange::warm_buffers`): the item itself, then the buffers it
        // points to, then the header strings its list points to.
        if let Some(far) = self.batch.get(self.filled + 2 * FILL_AHEAD) {
            prefetch_lines(far);
        }
        if let Some(mid) = self.batch.get(self.filled + FILL_AHEAD) {
            mid.x.warm_buffers();
            mid.prep.warm_buffers();
        }
        if let Some(near) = self.batch.get(self.filled + FILL_AHEAD / 2) {
            near.x.warm_headers();
        }
        if self.filled == self.batch.len() {
            self.batch.push(Item::default());
        }
        &mut self.batch[self.filled].x
    }

    fn commit(&mut self) {
        let item = &mut self.batch[self.filled];
        let t = item.x.time;
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        (self.prepare)(&item.x, &mut item.prep);
        self.filled += 1;
        if self.filled == BATCH && !self.chunk {
            self.flush(None, None, 0);
        }
    }
}

enum Pulled {
    More,
    End,
}

impl<P> Stream<P> {
    fn current(&self) -> Option<&Item<P>> {
        self.batch[..self.batch_len].get(self.pos)
    }

    /// The item `n` places after the current one, if its batch holds it.
    fn ahead(&self, n: usize) -> Option<&Item<P>> {
        self.batch[..self.batch_len].get(self.pos + n)
    }

    /// Moves to the next exchange (`first`: onto the first one), fetching
    /// batches in order as they are spent.
    fn pull(&mut self, first: bool) -> Result<Pulled, CaptureError> {
        if !first {
            self.pos += 1;
        }
        while self.pos >= self.batch_len {
            let spent = std::mem::take(&mut self.batch);
            self.batch_len = 0;
            if spent.capacity() > 0 {
                self.pool.lock().expect("pool lock").push(spent);
            }
            self.pos = 0;
            if let Some((items, filled, stats, error, places)) = self.pending.remove(&self.next_seq)
            {
                self.next_seq += 1;
                self.batch = items;
                self.batch_len = filled;
                if let Some(s) = stats {
                    self.stats.absorb(&s, self.places);
                }
                self.places += places;
                if let Some(e) = error {
                    self.finish();
                    return Err(e);
                }
                continue;
            }
            if self.total.is_some_and(|t| self.next_seq >= t) {
                self.finish();
                usable(&self.stats)?;
                return Ok(Pulled::End);
            }
            match self.rx.recv() {
                Ok(Msg::Batch {
                    seq,
                    items,
                    filled,
                    stats,
                    error,
                    places,
                }) => {
                    self.pending
                        .insert(seq, (items, filled, stats, error, places));
                }
                Ok(Msg::Done { batches, result }) => {
                    let base = result?;
                    self.stats.format = base.format;
                    self.stats.place = base.place;
                    self.stats.absorb(&base, 0);
                    self.total = Some(batches);
                }
                Err(_) => {
                    self.finish();
                    return Err(CaptureError::Internal {
                        path: self.name.clone(),
                        message: "a reader thread panicked".into(),
                    });
                }
            }
        }
        Ok(Pulled::More)
    }

    /// Stops listening and waits for the producers. Producers still sending
    /// (after an error cut reading short) see the channel closed and stop.
    fn finish(&mut self) {
        self.done = true;
        let (_, rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Fetches every cache line of `item` itself (not what it points to).
fn prefetch_lines<P>(item: &Item<P>) {
    let at = std::ptr::from_ref(item).cast::<u8>();
    for off in (0..std::mem::size_of::<Item<P>>()).step_by(64) {
        super::prefetch(at.wrapping_add(off));
    }
}

/// How many items ahead of the one being filled a parse thread warms.
const FILL_AHEAD: usize = 4;

/// How many exchanges ahead of the one handed out [`Merged`] warms.
const WARM_AHEAD: usize = 6;

/// Interleaves several inputs into one stream ordered by request time (each
/// input keeps its own order), tagging each exchange with its input's index.
pub struct Merged<P> {
    streams: Vec<Stream<P>>,
    heap: BinaryHeap<Reverse<(Timestamp, usize)>>,
    ended: Vec<bool>,
    /// The stream whose current item was handed out last; it moves on at
    /// the next call.
    lent: Option<usize>,
    primed: bool,
}

impl<P> Merged<P> {
    pub fn new(streams: Vec<Stream<P>>) -> Merged<P> {
        let n = streams.len();
        Merged {
            streams,
            heap: BinaryHeap::with_capacity(n),
            ended: vec![false; n],
            lent: None,
            primed: false,
        }
    }

    /// The next exchange in time order, with the index of its input.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<(usize, &Item<P>)>, CaptureError> {
        self.next_warming(|_| {})
    }

    /// [`Merged::next`], calling `warm` on the exchange [`WARM_AHEAD`]
    /// places after it in its input (when its batch holds one that far
    /// on), to prefetch what using that one will read: the items were
    /// filled on other threads, and reading them cold was the merging
    /// thread's largest cost. The item itself is fetched further ahead
    /// still, since its fields point to the rest.
    pub fn next_warming(
        &mut self,
        warm: impl FnOnce(&Item<P>),
    ) -> Result<Option<(usize, &Item<P>)>, CaptureError> {
        if !self.primed {
            self.primed = true;
            for i in 0..self.streams.len() {
                let first = self.streams[i].pull(true)?;
                self.queue(i, first);
            }
        }
        if let Some(i) = self.lent.take() {
            let next = self.streams[i].pull(false)?;
            self.queue(i, next);
        }
        let Some(Reverse((_, i))) = self.heap.pop() else {
            return Ok(None);
        };
        self.lent = Some(i);
        if let Some(far) = self.streams[i].ahead(2 * WARM_AHEAD) {
            prefetch_lines(far);
        }
        if let Some(ahead) = self.streams[i].ahead(WARM_AHEAD) {
            warm(ahead);
        }
        Ok(Some((
            i,
            self.streams[i]
                .current()
                .expect("queued stream has an item"),
        )))
    }

    fn queue(&mut self, i: usize, pulled: Pulled) {
        match pulled {
            Pulled::More => {
                let t = self.streams[i].current().expect("pulled").x.time;
                self.heap.push(Reverse((t, i)));
            }
            Pulled::End => self.ended[i] = true,
        }
    }

    /// What was read from each input, in input order.
    pub fn into_stats(self) -> Vec<InputStats> {
        self.streams.into_iter().map(|s| s.stats.clone()).collect()
    }

    pub fn input_count(&self) -> usize {
        self.streams.len()
    }
}

impl<P> Drop for Stream<P> {
    fn drop(&mut self) {
        // Unblock producers still sending, then let them finish on their own.
        if !self.done {
            let (_, rx) = sync_channel(0);
            drop(std::mem::replace(&mut self.rx, rx));
        }
    }
}
