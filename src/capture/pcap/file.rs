//! Capture files → packets: classic pcap (either byte order, micro- or
//! nanosecond timestamps, the "modified" variant) and pcapng (sections of
//! either byte order, any number of interfaces with their own link types and
//! timestamp resolutions, enhanced, simple and obsolete packet blocks).
//!
//! Records are parsed by pcap-parser from a buffer this reader fills in large
//! blocks, so every packet borrows from the buffer (no copy) and carries the
//! byte offset of its record: a damaged or truncated file is reported at the
//! place where it goes wrong.

use std::io::{self, Read};

use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{
    Linktype, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header,
};

use crate::model::Timestamp;

/// Larger records are damage, not packets (libpcap's largest snapshot length
/// is 256 KiB; pcapng blocks of other kinds stay far below this too).
const MAX_RECORD: usize = 16 << 20;
const READ_BLOCK: usize = 1 << 20;
const SHB: u32 = 0x0A0D_0D0A;
const OPB: u32 = 0x0000_0002;

/// One captured packet.
pub struct Packet<'a> {
    pub ts: Timestamp,
    pub link: Linktype,
    /// The captured bytes (maybe fewer than were on the wire).
    pub data: &'a [u8],
    /// How many bytes the packet had on the wire.
    pub orig_len: u32,
    /// Where its record starts in the (decompressed) input.
    pub offset: u64,
}

/// A packet found in the buffer, by position (so that finding it does not
/// hold a borrow of the reader).
struct Found {
    ts: Timestamp,
    link: Linktype,
    /// `buf` range of the captured bytes.
    data: (usize, usize),
    orig_len: u32,
    offset: u64,
}

/// Why reading stopped before the end of the input.
#[derive(Debug)]
pub enum Stop {
    /// The input ends inside a record: what came before is whole.
    Truncated { offset: u64, message: String },
    /// A record that cannot be one: reading cannot go on past it.
    Damaged { offset: u64, message: String },
    /// Reading the input failed.
    Io(io::Error),
}

struct Interface {
    link: Linktype,
    /// Timestamp units per second.
    units: u64,
    offset_secs: i64,
}

enum Kind {
    Legacy {
        big_endian: bool,
        /// The "modified" pcap of some old Linux tools: 8 more header bytes.
        modified: bool,
        nanos: bool,
        link: Linktype,
    },
    Ng {
        big_endian: bool,
        interfaces: Vec<Interface>,
        last_ts: Timestamp,
    },
}

/// Reads packets from a capture file, one at a time.
pub struct Records<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    eof: bool,
    kind: Kind,
    /// Packets on interfaces no interface block described.
    pub undeclared: u64,
}

impl<R: Read> Records<R> {
    /// Reads the file header (pcap) or first section header (pcapng).
    pub fn open(reader: R) -> Result<Records<R>, Stop> {
        let mut r = Records {
            reader,
            buf: vec![0; READ_BLOCK],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            kind: Kind::Ng {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts: Timestamp::default(),
            },
            undeclared: 0,
        };
        if !r.fill(24)? {
            if r.end >= 4 && r.buf[..4] == SHB.to_le_bytes() {
                return Ok(r);
            }
            return Err(truncated(0, "the file header is cut short"));
        }
        if r.buf[..4] == SHB.to_le_bytes() {
            return Ok(r);
        }
        let header = match parse_pcap_header(&r.buf[..24]) {
            Ok((_, h)) => h,
            Err(_) => return Err(damaged(0, "not a pcap or pcapng file")),
        };
        r.kind = Kind::Legacy {
            big_endian: header.is_bigendian(),
            modified: header.is_modified_format(),
            nanos: header.is_nanosecond_precision(),
            link: header.network,
        };
        r.start = 24;
        Ok(r)
    }

