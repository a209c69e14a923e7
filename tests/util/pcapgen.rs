//! Synthetic packet captures for the pcap reader's tests: TCP conversations
//! built segment by segment (so they can be reordered, repeated, cut), any
//! link layer wrapped around them, written as pcap or pcapng in either byte
//! order.

use etherparse::PacketBuilder;

/// A captured packet: time in nanoseconds since the epoch, the interface
/// (pcapng) and the link-layer bytes.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub ns: u64,
    pub iface: u32,
    pub data: Vec<u8>,
}

/// One TCP connection between a client and a server, IPv4 or IPv6.
pub struct Conn {
    pub client: Vec<u8>,
    pub server: Vec<u8>,
    pub cport: u16,
    pub sport: u16,
    pub cseq: u32,
    pub sseq: u32,
}

/// TCP flags of a segment.
#[derive(Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

pub const ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    rst: false,
};

impl Conn {
    pub fn v4(client: [u8; 4], cport: u16, server: [u8; 4], sport: u16) -> Conn {
        Conn::new(&client, cport, &server, sport)
    }

    pub fn v6(client: [u8; 16], cport: u16, server: [u8; 16], sport: u16) -> Conn {
        Conn::new(&client, cport, &server, sport)
    }

    fn new(client: &[u8], cport: u16, server: &[u8], sport: u16) -> Conn {
        Conn {
            client: client.to_vec(),
            server: server.to_vec(),
            cport,
            sport,
            cseq: 1000,
            sseq: 5000,
        }
    }

    /// An IP packet carrying one segment; sequence numbers advance.
    pub fn segment(&mut self, from_client: bool, f: Flags, payload: &[u8]) -> Vec<u8> {
        let (src, dst, sp, dp) = if from_client {
            (&self.client, &self.server, self.cport, self.sport)
        } else {
            (&self.server, &self.client, self.sport, self.cport)
        };
        let (seq, ack) = if from_client {
            (self.cseq, self.sseq)
        } else {
            (self.sseq, self.cseq)
        };
        let ip = if src.len() == 4 {
            PacketBuilder::ipv4(
                src[..4].try_into().unwrap(),
                dst[..4].try_into().unwrap(),
                64,
            )
        } else {
            PacketBuilder::ipv6(
                src[..16].try_into().unwrap(),
                dst[..16].try_into().unwrap(),
                64,
            )
        };
        let mut b = ip.tcp(sp, dp, seq, 65535);
        if f.syn {
            b = b.syn();
        }
        if f.fin {
            b = b.fin();
        }
        if f.rst {
            b = b.rst();
        }
        if f.ack {
            b = b.ack(ack);
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        let used = payload.len() as u32 + u32::from(f.syn) + u32::from(f.fin);
        if from_client {
            self.cseq = self.cseq.wrapping_add(used);
        } else {
            self.sseq = self.sseq.wrapping_add(used);
        }
        out
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Vec<u8>> {
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        let synack = Flags {
            syn: true,
            ack: true,
            ..Flags::default()
        };
        vec![
            self.segment(true, syn, b""),
            self.segment(false, synack, b""),
            self.segment(true, ACK, b""),
        ]
    }

    /// `data` from one side in segments of at most `mss` bytes.
    pub fn send(&mut self, from_client: bool, data: &[u8], mss: usize) -> Vec<Vec<u8>> {
        data.chunks(mss.max(1))
            .map(|c| self.segment(from_client, ACK, c))
            .collect()
    }

    /// FIN both ways.
    pub fn close(&mut self) -> Vec<Vec<u8>> {
        let fin = Flags {
            fin: true,
            ack: true,
            ..Flags::default()
        };
        vec![self.segment(true, fin, b""), self.segment(false, fin, b"")]
    }

    /// A whole keep-alive connection: handshake, each request and its
    /// response, close.
    pub fn exchange_all(&mut self, pairs: &[(&[u8], &[u8])], mss: usize) -> Vec<Vec<u8>> {
        let mut out = self.handshake();
        for (req, resp) in pairs {
            out.extend(self.send(true, req, mss));
            out.extend(self.send(false, resp, mss));
        }
        out.extend(self.close());
        out
    }
}

/// Packets at `start_ns`, one every `step_ns`, on interface 0.
pub fn timed(
    ips: Vec<Vec<u8>>,
    start_ns: u64,
    step_ns: u64,
    link: fn(&[u8]) -> Vec<u8>,
) -> Vec<Pkt> {
    ips.into_iter()
        .enumerate()
        .map(|(i, ip)| Pkt {
            ns: start_ns + i as u64 * step_ns,
            iface: 0,
            data: link(&ip),
        })
        .collect()
}

// ---- link layers around an IP packet ----

/// `v4` or `v6` as `ip` is IPv4 or IPv6.
fn by_version(ip: &[u8], v4: u16, v6: u16) -> [u8; 2] {
    (if ip[0] >> 4 == 6 { v6 } else { v4 }).to_be_bytes()
}

fn ether_type(ip: &[u8]) -> [u8; 2] {
    by_version(ip, 0x0800, 0x86dd)
}

pub fn ethernet(ip: &[u8]) -> Vec<u8> {
    ethernet_vlans(ip, &[])
}

/// Ethernet with VLAN tags, outermost first (each `(tpid, vlan id)`).
pub fn ethernet_vlans(ip: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for (tpid, id) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&ether_type(ip));
    f.extend_from_slice(ip);
    f
}

pub fn vlan2(ip: &[u8]) -> Vec<u8> {
    ethernet_vlans(ip, &[(0x88a8, 100), (0x8100, 200)])
}

pub fn vlan3(ip: &[u8]) -> Vec<u8> {
    ethernet_vlans(ip, &[(0x9100, 1), (0x88a8, 2), (0x8100, 3)])
}

/// Ethernet, PPPoE session, PPP.
pub fn pppoe(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0x64];
    f.extend_from_slice(&[0x11, 0x00, 0x12, 0x34]);
    f.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    f.extend_from_slice(&ppp_protocol(ip));
    f.extend_from_slice(ip);
    f
}

