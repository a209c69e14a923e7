//! Packet captures (pcap, pcapng) → exchanges.
//!
//! The layers, each its own file: `file` reads records (pcap-parser),
//! `link` peels link and IP headers to TCP segments (etherparse),
//! `tcp` puts each direction of a connection back in order, `http`
//! finds HTTP/1.x messages in the bytes (`head` parses their heads), and
//! `conv` pairs requests with their responses into [`Exchange`]s; `flow`
//! holds a connection's parts together, `tally` counts what else was
//! seen. This file drives them packet by packet.
//!
//! A request's exchange is complete only when its response is, so
//! exchanges finish out of order; they are held back until no request
//! still open on any connection began earlier, and handed on in order of
//! their first byte, as the modeller expects (a bounded wait: a request
//! that never sees its response ends with its connection).
//!
//! Memory is bounded: per connection by `max_flow_bytes` (data held behind
//! a hole, message heads, request bodies kept for templates), over all of
//! them by `max_buffered_bytes`, and connections idle for long are closed.
//! What the limits cut is counted and reported.

mod conv;
mod file;
mod flow;
mod head;
mod http;
mod link;
mod tally;
mod tcp;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::{CaptureError, Exchange, InputStats, Sink};
use crate::model::Timestamp;
use conv::Shared;
use file::{Packet, Records, Stop};
use flow::Flow;
use link::{Decoded, Decoder, Segment};
pub use tally::Tally;

/// Default of `--max-flow-bytes`.
pub const DEFAULT_MAX_FLOW_BYTES: usize = 16 << 20;
/// Default of `--max-buffered-bytes`.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 512 << 20;
/// A connection with no packet for this long is closed.
const IDLE_US: i64 = 300_000_000;
/// How often (in capture time) idle connections are looked for.
const SWEEP_US: i64 = 10_000_000;
/// How long a connection closed both ways waits for bytes missing before
/// its FINs (a late retransmission) before it is ended without them.
const LINGER_US: i64 = 2_000_000;
/// Exchanges waiting for an earlier request before they are handed on
/// regardless (the late request is then re-timed, and counted).
const MAX_WAITING: usize = 20_000;
/// What a connection costs besides its buffers, for the overall limit.
const FLOW_COST: usize = 2 << 10;
/// Packet times past 9999-12-31 are damage (and cannot be written as dates).
const LAST_TIME_US: i64 = 253_402_300_799_999_999;

/// Options of the pcap reader.
#[derive(Clone, Debug)]
pub struct PcapOptions {
    /// Only connections to these server ports; empty: any port where HTTP
    /// is found.
    pub ports: Vec<u16>,
    /// Most bytes one connection may hold.
    pub max_flow_bytes: usize,
    /// Most bytes all connections together may hold.
    pub max_buffered_bytes: usize,
}

impl Default for PcapOptions {
    fn default() -> Self {
        PcapOptions {
            ports: Vec::new(),
            max_flow_bytes: DEFAULT_MAX_FLOW_BYTES,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
        }
    }
}

/// Reads a capture, handing each exchange to `sink` in request order.
pub fn read(
    path: &str,
    input: impl Read,
    opts: &PcapOptions,
    stats: &mut InputStats,
    sink: &mut dyn Sink,
) -> Result<(), CaptureError> {
    stats.place = "byte";
    let mut records = Records::open(input).map_err(|s| stop_error(path, s))?;
    let mut decoder = Decoder::default();
    let mut conns = Conns::new(opts);
    let stop = loop {
        match records.next() {
            Ok(Some(p)) => {
                conns.packet(&p, &mut decoder);
                conns.emit(sink, stats, false);
            }
            Ok(None) => break None,
            Err(stop) => break Some(stop),
        }
    };
    conns.tally.fragments_reassembled = decoder.reassembled;
    conns.tally.fragments_dropped = decoder.fragments_dropped;
    conns.finish_all(sink, stats);
    if records.undeclared > 0 {
        stats.warnings.push(format!(
            "{} packets on interfaces no interface block describes were skipped",
            records.undeclared
        ));
    }
    for (link, n) in &conns.tally.unsupported_links {
        stats.warnings.push(format!(
            "{n} packets of link type {link} were skipped: that link type is not supported"
        ));
    }
    stats.pcap = Some(conns.tally);
    match stop {
        None => Ok(()),
        Some(stop) => stopped(path, stop, stats),
    }
}

/// Reading stopped before the end: a warning when something was read
/// before, an error when nothing was.
fn stopped(path: &str, stop: Stop, stats: &mut InputStats) -> Result<(), CaptureError> {
    let warning = match stop {
        _ if stats.accepted == 0 => return Err(stop_error(path, stop)),
        Stop::Truncated { offset, message } => format!(
            "the capture is truncated at byte {offset} ({message}); everything before it was read"
        ),
        Stop::Damaged { offset, message } => {
            format!("the capture is damaged at byte {offset} ({message}); reading stopped there")
        }
        Stop::Io(source) => {
            return Err(CaptureError::Io {
                path: path.to_string(),
                error: source,
            });
        }
    };
    stats.warnings.push(warning);
    Ok(())
}

