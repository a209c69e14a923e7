//! Packets → TCP segments: link layers peeled off (Ethernet with any stack
//! of 802.1Q/802.1ad tags, PPPoE, Linux cooked SLL and SLL2, raw IP, BSD
//! loopback, PPP, NFLOG), then IPv4 or IPv6 (extension headers walked by
//! etherparse), fragments put back together, then the TCP header.

use std::net::IpAddr;

use etherparse::defrag::IpDefragPool;
use etherparse::{
    EtherType, Ethernet2Slice, IpNumber, LaxIpSlice, SingleVlanSlice, SlicedPacket, TcpSlice,
};
use pcap_parser::Linktype;
use pcap_parser::data::{PacketData, get_packetdata};

use crate::model::Timestamp;

const ETHERTYPE_PPPOE: u16 = 0x8864;
/// Tags that stack in front of the real ether type.
const VLAN_TAGS: [u16; 4] = [0x8100, 0x88a8, 0x9100, 0x9200];
/// Fragments of a packet that do not complete within this long (capture
/// time) are dropped.
const FRAGMENT_LIFE_US: i64 = 30_000_000;
/// Fragments waiting at most: past it, all that wait are dropped.
const MAX_FRAGMENTS: usize = 1024;

/// A TCP segment and its endpoints.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    /// The acknowledgement number, when the ACK flag is set.
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
    /// Payload bytes that were on the wire but not captured (snapshot
    /// length): they follow `payload`.
    pub missing: u32,
}

/// What a packet turned out to be.
pub enum Decoded<'a> {
    Tcp(Segment<'a>),
    /// Not TCP over IP (ARP, UDP, ICMP, ...): nothing for us.
    Other,
    /// A fragment held until its packet is complete.
    Fragment,
    /// A link type this reader does not know.
    Unsupported,
    /// Headers that do not parse.
    Malformed(&'static str),
}

/// Turns packets into segments; holds fragments until their packets are
/// whole.
#[derive(Default)]
pub struct Decoder {
    defrag: IpDefragPool<Timestamp>,
    /// Fragments added since the pool was last emptied (an upper bound of
    /// those waiting).
    held: usize,
    /// When waiting fragments were last looked at for age.
    aged: Timestamp,
    joined: Vec<u8>,
    /// Fragments given up on (incomplete or inconsistent).
    pub fragments_dropped: u64,
    pub reassembled: u64,
}

impl Decoder {
    pub fn decode<'a>(
        &'a mut self,
        link: Linktype,
        data: &'a [u8],
        orig_len: u32,
        ts: Timestamp,
    ) -> Decoded<'a> {
        let (ether_type, l3) = match network(link, data) {
            Ok(x) => x,
            Err(d) => return d,
        };
        if ether_type != EtherType::IPV4.0 && ether_type != EtherType::IPV6.0 {
            return Decoded::Other;
        }
        let ip = match LaxIpSlice::from_slice(l3) {
            Ok((ip, _)) => ip,
            Err(_) => return Decoded::Malformed("bad IP header"),
        };
        let (src, dst) = (ip.source_addr(), ip.destination_addr());
        let payload = ip.payload();
        if payload.ip_number != IpNumber::TCP {
            return Decoded::Other;
        }
        if payload.fragmented {
            return self.fragment(l3, ts, src, dst);
        }
        let missing = if payload.incomplete {
            orig_len.saturating_sub(data.len() as u32)
        } else {
            0
        };
        tcp(src, dst, payload.payload, missing)
    }

    /// Adds a fragment; the TCP segment once its packet is complete.
    fn fragment<'a>(
        &'a mut self,
        l3: &[u8],
        ts: Timestamp,
        src: IpAddr,
        dst: IpAddr,
    ) -> Decoded<'a> {
        let Ok(sliced) = SlicedPacket::from_ip(l3) else {
            self.fragments_dropped += 1;
            return Decoded::Malformed("bad IP fragment");
        };
        if ts.as_micros() - self.aged.as_micros() > FRAGMENT_LIFE_US / 10 {
            let cutoff = ts.as_micros() - FRAGMENT_LIFE_US;
            self.defrag.retain(|t| t.as_micros() >= cutoff);
            self.aged = ts;
        }
        if self.held >= MAX_FRAGMENTS {
            self.defrag.retain(|t| *t >= ts);
            self.held = 0;
            self.fragments_dropped += 1;
        }
        match self.defrag.process_sliced_packet(&sliced, ts, ()) {
            Ok(None) => {
                self.held += 1;
                Decoded::Fragment
            }
            Ok(Some(whole)) => {
                self.reassembled += 1;
                self.joined.clear();
                self.joined.extend_from_slice(&whole.payload);
                self.defrag.return_buf(whole);
                tcp(src, dst, &self.joined, 0)
            }
            Err(_) => {
                self.fragments_dropped += 1;
                Decoded::Malformed("inconsistent IP fragments")
            }
        }
    }
}