/// PPP's number for the IP version of `ip`.
fn ppp_protocol(ip: &[u8]) -> [u8; 2] {
    by_version(ip, 0x0021, 0x0057)
}

/// Linux cooked capture v1.
pub fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&ether_type(ip));
    f.extend_from_slice(ip);
    f
}

/// Linux cooked capture v2.
pub fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = ether_type(ip).to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(ip);
    f
}

pub fn raw(ip: &[u8]) -> Vec<u8> {
    ip.to_vec()
}

fn family(ip: &[u8]) -> u32 {
    if ip[0] >> 4 == 6 { 30 } else { 2 }
}

/// BSD loopback (NULL), written by a little-endian host.
pub fn null_le(ip: &[u8]) -> Vec<u8> {
    let mut f = family(ip).to_le_bytes().to_vec();
    f.extend_from_slice(ip);
    f
}

/// BSD loopback (NULL), written by a big-endian host; also LOOP.
pub fn null_be(ip: &[u8]) -> Vec<u8> {
    let mut f = family(ip).to_be_bytes().to_vec();
    f.extend_from_slice(ip);
    f
}

/// PPP with address and control bytes.
pub fn ppp(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff, 0x03];
    f.extend_from_slice(&ppp_protocol(ip));
    f.extend_from_slice(ip);
    f
}

// ---- IP-level rewrites ----

/// The IPv6 packet with a hop-by-hop options header and a destination
/// options header in front of its TCP segment.
pub fn with_ipv6_extensions(ip: &[u8]) -> Vec<u8> {
    assert_eq!(ip[0] >> 4, 6);
    let mut out = ip[..40].to_vec();
    out[6] = 0; // hop-by-hop next
    let payload_len = u16::from_be_bytes([ip[4], ip[5]]) + 16;
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    // hop-by-hop: next = destination options (60), len 0, PadN of 4.
    out.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    // destination options: next = TCP, len 0, PadN of 4.
    out.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&ip[40..]);
    out
}