fn stop_error(path: &str, stop: Stop) -> CaptureError {
    match stop {
        Stop::Truncated { offset, message } | Stop::Damaged { offset, message } => {
            CaptureError::At {
                path: path.to_string(),
                offset,
                message,
            }
        }
        Stop::Io(source) => CaptureError::Io {
            path: path.to_string(),
            error: source,
        },
    }
}

type Key = (IpAddr, u16, IpAddr, u16);

fn key(s: &Segment) -> Key {
    if (s.src, s.sport) <= (s.dst, s.dport) {
        (s.src, s.sport, s.dst, s.dport)
    } else {
        (s.dst, s.dport, s.src, s.sport)
    }
}

/// The connections of a capture and the exchanges they finished.
struct Conns<'o> {
    opts: &'o PcapOptions,
    flows: FxHashMap<Key, Flow>,
    next_id: u64,
    /// (first byte, flow) of each flow's oldest open request.
    open: BTreeSet<(Timestamp, u64)>,
    /// Finished exchanges waiting for their turn, by (first byte, order).
    waiting: BTreeMap<(Timestamp, u64), Exchange>,
    order: u64,
    /// The time of the last exchange handed on.
    last: Timestamp,
    shared: Shared,
    held: usize,
    /// Connections closed both ways with bytes missing, by when.
    closing: std::collections::VecDeque<(Timestamp, Key, u64)>,
    /// The latest packet time seen.
    now: Timestamp,
    swept: Timestamp,
    tally: Tally,
}

impl<'o> Conns<'o> {
    fn new(opts: &'o PcapOptions) -> Conns<'o> {
        Conns {
            opts,
            flows: FxHashMap::default(),
            next_id: 0,
            open: BTreeSet::new(),
            waiting: BTreeMap::new(),
            order: 0,
            last: Timestamp::default(),
            shared: Shared {
                body_limit: conv::MAX_BODY.min(opts.max_flow_bytes),
                ..Shared::default()
            },
            held: 0,
            closing: std::collections::VecDeque::new(),
            now: Timestamp::default(),
            swept: Timestamp::default(),
            tally: Tally::default(),
        }
    }

    /// One packet of the capture.
    fn packet(&mut self, p: &Packet, decoder: &mut Decoder) {
        let t = &mut self.tally;
        t.packets += 1;
        if !(0..=LAST_TIME_US).contains(&p.ts.as_micros()) {
            *t.malformed_packets.entry("time out of range").or_default() += 1;
            return;
        }
        self.now = self.now.max(p.ts);
        match decoder.decode(p.link, p.data, p.orig_len, p.ts) {
            Decoded::Tcp(seg) => self.segment(&seg, p.ts, p.offset),
            Decoded::Other => t.other_packets += 1,
            Decoded::Fragment => {}
            Decoded::Unsupported => {
                *t.unsupported_links
                    .entry(link::link_name(p.link))
                    .or_default() += 1
            }
            Decoded::Malformed(why) => *t.malformed_packets.entry(why).or_default() += 1,
        }
    }

    fn segment(&mut self, seg: &Segment, ts: Timestamp, offset: u64) {
        self.tally.tcp_packets += 1;
        let key = key(seg);
        if self.flows.get(&key).is_some_and(|f| f.reopened_by(seg)) {
            self.close(&key);
        }
        if !self.flows.contains_key(&key) && !self.open_flow(key, seg, ts) {
            return;
        }
        let flow = self.flows.get_mut(&key).expect("present");
        self.shared.packet_offset = offset;
        let before = flow.held();
        flow.packet(seg, ts, &mut self.shared, self.opts.max_flow_bytes);
        // Idleness is measured against the capture's progress, so a clock
        // behind the others (another interface) does not close connections.
        flow.last_seen = self.now;
        self.held = self.held + flow.held() - before;
        if self.held > self.opts.max_buffered_bytes {
            let before = flow.held();
            flow.cut(&mut self.shared);
            self.held = self.held + flow.held() - before;
        }
        register(&mut self.open, flow);
        if flow.closed() {
            self.close(&key);
        } else if flow.closing() && !self.closing.iter().any(|c| c.2 == flow.id) {
            self.closing.push_back((self.now, key, flow.id));
        }
        self.linger_over();
        if ts.as_micros() - self.swept.as_micros() > SWEEP_US {
            self.sweep(ts);
        }
    }

    /// Starts tracking a connection at `seg`, unless it is not to be read.
    fn open_flow(&mut self, key: Key, seg: &Segment, ts: Timestamp) -> bool {
        if !seg.syn && seg.payload.is_empty() {
            // The tail of a connection already closed, or one that carries
            // nothing: not worth tracking.
            return false;
        }
        let ports = &self.opts.ports;
        let src_serves = if ports.is_empty() {
            None
        } else {
            match (ports.contains(&seg.sport), ports.contains(&seg.dport)) {
                (false, false) => {
                    self.tally.other_port_packets += 1;
                    return false;
                }
                (true, false) => Some(true),
                (false, true) => Some(false),
                (true, true) => None,
            }
        };
        if seg.syn && seg.ack.is_none() && !ports.is_empty() && !ports.contains(&seg.dport) {
            self.tally.other_port_packets += 1;
            return false;
        }
        if self.held + FLOW_COST * (self.flows.len() + 1) > self.opts.max_buffered_bytes {
            self.sweep_oldest();
        }
        let flow = Flow::new(self.next_id, seg, ts, src_serves, self.opts.max_flow_bytes);
        self.next_id += 1;
        self.flows.insert(key, flow);
        true
    }

    /// Ends a connection and forgets it.
    fn close(&mut self, key: &Key) {
        let Some(mut flow) = self.flows.remove(key) else {
            return;
        };
        let before = flow.held();
        flow.finish(&mut self.shared);
        self.held -= before.min(self.held);
        flow.registered
            .take()
            .map(|t| self.open.remove(&(t, flow.id)));
        let t = flow.tcp_tallies();
        self.tally.retransmitted_segments += t[0];
        self.tally.gap_bytes += t[1];
        self.tally.cut_holes += t[2];
        self.tally.cut_bytes += t[3];
        if let Some(why) = flow.not_http {
            *self.tally.not_http.entry(why.name()).or_default() += 1;
        } else if flow.spoke_http() {
            self.tally.http_connections += 1;
            if let Some(p) = flow.server_port() {
                *self.tally.server_ports.entry(p).or_default() += 1;
            }
        }
    }

    /// Ends the connections closed both ways that waited long enough for
    /// their missing bytes.
    fn linger_over(&mut self) {
        while let Some(&(since, key, id)) = self.closing.front() {
            if self.now.as_micros() - since.as_micros() < LINGER_US {
                return;
            }
            self.closing.pop_front();
            if self.flows.get(&key).is_some_and(|f| f.id == id) {
                self.tally.ended_with_holes += 1;
                self.close(&key);
            }
        }
    }

    /// Closes connections idle for long.
    fn sweep(&mut self, now: Timestamp) {
        self.swept = now;
        let cutoff = now.as_micros() - IDLE_US;
        let mut idle: Vec<(u64, Key)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.last_seen.as_micros() < cutoff)
            .map(|(k, f)| (f.id, *k))
            .collect();
        idle.sort_unstable();
        self.tally.closed_idle += idle.len() as u64;
        for (_, k) in idle {
            self.close(&k);
        }
    }