fn tcp(src: IpAddr, dst: IpAddr, bytes: &[u8], missing: u32) -> Decoded<'_> {
    let Ok(t) = TcpSlice::from_slice(bytes) else {
        return Decoded::Malformed("bad TCP header");
    };
    Decoded::Tcp(Segment {
        src,
        dst,
        sport: t.source_port(),
        dport: t.destination_port(),
        seq: t.sequence_number(),
        ack: t.ack().then(|| t.acknowledgment_number()),
        syn: t.syn(),
        fin: t.fin(),
        rst: t.rst(),
        payload: t.payload(),
        missing,
    })
}

/// The ether type and bytes of the network layer under `link`.
fn network(link: Linktype, data: &[u8]) -> Result<(u16, &[u8]), Decoded<'static>> {
    match link {
        Linktype::ETHERNET => {
            let eth = Ethernet2Slice::from_slice_without_fcs(data)
                .map_err(|_| Decoded::Malformed("short Ethernet frame"))?;
            ether_payload(eth.ether_type().0, eth.payload_slice())
        }
        Linktype::NULL | Linktype::LOOP => loopback(link, data),
        // 12 and 14: raw IP as some BSDs number it.
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 | Linktype(12) | Linktype(14) => {
            raw_ip(data)
        }
        Linktype(9) => ppp(data),
        Linktype::LINUX_SLL | Linktype::LINUX_SLL2 | Linktype::NFLOG => {
            match get_packetdata(data, link, data.len()) {
                Some(PacketData::L3(et, rest)) => ether_payload(et, rest),
                Some(_) => Err(Decoded::Other),
                None => Err(Decoded::Malformed("short link-layer header")),
            }
        }
        _ => Err(Decoded::Unsupported),
    }
}

/// Ether types nested in the payload: VLAN tags (any number), PPPoE.
fn ether_payload(mut et: u16, mut data: &[u8]) -> Result<(u16, &[u8]), Decoded<'static>> {
    for _ in 0..8 {
        if VLAN_TAGS.contains(&et) {
            let vlan = SingleVlanSlice::from_slice(data)
                .map_err(|_| Decoded::Malformed("short VLAN tag"))?;
            et = vlan.ether_type().0;
            data = vlan.payload_slice();
        } else if et == ETHERTYPE_PPPOE {
            // version/type, code, session (2), length (2), then PPP.
            let rest = data
                .get(6..)
                .ok_or(Decoded::Malformed("short PPPoE header"))?;
            return ppp(rest);
        } else {
            return Ok((et, data));
        }
    }
    Err(Decoded::Malformed("too many VLAN tags"))
}

/// PPP: an optional address/control pair, then a one- or two-byte protocol.
fn ppp(data: &[u8]) -> Result<(u16, &[u8]), Decoded<'static>> {
    let data = data.strip_prefix(&[0xff, 0x03]).unwrap_or(data);
    let (proto, rest) = match data {
        [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return Err(Decoded::Malformed("short PPP header")),
    };
    match proto {
        0x0021 => Ok((EtherType::IPV4.0, rest)),
        0x0057 => Ok((EtherType::IPV6.0, rest)),
        _ => Err(Decoded::Other),
    }
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte
/// order for NULL, in network order for LOOP.
fn loopback(link: Linktype, data: &[u8]) -> Result<(u16, &[u8]), Decoded<'static>> {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return Err(Decoded::Malformed("short loopback header"));
    };
    let le = u32::from_le_bytes(*head);
    let family = if link == Linktype::LOOP || le > 0xffff {
        u32::from_be_bytes(*head)
    } else {
        le
    };
    match family {
        2 => Ok((EtherType::IPV4.0, rest)),
        // IPv6 as the BSDs, Darwin and others number it.
        10 | 24 | 28 | 30 => Ok((EtherType::IPV6.0, rest)),
        _ => Err(Decoded::Other),
    }
}

fn raw_ip(data: &[u8]) -> Result<(u16, &[u8]), Decoded<'static>> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Ok((EtherType::IPV4.0, data)),
        Some(6) => Ok((EtherType::IPV6.0, data)),
        _ => Err(Decoded::Malformed("raw packet that is not IP")),
    }
}

/// A link type's name for messages.
pub fn link_name(link: Linktype) -> String {
    let name = format!("{link}");
    if name.starts_with("Linktype(") || name.chars().all(|c| c.is_ascii_digit() || c == '-') {
        match link.0 {
            6 => "IEEE802_5".into(),
            9 => "PPP".into(),
            105 => "IEEE802_11".into(),
            127 => "IEEE802_11_RADIOTAP".into(),
            147..=162 => "USER".into(),
            220 => "USB_LINUX_MMAPPED".into(),
            _ => format!("number {}", link.0),
        }
    } else {
        name
    }
}
