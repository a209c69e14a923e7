//! Packet captures (pcap, pcapng) → exchanges.
//!
//! The layers, each its own file: [`file`] reads records (pcap-parser),
//! [`link`] peels link and IP headers to TCP segments (etherparse),
//! [`tcp`] puts each direction of a connection back in order, [`http`]
//! finds HTTP/1.x messages in the bytes, and [`conv`] pairs requests with
//! their responses into [`Exchange`]s; [`flow`] holds a connection's parts
//! together. This file drives them packet by packet.
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
mod http;
mod link;
mod tcp;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::{CaptureError, Exchange, InputStats, Sink};
use crate::model::Timestamp;
use crate::output::thousands;
use conv::Shared;
use file::{Records, Stop};
use flow::Flow;
use link::{Decoded, Decoder, Segment};

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

/// What reading a capture found besides exchanges, for the import report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub packets: u64,
    pub tcp_packets: u64,
    /// Packets that were not TCP over IP.
    pub other_packets: u64,
    pub malformed_packets: BTreeMap<&'static str, u64>,
    /// Packets of link types not read, by link type name.
    pub unsupported_links: BTreeMap<String, u64>,
    pub fragments_reassembled: u64,
    pub fragments_dropped: u64,
    /// Packets of connections on ports `--port` did not list.
    pub other_port_packets: u64,
    pub http_connections: u64,
    /// Connections set aside, by what they were.
    pub not_http: BTreeMap<&'static str, u64>,
    /// Connections carrying HTTP by server port.
    pub server_ports: BTreeMap<u16, u64>,
    pub requests: u64,
    /// Final responses read (interim 1xx ones aside).
    pub responses: u64,
    pub interim_responses: u64,
    pub unanswered: u64,
    /// Responses to requests the capture does not hold.
    pub orphan_responses: u64,
    /// Responses lost to capture gaps.
    pub lost_responses: u64,
    pub damaged_responses: u64,
    pub malformed_responses: u64,
    pub retransmitted_segments: u64,
    pub gap_bytes: u64,
    /// Holes given up on under the memory limits, and the bytes then held.
    pub cut_holes: u64,
    pub cut_bytes: u64,
    /// Request bodies not kept: larger than the limit.
    pub bodies_cut: u64,
    /// Connections closed before their end, idle or over the limit.
    pub closed_idle: u64,
    /// Connections ended a while after their FINs with bytes before them
    /// still missing.
    pub ended_with_holes: u64,
    /// Requests whose time was moved up to the one before, to keep the
    /// order when capture timestamps go backwards.
    pub retimed: u64,
}

impl Tally {
    /// Lines for the import report.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![format!(
            "{} packets ({} TCP); {} HTTP connections{}; {} requests, {} responses",
            thousands(self.packets),
            thousands(self.tcp_packets),
            thousands(self.http_connections),
            ports(&self.server_ports),
            thousands(self.requests),
            thousands(self.responses)
        )];
        let mut also = Vec::new();
        let mut add = |n: u64, what: &str| {
            if n > 0 {
                also.push(format!("{} {what}", thousands(n)));
            }
        };
        add(
            self.unanswered,
            "requests without a response in the capture",
        );
        add(self.lost_responses, "responses lost in capture gaps");
        add(self.orphan_responses, "responses to requests not captured");
        add(self.damaged_responses, "responses with bytes missing");
        add(self.malformed_responses, "malformed responses");
        add(self.interim_responses, "interim (1xx) responses");
        add(self.retransmitted_segments, "retransmitted segments");
        add(self.gap_bytes, "bytes not captured (gaps)");
        add(self.other_port_packets, "packets on other ports (--port)");
        add(
            self.fragments_reassembled,
            "packets reassembled from fragments",
        );
        add(self.fragments_dropped, "fragments dropped");
        add(self.closed_idle, "connections closed idle");
        add(
            self.ended_with_holes,
            "connections ended with bytes missing before their FIN",
        );
        add(
            self.retimed,
            "requests re-timed to keep order (capture timestamps go backwards)",
        );
        for (what, n) in &self.not_http {
            add(*n, &format!("connections set aside ({what})"));
        }
        for (what, n) in &self.malformed_packets {
            add(*n, &format!("packets skipped ({what})"));
        }
        if !also.is_empty() {
            out.push(also.join(", "));
        }
        if self.cut_holes > 0 || self.bodies_cut > 0 {
            out.push(format!(
                "memory limits cut: {} holes given up early with {} bytes held behind them (--max-flow-bytes, --max-buffered-bytes), {} request bodies not kept",
                thousands(self.cut_holes),
                thousands(self.cut_bytes),
                thousands(self.bodies_cut)
            ));
        }
        out
    }
}

fn ports(p: &BTreeMap<u16, u64>) -> String {
    if p.is_empty() {
        return String::new();
    }
    let list: Vec<String> = p
        .iter()
        .map(|(port, n)| format!("{port} ({})", thousands(*n)))
        .collect();
    format!(" on port {}", list.join(", "))
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
                conns.tally.packets += 1;
                if !(0..=LAST_TIME_US).contains(&p.ts.as_micros()) {
                    *conns
                        .tally
                        .malformed_packets
                        .entry("time out of range")
                        .or_default() += 1;
                    continue;
                }
                conns.now = conns.now.max(p.ts);
                match decoder.decode(p.link, p.data, p.orig_len, p.ts) {
                    Decoded::Tcp(seg) => conns.segment(&seg, p.ts, p.offset),
                    Decoded::Other => conns.tally.other_packets += 1,
                    Decoded::Fragment => {}
                    Decoded::Unsupported => {
                        *conns
                            .tally
                            .unsupported_links
                            .entry(link::link_name(p.link))
                            .or_default() += 1
                    }
                    Decoded::Malformed(why) => {
                        *conns.tally.malformed_packets.entry(why).or_default() += 1
                    }
                }
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
        Some(stop) if stats.accepted == 0 => Err(stop_error(path, stop)),
        Some(Stop::Truncated { offset, message }) => {
            stats.warnings.push(format!(
                "the capture is truncated at byte {offset} ({message}); everything before it was read"
            ));
            Ok(())
        }
        Some(Stop::Damaged { offset, message }) => {
            stats.warnings.push(format!(
                "the capture is damaged at byte {offset} ({message}); reading stopped there"
            ));
            Ok(())
        }
        Some(Stop::Io(e)) => Err(CaptureError::Io {
            path: path.to_string(),
            source: e,
        }),
    }
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
            source,
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
