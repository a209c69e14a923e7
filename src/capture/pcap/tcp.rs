//! One direction of a TCP connection, put back in order.
//!
//! Sequence numbers are turned into offsets in the byte stream (32-bit
//! wrap-around handled). In-order data is handed on without copying;
//! segments ahead of a hole are copied and held until the hole fills.
//! Retransmissions and overlaps are trimmed to the bytes not yet delivered.
//!
//! A hole that will never fill — the capture dropped the segment — is known
//! for sure when the peer acknowledges bytes past it while later data is
//! already here; it is also given up on when the held data passes the
//! flow's memory limit, or when the connection ends. The consumer is then
//! told how many bytes are missing (a gap) and carries on after them.

use std::collections::BTreeMap;

use crate::model::Timestamp;

/// What the consumer of a stream is told.
pub enum Event<'a> {
    /// The next bytes of the stream, seen at `ts`.
    Data(&'a [u8], Timestamp),
    /// `n` bytes of the stream were not captured.
    Gap(u64, Timestamp),
}

struct Held {
    data: Vec<u8>,
    /// Bytes after `data` that were not captured.
    missing: u32,
    ts: Timestamp,
}

/// One direction's reassembly state.
#[derive(Default)]
pub struct Stream {
    /// The sequence number of the next byte to deliver, once known.
    next: Option<u32>,
    /// The stream offset of `next`.
    pos: u64,
    /// Data ahead of `pos`, by stream offset.
    held: BTreeMap<u64, Held>,
    pub held_bytes: usize,
    /// No later than the capture time of the oldest held segment.
    held_since: Option<Timestamp>,
    /// Highest stream offset the peer acknowledged.
    acked: u64,
    /// Stream offset of the FIN, once seen.
    fin_at: Option<u64>,
    /// The first segment seen carried no SYN: the capture began mid-stream.
    pub mid_stream: bool,
    pub retransmitted: u64,
    pub gap_bytes: u64,
    /// Holes given up on before their time because the data held after
    /// them passed the memory limit, and the bytes then held.
    pub cut_holes: u64,
    pub cut_bytes: u64,
}

impl Stream {
    /// Stream offset delivered so far (data and gaps).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// When the oldest data still held was captured: bytes that may yet
    /// start a message.
    pub fn held_since(&self) -> Option<Timestamp> {
        self.held_since.filter(|_| !self.held.is_empty())
    }

    pub fn fin_seen(&self) -> bool {
        self.fin_at.is_some()
    }

    pub fn finished(&self) -> bool {
        self.fin_at.is_some_and(|f| self.pos >= f)
    }

    /// The stream offset of sequence number `seq` (near the current one).
    fn offset_of(&self, next: u32, seq: u32) -> Option<u64> {
        let d = i64::from(seq.wrapping_sub(next) as i32);
        u64::try_from(self.pos as i64 + d).ok()
    }