    /// Input offset of the next unread byte.
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The next packet, `None` at the end of the input.
    pub fn next(&mut self) -> Result<Option<Packet<'_>>, Stop> {
        match self.kind {
            Kind::Legacy { .. } => self.next_legacy(),
            Kind::Ng { .. } => self.next_ng(),
        }
    }

    fn next_legacy(&mut self) -> Result<Option<Packet<'_>>, Stop> {
        let Kind::Legacy {
            big_endian,
            modified,
            nanos,
            link,
        } = self.kind
        else {
            unreachable!("legacy reader")
        };
        let header = if modified { 24 } else { 16 };
        if !self.fill(header)? {
            return self.end_or_cut("a packet record header is cut short");
        }
        let at = self.position();
        let caplen = u32_at(&self.buf, self.start + 8, big_endian) as usize;
        if caplen > MAX_RECORD {
            return Err(damaged(
                at,
                &format!("a packet record claims {caplen} captured bytes"),
            ));
        }
        if !self.fill(header + caplen)? {
            return Err(truncated(
                at,
                &format!(
                    "the last packet record is cut short ({} of {} bytes)",
                    self.end - self.start,
                    header + caplen
                ),
            ));
        }
        let record = &self.buf[self.start..self.start + header + caplen];
        let parsed = if modified {
            parse_pcap_frame_modified(record)
        } else if big_endian {
            parse_pcap_frame_be(record)
        } else {
            parse_pcap_frame(record)
        };
        let Ok((_, frame)) = parsed else {
            return Err(damaged(at, "unreadable packet record"));
        };
        let frac = if nanos {
            i64::from(frame.ts_usec) / 1000
        } else {
            i64::from(frame.ts_usec)
        };
        let ts = Timestamp::from_micros(i64::from(frame.ts_sec) * 1_000_000 + frac);
        self.start += header + caplen;
        Ok(Some(Packet {
            ts,
            link,
            data: frame.data,
            orig_len: frame.origlen,
            offset: at,
        }))
    }

    fn next_ng(&mut self) -> Result<Option<Packet<'_>>, Stop> {
        let Some(f) = self.find_ng()? else {
            return Ok(None);
        };
        Ok(Some(Packet {
            ts: f.ts,
            link: f.link,
            data: &self.buf[f.data.0..f.data.1],
            orig_len: f.orig_len,
            offset: f.offset,
        }))
    }

    fn find_ng(&mut self) -> Result<Option<Found>, Stop> {
        loop {
            if !self.fill(12)? {
                return self.end_or_cut("a block header is cut short").map(|_| None);
            }
            let at = self.position();
            let (kind, len) = self.block_header()?;
            if !self.fill(len)? {
                return Err(truncated(
                    at,
                    &format!(
                        "the last block is cut short ({} of {len} bytes)",
                        self.end - self.start
                    ),
                ));
            }
            let start = self.start;
            self.start += len;
            if kind == SHB {
                self.section(start, len, at)?;
                continue;
            }
            if kind == OPB {
                if let Some(p) = self.obsolete_packet(start, len, at)? {
                    return Ok(Some(p));
                }
                continue;
            }
            if let Some(p) = self.block(start, len, at)? {
                return Ok(Some(p));
            }
        }
    }

    /// Type and total length of the block at `start`, checked.
    fn block_header(&mut self) -> Result<(u32, usize), Stop> {
        let at = self.position();
        let b = &self.buf[self.start..self.start + 12];
        let kind = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let big_endian = if kind == SHB {
            // The byte-order magic follows the length.
            match b[8..12] {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                _ => return Err(damaged(at, "a section header with no byte-order magic")),
            }
        } else {
            match self.kind {
                Kind::Ng { big_endian, .. } => big_endian,
                Kind::Legacy { .. } => unreachable!("pcapng reader"),
            }
        };
        let kind = u32_at(b, 0, big_endian);
        let len = u32_at(b, 4, big_endian) as usize;
        if len < 12 || !len.is_multiple_of(4) || len > MAX_RECORD {
            return Err(damaged(
                at,
                &format!("a block claims a length of {len} bytes"),
            ));
        }
        Ok((kind, len))
    }

    fn section(&mut self, start: usize, len: usize, at: u64) -> Result<(), Stop> {
        match parse_sectionheaderblock(&self.buf[start..start + len]) {
            Ok((_, shb)) => {
                self.kind = Kind::Ng {
                    big_endian: shb.big_endian(),
                    interfaces: Vec::new(),
                    last_ts: Timestamp::default(),
                };
                Ok(())
            }
            Err(_) => Err(damaged(at, "unreadable section header block")),
        }
    }

    fn block(&mut self, start: usize, len: usize, at: u64) -> Result<Option<Found>, Stop> {
        let Kind::Ng {
            big_endian,
            ref mut interfaces,
            ref mut last_ts,
        } = self.kind
        else {
            unreachable!("pcapng reader")
        };
        let raw = &self.buf[start..start + len];
        let parsed = if big_endian {
            parse_block_be(raw)
        } else {
            parse_block_le(raw)
        };
        let block = match parsed {
            Ok((_, b)) => b,
            Err(_) => {
                let kind = self.block_kind(start);
                return Err(damaged(
                    at,
                    &format!("unreadable pcapng block (type {kind:#x})"),
                ));
            }
        };
        match block {
            Block::InterfaceDescription(idb) => {
                let offset_secs = tsoffset(&idb.options, big_endian);
                interfaces.push(Interface {
                    link: idb.linktype,
                    units: idb.ts_resolution().unwrap_or(1_000_000),
                    offset_secs,
                });
                Ok(None)
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = interfaces.get(epb.if_id as usize) else {
                    self.undeclared += 1;
                    return Ok(None);
                };
                let ts = ng_time(epb.ts_high, epb.ts_low, iface);
                *last_ts = ts;
                Ok(Some(Found {
                    ts,
                    link: iface.link,
                    data: within(raw, start, epb.packet_data()),
                    orig_len: epb.orig_len(),
                    offset: at,
                }))
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = interfaces.first() else {
                    self.undeclared += 1;
                    return Ok(None);
                };
                // Simple packets carry no time: they take the last one seen.
                Ok(Some(Found {
                    ts: *last_ts,
                    link: iface.link,
                    data: within(raw, start, spb.packet_data()),
                    orig_len: spb.orig_len(),
                    offset: at,
                }))
            }
            _ => Ok(None),
        }
    }

    fn block_kind(&self, start: usize) -> u32 {
        let big_endian = matches!(
            self.kind,
            Kind::Ng {
                big_endian: true,
                ..
            }
        );
        u32_at(&self.buf, start, big_endian)
    }

    /// The packet block of pcapng drafts before the enhanced one: interface
    /// (16 bits), drops (16 bits), time, captured and original lengths, data.
    fn obsolete_packet(
        &mut self,
        start: usize,
        len: usize,
        at: u64,
    ) -> Result<Option<Found>, Stop> {
        let Kind::Ng {
            big_endian,
            ref interfaces,
            ref mut last_ts,
        } = self.kind
        else {
            unreachable!("pcapng reader")
        };
        let b = &self.buf[start..start + len];
        if len < 32 {
            return Err(damaged(at, "a packet block too short for its header"));
        }
        let word = |i: usize| u32_at(b, i, big_endian);
        // The interface is the first half of the word at 8.
        let if_id = if big_endian {
            word(8) >> 16
        } else {
            word(8) & 0xffff
        };
        let Some(iface) = interfaces.get(if_id as usize) else {
            self.undeclared += 1;
            return Ok(None);
        };
        let caplen = (word(20) as usize).min(len - 32);
        let ts = ng_time(word(12), word(16), iface);
        *last_ts = ts;
        Ok(Some(Found {
            ts,
            link: iface.link,
            data: (start + 28, start + 28 + caplen),
            orig_len: word(24),
            offset: at,
        }))
    }

    /// Makes at least `n` bytes available from `start`; false at the end of
    /// the input.
    fn fill(&mut self, n: usize) -> Result<bool, Stop> {
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            if self.start > 0 && self.start + n > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.base += self.start as u64;
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < n {
                self.buf.resize(n.next_power_of_two(), 0);
            }
            if self.end == self.buf.len() {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A broken compressed stream ends the capture where it breaks.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    let at = self.base + self.end as u64;
                    return Err(Stop::Truncated {
                        offset: at,
                        message: e.to_string(),
                    });
                }
                Err(e) => return Err(Stop::Io(e)),
            }
        }
        Ok(true)
    }

    fn end_or_cut(&self, what: &str) -> Result<Option<Packet<'_>>, Stop> {
        if self.end == self.start {
            Ok(None)
        } else {
            Err(truncated(self.position(), what))
        }
    }
}