    /// Too many connections for the overall limit: the least recently
    /// active half is closed.
    fn sweep_oldest(&mut self) {
        let mut all: Vec<(Timestamp, u64, Key)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.last_seen, f.id, *k))
            .collect();
        all.sort_unstable();
        let n = all.len().div_ceil(2);
        self.tally.closed_idle += n as u64;
        for (_, _, k) in all.into_iter().take(n) {
            self.close(&k);
        }
    }

    /// Hands on the exchanges whose turn has come (all of them at the end).
    fn emit(&mut self, sink: &mut dyn Sink, stats: &mut InputStats, all: bool) {
        for x in self.shared.done.drain(..) {
            self.waiting.insert((x.time, self.order), x);
            self.order += 1;
        }
        for (at, why) in self.shared.dropped.drain(..) {
            stats.records += 1;
            stats.skip(at, why);
        }
        let open = self
            .open
            .first()
            .map_or(self.now, |(t, _)| (*t).min(self.now));
        loop {
            let over = self.waiting.len() > MAX_WAITING;
            let Some(entry) = self.waiting.first_entry() else {
                break;
            };
            if !(all || over || entry.key().0 <= open) {
                break;
            }
            let mut x = entry.remove();
            if x.time < self.last {
                x.time = self.last;
                self.tally.retimed += 1;
            }
            self.last = x.time;
            stats.records += 1;
            stats.accepted += 1;
            std::mem::swap(sink.slot(), &mut x);
            sink.commit();
            if self.shared.spare.len() < 256 {
                x.reset();
                self.shared.spare.push(x);
            }
        }
    }

    /// The end of the capture: every connection ends.
    fn finish_all(&mut self, sink: &mut dyn Sink, stats: &mut InputStats) {
        let mut keys: Vec<(u64, Key)> = self.flows.iter().map(|(k, f)| (f.id, *k)).collect();
        keys.sort_unstable();
        for (_, k) in keys {
            self.close(&k);
        }
        let s = &self.shared;
        let t = &mut self.tally;
        t.requests = s.requests;
        t.responses = s.responses;
        t.interim_responses = s.interim;
        t.unanswered = s.unanswered;
        t.orphan_responses = s.orphan_responses;
        t.lost_responses = s.lost_responses;
        t.damaged_responses = s.response_damaged;
        t.malformed_responses = s.malformed_responses;
        t.bodies_cut = s.bodies_cut;
        self.emit(sink, stats, true);
    }
}

/// Lists `flow` under the time of its oldest open request.
fn register(open: &mut BTreeSet<(Timestamp, u64)>, flow: &mut Flow) {
    let now = flow.oldest_open();
    if now != flow.registered {
        if let Some(t) = flow.registered {
            open.remove(&(t, flow.id));
        }
        if let Some(t) = now {
            open.insert((t, flow.id));
        }
        flow.registered = now;
    }
}