    /// A segment of this direction. `limit` is how many bytes may be held
    /// ahead of a hole.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
        missing: u32,
        ts: Timestamp,
        limit: usize,
        out: &mut dyn FnMut(Event),
    ) {
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        let next = match self.next {
            Some(n) => n,
            None => {
                if !syn && payload.is_empty() && !fin {
                    return;
                }
                self.mid_stream = !syn;
                self.next = Some(data_seq);
                data_seq
            }
        };
        let Some(start) = self.offset_of(next, data_seq) else {
            self.retransmitted += 1;
            return;
        };
        let len = payload.len() as u64 + u64::from(missing);
        if fin {
            self.fin_at.get_or_insert(start + len);
        }
        if start + len <= self.pos {
            if len > 0 {
                self.retransmitted += 1;
            }
        } else if start <= self.pos {
            let skip = (self.pos - start) as usize;
            self.deliver(payload.get(skip..).unwrap_or(&[]), ts, out);
            if missing > 0 {
                let lost = (start + len - self.pos).min(u64::from(missing));
                self.gap(lost, ts, out);
            }
            self.drain(Some(ts), out);
        } else {
            self.hold(start, payload, missing, ts);
            if self.acked > self.pos {
                // The peer has the bytes up to `acked`: those not here were
                // lost to the capture, not to the network.
                self.skip_to(self.acked, out);
            }
            if self.held_bytes > limit {
                self.give_up(out);
            }
        }
    }

    /// The peer acknowledged up to sequence number `ack`.
    pub fn acknowledged(&mut self, ack: u32, out: &mut dyn FnMut(Event)) {
        if let Some(next) = self.next
            && let Some(off) = self.offset_of(next, ack)
            && off > self.acked
        {
            self.acked = off;
            if off > self.pos && !self.held.is_empty() {
                self.skip_to(off, out);
            }
        }
    }

    /// Memory is short: the holes are given up on now, and what is held is
    /// delivered (counted as cut).
    pub fn give_up(&mut self, out: &mut dyn FnMut(Event)) {
        if self.held_bytes > 0 {
            self.cut_holes += 1;
            self.cut_bytes += self.held_bytes as u64;
            self.skip_to(u64::MAX, out);
        }
    }

    /// The connection is over: what is held is delivered, with gaps for the
    /// holes before it.
    pub fn flush(&mut self, out: &mut dyn FnMut(Event)) {
        self.skip_to(u64::MAX, out);
    }

    /// Gives up on the holes before `to` and delivers what then follows:
    /// held data up to `to`, or everything held for `u64::MAX`.
    fn skip_to(&mut self, to: u64, out: &mut dyn FnMut(Event)) {
        while let Some((&first, h)) = self.held.first_key_value() {
            if first > to {
                break;
            }
            if first > self.pos {
                let ts = h.ts;
                self.gap(first - self.pos, ts, out);
            }
            self.drain(None, out);
        }
    }

    fn gap(&mut self, n: u64, ts: Timestamp, out: &mut dyn FnMut(Event)) {
        self.pos += n;
        self.gap_bytes += n;
        self.advance(n);
        out(Event::Gap(n, ts));
    }

    fn deliver(&mut self, bytes: &[u8], ts: Timestamp, out: &mut dyn FnMut(Event)) {
        if bytes.is_empty() {
            return;
        }
        self.pos += bytes.len() as u64;
        self.advance(bytes.len() as u64);
        out(Event::Data(bytes, ts));
    }

    fn advance(&mut self, n: u64) {
        if let Some(next) = &mut self.next {
            *next = next.wrapping_add(n as u32);
        }
    }

    /// Delivers held segments that the delivered data has reached. They
    /// reached the receiver when the hole before them filled (`filled_at`),
    /// or, when a hole was given up on, when they were captured.
    fn drain(&mut self, filled_at: Option<Timestamp>, out: &mut dyn FnMut(Event)) {
        while let Some(entry) = self.held.first_entry() {
            let start = *entry.key();
            if start > self.pos {
                return;
            }
            let h = entry.remove();
            self.held_bytes -= h.data.len();
            let end = start + h.data.len() as u64 + u64::from(h.missing);
            if end <= self.pos {
                self.retransmitted += 1;
                continue;
            }
            let ts = filled_at.map_or(h.ts, |t| t.max(h.ts));
            let skip = (self.pos - start) as usize;
            self.deliver(h.data.get(skip..).unwrap_or(&[]), ts, out);
            if end > self.pos {
                self.gap(end - self.pos, ts, out);
            }
        }
    }

    fn hold(&mut self, start: u64, payload: &[u8], missing: u32, ts: Timestamp) {
        if payload.is_empty() && missing == 0 {
            return;
        }
        if let Some(h) = self.held.get(&start)
            && h.data.len() >= payload.len()
        {
            self.retransmitted += 1;
            return;
        }
        self.held_bytes += payload.len();
        self.held_since = match self.held_since {
            Some(t) if !self.held.is_empty() => Some(t.min(ts)),
            _ => Some(ts),
        };
        let held = Held {
            data: payload.to_vec(),
            missing,
            ts,
        };
        if let Some(old) = self.held.insert(start, held) {
            self.held_bytes -= old.data.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_micros(0);

    /// Delivered bytes, with `~N~` for an N-byte gap.
    fn run(s: &mut Stream, out: &mut String, f: impl FnOnce(&mut Stream, &mut dyn FnMut(Event))) {
        f(s, &mut |ev| match ev {
            Event::Data(b, _) => out.push_str(std::str::from_utf8(b).unwrap()),
            Event::Gap(n, _) => out.push_str(&format!("~{n}~")),
        });
    }

    fn seg(s: &mut Stream, out: &mut String, seq: u32, data: &str) {
        run(s, out, |s, o| {
            s.segment(seq, false, false, data.as_bytes(), 0, T, 1 << 20, o)
        });
    }

    #[test]
    fn in_order_out_of_order_retransmitted_and_overlapping() {
        let mut s = Stream::default();
        let mut out = String::new();
        run(&mut s, &mut out, |s, o| {
            s.segment(99, true, false, b"", 0, T, 1 << 20, o)
        });
        seg(&mut s, &mut out, 100, "hello,");
        seg(&mut s, &mut out, 112, "orld!"); // ahead of a hole
        assert_eq!(out, "hello,");
        seg(&mut s, &mut out, 100, "hello,"); // retransmitted
        seg(&mut s, &mut out, 104, "o, big wo"); // overlaps both sides of the hole
        assert_eq!(out, "hello, big world!");
        assert_eq!(s.retransmitted, 1);
        assert_eq!(s.held_bytes, 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Stream::default();
        let mut out = String::new();
        seg(&mut s, &mut out, u32::MAX - 2, "abc");
        seg(&mut s, &mut out, 0, "def");
        assert_eq!(out, "abcdef");
        assert!(s.mid_stream);
    }

    #[test]
    fn an_acknowledged_hole_is_a_gap() {
        let mut s = Stream::default();
        let mut out = String::new();
        seg(&mut s, &mut out, 1000, "aaaa");
        run(&mut s, &mut out, |s, o| s.acknowledged(1012, o)); // nothing held yet
        seg(&mut s, &mut out, 1012, "cccc");
        assert_eq!(out, "aaaa~8~cccc");
        assert_eq!(s.gap_bytes, 8);
    }

    #[test]
    fn the_memory_limit_gives_holes_up() {
        let mut s = Stream::default();
        let mut out = String::new();
        seg(&mut s, &mut out, 1, "a");
        run(&mut s, &mut out, |s, o| {
            s.segment(10, false, false, b"0123456789", 0, T, 8, o)
        });
        assert_eq!(out, "a~8~0123456789");
        assert_eq!((s.cut_holes, s.cut_bytes), (1, 10));
    }

    #[test]
    fn flush_delivers_what_is_held_with_gaps() {
        let mut s = Stream::default();
        let mut out = String::new();
        seg(&mut s, &mut out, 1, "a");
        seg(&mut s, &mut out, 5, "e");
        seg(&mut s, &mut out, 3, "c");
        run(&mut s, &mut out, |s, o| s.flush(o));
        assert_eq!(out, "a~1~c~1~e");
    }

    #[test]
    fn uncaptured_tails_are_gaps_and_fin_ends_the_stream() {
        let mut s = Stream::default();
        let mut out = String::new();
        run(&mut s, &mut out, |s, o| {
            s.segment(1, false, false, b"ab", 3, T, 64, o)
        });
        run(&mut s, &mut out, |s, o| {
            s.segment(6, false, true, b"f", 0, T, 64, o)
        });
        assert_eq!(out, "ab~3~f");
        assert!(s.finished());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The segments of a stream in any order, repeated, overlapping
            /// (but all there): the stream comes out whole and in order.
            #[test]
            fn any_order_gives_the_stream_back(
                len in 1usize..3000,
                cuts in proptest::collection::vec((0usize..3000, 1usize..600), 1..40),
                isn in any::<u32>(),
            ) {
                let stream: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                // Segments: random pieces, plus a tiling so every byte is sent.
                let mut segs: Vec<(usize, usize)> = cuts
                    .iter()
                    .map(|&(a, n)| (a % len, (a % len + n).min(len)))
                    .collect();
                segs.extend((0..len).step_by(500).map(|a| (a, (a + 500).min(len))));
                let mut s = Stream::default();
                let mut out = Vec::new();
                let mut emit = |ev: Event| match ev {
                    Event::Data(b, _) => out.extend_from_slice(b),
                    Event::Gap(..) => panic!("nothing was lost"),
                };
                s.segment(isn, true, false, b"", 0, T, usize::MAX, &mut emit);
                for (a, b) in segs {
                    let seq = isn.wrapping_add(1).wrapping_add(a as u32);
                    s.segment(seq, false, false, &stream[a..b], 0, T, usize::MAX, &mut emit);
                }
                s.flush(&mut emit);
                prop_assert_eq!(out, stream);
                prop_assert_eq!(s.held_bytes, 0);
            }

            /// Any segments at all: no panic, and what is held stays under
            /// the limit.
            #[test]
            fn any_segments_stay_bounded(
                segs in proptest::collection::vec(
                    (any::<u32>(), any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200), 0u32..50, any::<Option<u32>>()),
                    0..60,
                ),
                limit in 0usize..2000,
            ) {
                let mut s = Stream::default();
                let mut delivered = 0u64;
                let mut emit = |ev: Event| match ev {
                    Event::Data(b, _) => delivered += b.len() as u64,
                    Event::Gap(n, _) => delivered += n,
                };
                for (seq, syn, fin, data, missing, ack) in segs {
                    s.segment(seq, syn, fin, &data, missing, T, limit, &mut emit);
                    prop_assert!(s.held_bytes <= limit.max(200));
                    if let Some(a) = ack {
                        s.acknowledged(a, &mut emit);
                    }
                }
                s.flush(&mut emit);
                prop_assert_eq!(delivered, s.position());
            }
        }
    }
}