/// The 32-bit word at `i` of `b`, in the given byte order.
fn u32_at(b: &[u8], i: usize, big_endian: bool) -> u32 {
    let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

fn truncated(offset: u64, what: &str) -> Stop {
    Stop::Truncated {
        offset,
        message: what.to_string(),
    }
}

fn damaged(offset: u64, what: &str) -> Stop {
    Stop::Damaged {
        offset,
        message: what.to_string(),
    }
}

/// The `buf` range of `part`, a slice of `raw`, which starts at `start`.
fn within(raw: &[u8], start: usize, part: &[u8]) -> (usize, usize) {
    let from = (part.as_ptr() as usize).saturating_sub(raw.as_ptr() as usize);
    let from = start + from.min(raw.len());
    (from, from + part.len().min(raw.len()))
}

/// `if_tsoffset` in the section's byte order (pcap-parser reads it as
/// little-endian whatever the section).
fn tsoffset(options: &[pcap_parser::PcapNGOption], big_endian: bool) -> i64 {
    options
        .iter()
        .find(|o| o.code == pcap_parser::OptionCode::IfTsoffset)
        .and_then(|o| o.value.get(..8))
        .map(|v| {
            let b: [u8; 8] = v.try_into().expect("eight bytes");
            if big_endian {
                i64::from_be_bytes(b)
            } else {
                i64::from_le_bytes(b)
            }
        })
        .unwrap_or(0)
}

/// A pcapng timestamp (units since the interface's offset) in microseconds.
fn ng_time(high: u32, low: u32, iface: &Interface) -> Timestamp {
    let units = u128::from(iface.units.max(1));
    let ts = (u128::from(high) << 32) | u128::from(low);
    let micros = ts / units * 1_000_000 + ts % units * 1_000_000 / units;
    let offset = i128::from(iface.offset_secs) * 1_000_000;
    let us = (micros as i128 + offset).clamp(i64::MIN as i128, i64::MAX as i128);
    Timestamp::from_micros(us as i64)
}