/// An IP packet cut into fragments carrying at most `size` payload bytes
/// (rounded down to a multiple of 8): IPv4 fragments, or IPv6 ones with a
/// fragment header.
pub fn fragments(ip: &[u8], size: usize) -> Vec<Vec<u8>> {
    let v6 = ip[0] >> 4 == 6;
    let hlen = if v6 { 40 } else { usize::from(ip[0] & 0xf) * 4 };
    let payload = &ip[hlen..];
    let size = (size / 8).max(1) * 8;
    let n = payload.len().div_ceil(size);
    (0..n)
        .map(|i| {
            let part = &payload[i * size..((i + 1) * size).min(payload.len())];
            let more = u16::from(i + 1 < n);
            let offset = (i * size / 8) as u16;
            let mut h = ip[..hlen].to_vec();
            if v6 {
                h[4..6].copy_from_slice(&((8 + part.len()) as u16).to_be_bytes());
                h[6] = 44;
                h.extend_from_slice(&[ip[6], 0]);
                h.extend_from_slice(&(offset << 3 | more).to_be_bytes());
                h.extend_from_slice(&0x4242_4242u32.to_be_bytes());
            } else {
                h[2..4].copy_from_slice(&((hlen + part.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
                h[6..8].copy_from_slice(&(more << 13 | offset).to_be_bytes());
                h[10..12].copy_from_slice(&[0, 0]);
                let sum = checksum(&h);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
            }
            h.extend_from_slice(part);
            h
        })
        .collect()
}

fn checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

// ---- file formats ----

/// Byte order and timestamp resolution of a classic pcap file.
#[derive(Clone, Copy, Debug)]
pub struct PcapKind {
    pub big_endian: bool,
    pub nanos: bool,
}

fn put32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put16(out: &mut Vec<u8>, v: u16, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// A classic pcap file.
pub fn pcap(kind: PcapKind, link: u32, pkts: &[Pkt]) -> Vec<u8> {
    let be = kind.big_endian;
    let mut out = Vec::new();
    put32(
        &mut out,
        if kind.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 },
        be,
    );
    put16(&mut out, 2, be);
    put16(&mut out, 4, be);
    put32(&mut out, 0, be);
    put32(&mut out, 0, be);
    put32(&mut out, 262_144, be);
    put32(&mut out, link, be);
    for p in pkts {
        let frac = if kind.nanos {
            p.ns % 1_000_000_000
        } else {
            p.ns % 1_000_000_000 / 1000
        };
        put32(&mut out, (p.ns / 1_000_000_000) as u32, be);
        put32(&mut out, frac as u32, be);
        put32(&mut out, p.data.len() as u32, be);
        put32(&mut out, p.data.len() as u32, be);
        out.extend_from_slice(&p.data);
    }
    out
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8], be: bool) {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = body.len() as u32 + 12;
    put32(out, kind, be);
    put32(out, len, be);
    out.extend_from_slice(&body);
    put32(out, len, be);
}

/// A pcapng file: one section, interfaces of `(link type, if_tsresol)`,
/// enhanced packet blocks (simple ones for packets whose `ns` is 0).
pub fn pcapng(big_endian: bool, interfaces: &[(u16, u8)], pkts: &[Pkt]) -> Vec<u8> {
    let be = big_endian;
    let mut out = Vec::new();
    let mut shb = Vec::new();
    put32(&mut shb, 0x1a2b_3c4d, be);
    put16(&mut shb, 1, be);
    put16(&mut shb, 0, be);
    shb.extend_from_slice(&[0xff; 8]);
    block(&mut out, 0x0a0d_0d0a, &shb, be);
    for (link, resol) in interfaces {
        let mut idb = Vec::new();
        put16(&mut idb, *link, be);
        put16(&mut idb, 0, be);
        put32(&mut idb, 262_144, be);
        put16(&mut idb, 9, be); // if_tsresol
        put16(&mut idb, 1, be);
        idb.extend_from_slice(&[*resol, 0, 0, 0]);
        put16(&mut idb, 0, be); // opt_endofopt
        put16(&mut idb, 0, be);
        block(&mut out, 1, &idb, be);
    }
    for p in pkts {
        let resol = interfaces[p.iface as usize].1;
        let units = if resol == 9 { p.ns } else { p.ns / 1000 };
        let mut epb = Vec::new();
        if p.ns == 0 {
            put32(&mut epb, p.data.len() as u32, be);
            epb.extend_from_slice(&p.data);
            block(&mut out, 3, &epb, be);
            continue;
        }
        put32(&mut epb, p.iface, be);
        put32(&mut epb, (units >> 32) as u32, be);
        put32(&mut epb, units as u32, be);
        put32(&mut epb, p.data.len() as u32, be);
        put32(&mut epb, p.data.len() as u32, be);
        epb.extend_from_slice(&p.data);
        block(&mut out, 6, &epb, be);
    }
    out
}
