//! The pcap/pcapng reader: real captures from the corpus with exact counts,
//! synthetic ones for each file format, link layer and TCP or HTTP corner,
//! the command line's flags and errors, and the capture this project
//! recorded itself.

use std::path::Path;
use std::time::Duration;

use reprise::capture::pcap::Tally;
use reprise::capture::{self, Body, CaptureError, Emit, Exchange, InputStats, ReadOptions, Source};

use crate::util::pcapgen::{self, ACK, Conn, Flags, PcapKind, Pkt};
use crate::util::{corpus, reprise, text};

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
const LE_US: PcapKind = PcapKind {
    big_endian: false,
    nanos: false,
};

const GET_A: &[u8] =
    b"GET /api/items/17?view=full HTTP/1.1\r\nHost: acme.shop.test:8080\r\nUser-Agent: t/1\r\n\r\n";
const RESP_A: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"id\": 17 }\n";
const GET_B: &[u8] = b"GET /api/items/18 HTTP/1.1\r\nHost: acme.shop.test\r\n\r\n";
const RESP_B: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/// What reading a capture gave.
struct Read {
    xs: Vec<Exchange>,
    stats: InputStats,
    result: Result<(), CaptureError>,
}

impl Read {
    fn tally(&self) -> &Tally {
        self.stats.pcap.as_ref().expect("a pcap tally")
    }

    fn paths(&self) -> Vec<String> {
        self.xs
            .iter()
            .map(|x| format!("{} {} {:?}", x.method, x.path, x.status))
            .collect()
    }

    fn answered(&self) -> usize {
        self.xs.iter().filter(|x| x.status.is_some()).count()
    }
}

fn read_input(input: capture::Input, opts: &ReadOptions) -> Read {
    let mut stats = InputStats::new(&input.name.clone());
    let mut xs = Vec::new();
    let result = capture::read(input, opts, &mut stats, &mut Emit::new(|x| xs.push(x)));
    Read { xs, stats, result }
}

fn read_bytes(bytes: Vec<u8>, opts: &ReadOptions) -> Read {
    read_input(capture::Input::from_bytes("t.pcap", bytes).unwrap(), opts)
}

fn read(bytes: Vec<u8>) -> Read {
    read_bytes(bytes, &ReadOptions::default())
}

fn read_file(path: &Path) -> Read {
    let input = capture::open(&Source::File(path.to_path_buf())).unwrap();
    read_input(input, &ReadOptions::default())
}

/// Client 10.0.0.1:40000 → server 10.0.0.2:8080, GET_A and GET_B on one
/// keep-alive connection, segments of `mss` bytes, a packet a millisecond.
fn two_exchanges(mss: usize) -> Vec<Vec<u8>> {
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 8080);
    c.exchange_all(&[(GET_A, RESP_A), (GET_B, RESP_B)], mss)
}

fn ether(ips: Vec<Vec<u8>>) -> Vec<Pkt> {
    pcapgen::timed(ips, T0, MS, pcapgen::ethernet)
}

fn write_pcap(pkts: &[Pkt]) -> Vec<u8> {
    pcapgen::pcap(LE_US, 1, pkts)
}

// ---- the corpus ----

/// Exact expectations for real captures: file, requests found, exchanges
/// made, final responses read, requests without a response.
/// Requests and responses were counted with
/// `tshark -r FILE -Y http.request | wc -l` (and `http.response`), which
/// agrees except where noted in the test below.
const EXACT: [(&str, u64, u64, u64, usize); 14] = [
    (
        "zeek_http_1000-requests-one-dropped-response.pcap.gz",
        1000,
        1000,
        999,
        999,
    ),
    ("zeek_http_pipelined-requests.pcap", 5, 5, 5, 5),
    ("pcapplusplus_http-packets_chunked.pcap", 112, 112, 106, 106),
    ("zeek_http_100-continue.pcap", 1, 1, 1, 1),
    ("zeek_http_get_nosyn.pcap", 1, 1, 1, 1),
    ("zeek_http-vlan-0.pcap", 1, 1, 1, 1),
    ("pcapplusplus_sll.pcap", 2, 2, 2, 2),
    ("pcapplusplus_raw_ip.pcap", 19, 19, 7, 7),
    ("suricata_http-range-multiflows_null.pcap", 41, 41, 41, 41),
    ("zeek_http_cooper-grill-dvwa.pcapng", 3, 3, 3, 3),
    ("arkime_wireshark-retrans.pcap", 4, 4, 4, 4),
    ("suricata_http-mime-truncated.pcap", 8, 8, 8, 8),
    ("pcapplusplus_example_large.pcap", 338, 338, 338, 338),
    ("zeek_http_methods.pcap", 49, 9, 49, 9),
];

#[test]
fn every_corpus_pcap_imports_or_fails_cleanly() {
    let Some(root) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(root.join("pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 23, "the corpus has 23 captures");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let out = reprise()
            .args(["import", "-q"])
            .arg(f)
            .arg("-o")
            .arg(dir.path().join("m.json"))
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        match out.status.code() {
            Some(0) => {}
            Some(2) => assert!(
                stderr.contains(&name) && stderr.contains("byte "),
                "{name}: a rejection names the file and the byte: {stderr}"
            ),
            other => panic!("{name}: exit {other:?}: {stderr}"),
        }
        let r = read_file(f);
        assert!(r.result.is_ok(), "{name}: {:?}", r.result);
        assert_eq!(
            r.tally().retimed,
            0,
            "{name}: exchanges in order as captured"
        );
        if let Some(&(_, requests, accepted, responses, answered)) =
            EXACT.iter().find(|e| e.0 == name)
        {
            let t = r.tally();
            assert_eq!(
                (r.stats.records, r.stats.accepted, t.responses, r.answered()),
                (requests, accepted, responses, answered),
                "{name}: requests, exchanges, responses, exchanges with a response"
            );
        }
    }
}

#[test]
fn corpus_details() {
    let Some(root) = corpus() else { return };
    let pcap = |f: &str| read_file(&root.join("pcap").join(f));

    // One response was not captured: its request is kept, without a status,
    // and the 999 others pair with the right requests (all 200, none lost).
    let r = pcap("zeek_http_1000-requests-one-dropped-response.pcap.gz");
    assert_eq!(r.tally().lost_responses, 1);
    assert_eq!(r.xs[0].status, None, "the first response is the lost one");
    assert!(r.xs[1..].iter().all(|x| x.status == Some(200)));
    assert!(r.xs.windows(2).all(|w| w[0].time <= w[1].time));

    // Pipelined: five requests sent before the responses, paired in order.
    let r = pcap("zeek_http_pipelined-requests.pcap");
    assert!(
        r.xs.iter().all(|x| x.status == Some(200)),
        "{:?}",
        r.paths()
    );
    let distinct: std::collections::BTreeSet<_> = r.xs.iter().map(|x| &x.path).collect();
    assert_eq!(distinct.len(), 5);

    // 100-continue: the interim response is not the answer.
    let r = pcap("zeek_http_100-continue.pcap");
    assert_eq!(r.tally().interim_responses, 1);
    assert_ne!(r.xs[0].status, Some(100));

    // Malformed request lines are counted with their byte offsets, and
    // their 400s do not pair with other requests.
    let r = pcap("zeek_http_methods.pcap");
    assert_eq!(r.stats.skipped.get("malformed request head"), Some(&40));
    assert!(r.stats.first_skips.iter().all(|(at, _)| *at > 0));

    // The truncated file: everything before the cut, and a warning with the
    // byte offset of the cut record.
    let r = pcap("suricata_http-mime-truncated.pcap");
    assert!(
        r.stats.warnings.iter().any(|w| w.contains("byte 2715459")),
        "{:?}",
        r.stats.warnings
    );

    // HTTP found by content on ports tshark does not decode as HTTP (UPnP
    // SUBSCRIBE on 5005), TLS set aside.
    let r = pcap("pcapplusplus_example_large.pcap");
    assert_eq!(r.tally().server_ports.get(&5005), Some(&1));
    assert_eq!(r.tally().not_http.get("TLS"), Some(&2));
    assert!(r.xs.iter().any(|x| x.method == "SUBSCRIBE"));

    // Chunked responses: lengths are the decoded bodies.
    let r = pcap("zeek_http_cooper-grill-dvwa.pcapng");
    assert!(r.xs.iter().all(|x| x.response_bytes.unwrap() > 0));
}

// ---- file formats ----

#[test]
fn both_byte_orders_and_both_timestamp_resolutions() {
    let pkts = ether(two_exchanges(20));
    let mut seen = Vec::new();
    for (big_endian, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
        let r = read(pcapgen::pcap(PcapKind { big_endian, nanos }, 1, &pkts));
        assert!(r.result.is_ok(), "{:?}", r.result);
        seen.push(r.xs);
    }
    for (big_endian, resol) in [(false, 6), (true, 9)] {
        let r = read(pcapgen::pcapng(big_endian, &[(1, resol)], &pkts));
        assert!(r.result.is_ok(), "{:?}", r.result);
        seen.push(r.xs);
    }
    for xs in &seen {
        assert_eq!(xs, &seen[0]);
    }
    let x = &seen[0][0];
    assert_eq!(x.time.as_micros() as u64, (T0 + 3 * MS) / 1000);
    assert_eq!(
        (x.method.as_str(), x.path.as_str()),
        ("GET", "/api/items/17")
    );
    assert_eq!(x.query.as_deref(), Some("view=full"));
    assert_eq!(x.host.as_deref(), Some("acme.shop.test"));
    assert_eq!(x.client.as_deref(), Some("10.0.0.1"));
    assert_eq!((x.status, x.response_bytes), (Some(200), Some(12)));
    assert_eq!(x.response_type.as_deref(), Some("application/json"));
    assert_eq!(seen[0][1].status, Some(404));
}

#[test]
fn pcapng_interfaces_of_different_link_types() {
    // Interface 0: Ethernet, microseconds; 1: Linux cooked v2, nanoseconds;
    // 2: IEEE 802.11, which is not read (a warning, not an error).
    let mut a = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut b = Conn::v6(
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
        41000,
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        80,
    );
    let pa = pcapgen::timed(
        a.exchange_all(&[(GET_A, RESP_A)], 1000),
        T0,
        MS,
        pcapgen::ethernet,
    );
    let mut pb = pcapgen::timed(
        b.exchange_all(&[(GET_B, RESP_B)], 1000),
        T0 + MS / 2 + 7,
        MS,
        pcapgen::sll2,
    );
    for p in &mut pb {
        p.iface = 1;
    }
    let mut pkts: Vec<Pkt> = pa.into_iter().chain(pb).collect();
    pkts.sort_by_key(|p| p.ns);
    pkts.push(Pkt {
        ns: T0 + 50 * MS,
        iface: 2,
        data: vec![0; 40],
    });
    let r = read(pcapgen::pcapng(false, &[(1, 6), (276, 9), (105, 6)], &pkts));
    assert!(r.result.is_ok(), "{:?}", r.result);
    assert_eq!(
        r.paths(),
        vec!["GET /api/items/17 Some(200)", "GET /api/items/18 Some(404)"]
    );
    assert_eq!(
        r.xs[1].time.as_micros() as u64,
        (T0 + MS / 2 + 7 + 3 * MS) / 1000
    );
    assert_eq!(r.xs[1].client.as_deref(), Some("2001:db8::9"));
    assert!(
        r.stats.warnings.iter().any(|w| w.contains("IEEE802_11")),
        "{:?}",
        r.stats.warnings
    );
}

#[test]
fn simple_packet_blocks_take_the_last_time() {
    let mut pkts = ether(two_exchanges(1000));
    let last = pkts.len() - 1;
    pkts[last].ns = 0; // written as a simple packet block
    let r = read(pcapgen::pcapng(false, &[(1, 6)], &pkts));
    assert_eq!(r.xs.len(), 2);
}

// ---- link layers and IP ----

#[test]
fn every_link_layer() {
    type Link = fn(&[u8]) -> Vec<u8>;
    let links: [(&str, u32, Link); 11] = [
        ("ethernet", 1, pcapgen::ethernet),
        ("802.1ad+802.1Q", 1, pcapgen::vlan2),
        ("three tags", 1, pcapgen::vlan3),
        ("pppoe", 1, pcapgen::pppoe),
        ("sll", 113, pcapgen::sll),
        ("sll2", 276, pcapgen::sll2),
        ("raw", 101, pcapgen::raw),
        ("ipv4", 228, pcapgen::raw),
        ("null le", 0, pcapgen::null_le),
        ("null be", 0, pcapgen::null_be),
        ("loop", 108, pcapgen::null_be),
    ];
    for (name, link, wrap) in links {
        let pkts = pcapgen::timed(two_exchanges(30), T0, MS, wrap);
        let r = read(pcapgen::pcap(LE_US, link, &pkts));
        assert_eq!(r.xs.len(), 2, "{name}: {:?} {:?}", r.result, r.tally());
    }
    let mut c = Conn::v6(
        [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        40000,
        [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        80,
    );
    let pkts = pcapgen::timed(c.exchange_all(&[(GET_A, RESP_A)], 40), T0, MS, pcapgen::ppp);
    let r = read(pcapgen::pcap(LE_US, 9, &pkts));
    assert_eq!(r.xs.len(), 1, "ppp over ipv6");
    assert_eq!(r.xs[0].client.as_deref(), Some("fe80::2"));
}

#[test]
fn unsupported_link_types_are_named() {
    let pkts = pcapgen::timed(two_exchanges(30), T0, MS, pcapgen::ethernet);
    let r = read(pcapgen::pcap(LE_US, 147, &pkts));
    assert!(matches!(r.result, Err(CaptureError::NothingUsable { .. })));
    assert!(
        r.stats.warnings[0].contains("link type USER"),
        "{:?}",
        r.stats.warnings
    );
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let mut c = Conn::v6(
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        40000,
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        80,
    );
    let ips: Vec<Vec<u8>> = c
        .exchange_all(&[(GET_A, RESP_A)], 25)
        .iter()
        .map(|ip| pcapgen::with_ipv6_extensions(ip))
        .collect();
    let r = read(write_pcap(&ether(ips)));
    assert_eq!(r.paths(), vec!["GET /api/items/17 Some(200)"]);
}

#[test]
fn ip_fragments_are_reassembled() {
    let mut v6 = Conn::v6(
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        40000,
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        80,
    );
    for conversation in [
        two_exchanges(400),
        v6.exchange_all(&[(GET_A, RESP_A), (GET_B, RESP_B)], 400),
    ] {
        let mut ips = Vec::new();
        for ip in conversation {
            let mut frags = pcapgen::fragments(&ip, 24);
            frags.reverse(); // out of order too
            ips.extend(frags);
        }
        let r = read(write_pcap(&ether(ips)));
        assert_eq!(r.xs.len(), 2);
        assert_eq!(r.tally().fragments_reassembled, 4, "the four data segments");
    }
}

// ---- TCP ----

#[test]
fn out_of_order_retransmitted_and_overlapping_segments() {
    let body = br#"{"items":[{"sku":"A-1","qty":2}],"note":"out of order"}"#;
    let post = format!(
        "POST /api/orders HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        std::str::from_utf8(body).unwrap()
    );
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut ips = c.handshake();
    let start = c.cseq;
    let mut segs = c.send(true, post.as_bytes(), 16);
    segs.swap(1, 4);
    segs.swap(2, 3);
    segs.insert(6, segs[2].clone()); // a retransmission
    // A segment overlapping two others: 24 bytes from byte 8.
    let mut overlap = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    overlap.cseq = start + 8;
    overlap.sseq = c.sseq;
    segs.insert(3, overlap.segment(true, ACK, &post.as_bytes()[8..32]));
    ips.extend(segs);
    ips.extend(c.send(
        false,
        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        100,
    ));
    ips.extend(c.close());
    let r = read(write_pcap(&ether(ips)));
    assert_eq!(r.paths(), vec!["POST /api/orders Some(201)"]);
    match &r.xs[0].body {
        Some(Body::Text { text, mime }) => {
            assert_eq!(text.as_bytes(), body);
            assert_eq!(mime, "application/json");
        }
        other => panic!("{other:?}"),
    }
    assert!(r.tally().retransmitted_segments >= 1);
}

#[test]
fn a_capture_starting_mid_connection() {
    // No handshake: the first packet is the tail of a response body, then
    // two full exchanges.
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 8080);
    let mut ips = vec![c.segment(false, ACK, b"end of an earlier body\r\n")];
    ips.extend(c.send(true, GET_A, 30));
    ips.extend(c.send(false, RESP_A, 30));
    ips.extend(c.send(true, GET_B, 30));
    ips.extend(c.send(false, RESP_B, 30));
    let r = read(write_pcap(&ether(ips)));
    assert_eq!(
        r.paths(),
        vec!["GET /api/items/17 Some(200)", "GET /api/items/18 Some(404)"]
    );
    assert_eq!(r.xs[0].client.as_deref(), Some("10.0.0.1"));
}

#[test]
fn a_lost_segment_drops_only_its_message() {
    // Three requests; a segment of the second is not captured, and the
    // server's ACK shows it was sent.
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut ips = c.handshake();
    for (i, req) in [GET_A, GET_B, GET_A].iter().enumerate() {
        let mut segs = c.send(true, req, 20);
        if i == 1 {
            segs.remove(1);
        }
        ips.extend(segs);
        ips.extend(c.send(false, RESP_B, 100));
    }
    ips.extend(c.close());
    let r = read(write_pcap(&ether(ips)));
    assert_eq!(r.xs.len(), 2, "{:?}", r.paths());
    assert_eq!(r.stats.records, 3);
    assert_eq!(r.stats.skipped_total(), 1);
    assert!(r.tally().gap_bytes >= 20);
    assert!(r.xs.iter().all(|x| x.status == Some(404)));
}

#[test]
fn fin_ends_close_delimited_bodies_and_rst_cuts_responses() {
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut ips = c.handshake();
    ips.extend(c.send(true, GET_A, 500));
    ips.extend(c.send(
        false,
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close",
        20,
    ));
    ips.extend(c.close());
    let mut d = Conn::v4([10, 0, 0, 1], 40001, [10, 0, 0, 2], 80);
    ips.extend(d.handshake());
    ips.extend(d.send(true, GET_B, 500));
    ips.extend(d.send(
        false,
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial",
        500,
    ));
    ips.push(d.segment(
        false,
        Flags {
            rst: true,
            ..Flags::default()
        },
        b"",
    ));
    let r = read(write_pcap(&ether(ips)));
    assert_eq!(r.xs.len(), 2);
    assert_eq!(r.xs[0].response_bytes, Some(15));
    assert!(r.xs[0].duration.is_some());
    assert_eq!(
        r.xs[1].status,
        Some(200),
        "the status of a cut response stands"
    );
    assert_eq!(r.tally().damaged_responses, 1);
}

#[test]
fn a_connection_closed_with_bytes_missing_ends_soon_after() {
    // The response's middle segment is lost and nothing acknowledges past
    // it; both sides close. Seconds later, other traffic: the first
    // connection has been ended by then, its response marked as damaged.
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut ips = c.handshake();
    ips.extend(c.send(true, GET_A, 1000));
    let mut resp = c.send(false, RESP_A, 4);
    resp.remove(resp.len() - 2); // in the body
    ips.extend(resp);
    let fin = Flags {
        fin: true,
        ..Flags::default()
    };
    ips.push(c.segment(true, fin, b""));
    ips.push(c.segment(false, fin, b""));
    let mut pkts = ether(ips);
    let mut d = Conn::v4([10, 0, 0, 3], 40000, [10, 0, 0, 2], 80);
    pkts.extend(pcapgen::timed(
        d.exchange_all(&[(GET_B, RESP_B)], 1000),
        T0 + 3_000 * MS,
        MS,
        pcapgen::ethernet,
    ));
    let r = read(write_pcap(&pkts));
    assert_eq!(r.tally().ended_with_holes, 1, "{:?}", r.tally());
    assert_eq!(r.tally().damaged_responses, 1);
    assert_eq!(
        r.paths(),
        vec!["GET /api/items/17 Some(200)", "GET /api/items/18 Some(404)"]
    );
}

#[test]
fn connections_reusing_addresses_and_ports_are_told_apart() {
    let mut ips = Vec::new();
    for isn in [1000, 90_000] {
        let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
        c.cseq = isn;
        ips.extend(c.exchange_all(&[(GET_A, RESP_A)], 100));
    }
    let r = read(write_pcap(&ether(ips)));
    assert_eq!(r.xs.len(), 2);
    assert_eq!(r.tally().http_connections, 2);
}

// ---- HTTP ----

#[test]
fn bodiless_responses_continue_and_chunked_gzip_request_bodies() {
    use std::io::Write;
    let json = br#"{"user":"ann","cart":[1,2,3]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json).unwrap();
    let gz = gz.finish().unwrap();
    let mut chunked = format!("{:x}\r\n", 10).into_bytes();
    chunked.extend_from_slice(&gz[..10]);
    chunked.extend_from_slice(format!("\r\n{:x}\r\n", gz.len() - 10).as_bytes());
    chunked.extend_from_slice(&gz[10..]);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut post = b"POST /api/carts HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut ips = c.handshake();
    ips.extend(c.send(true, b"HEAD /api/items/1 HTTP/1.1\r\nHost: a\r\n\r\n", 100));
    ips.extend(c.send(
        false,
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
        100,
    ));
    ips.extend(c.send(
        true,
        b"GET /api/items/1 HTTP/1.1\r\nIf-None-Match: \"x\"\r\n\r\n",
        100,
    ));
    ips.extend(c.send(
        false,
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5000\r\n\r\n",
        100,
    ));
    ips.extend(c.send(true, b"DELETE /api/items/1 HTTP/1.1\r\n\r\n", 100));
    ips.extend(c.send(false, b"HTTP/1.1 204 No Content\r\n\r\n", 100));
    ips.extend(c.send(true, &post, 100));
    ips.extend(c.send(false, b"HTTP/1.1 100 Continue\r\n\r\n", 100));
    post.clear();
    ips.extend(c.send(true, &chunked, 7));
    ips.extend(c.send(
        false,
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        9,
    ));
    ips.extend(c.close());
    let r = read(write_pcap(&ether(ips)));
    assert_eq!(
        r.paths(),
        vec![
            "HEAD /api/items/1 Some(200)",
            "GET /api/items/1 Some(304)",
            "DELETE /api/items/1 Some(204)",
            "POST /api/carts Some(201)",
        ]
    );
    match &r.xs[3].body {
        Some(Body::Text { text, .. }) => assert_eq!(text.as_bytes(), json),
        other => panic!("the gzip body is decoded: {other:?}"),
    }
    assert_eq!(r.xs[3].response_bytes, Some(3));
    assert_eq!(r.tally().interim_responses, 1);
}

#[test]
fn timing_and_client_identity() {
    // The request in two packets 10 ms apart, the response 30 ms after its
    // last byte, in two packets 5 ms apart.
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let req = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n\r\n";
    let mut ips = c.handshake();
    ips.extend(c.send(true, req, 20));
    let resp = c.send(false, RESP_A, 40);
    let mut pkts = ether(ips);
    let after = pkts.last().unwrap().ns;
    let mut at = after + 30 * MS;
    for ip in resp {
        pkts.push(Pkt {
            ns: at,
            iface: 0,
            data: pcapgen::ethernet(&ip),
        });
        at += 5 * MS;
    }
    let first_req = pkts[3].ns;
    let r = read(write_pcap(&pkts));
    let x = &r.xs[0];
    assert_eq!(x.time.as_micros() as u64, first_req / 1000);
    assert_eq!(x.ttfb, Some(Duration::from_millis(30)));
    let span = (at - 5 * MS - first_req) / 1000;
    assert_eq!(x.duration, Some(Duration::from_micros(span)));
    assert_eq!(
        x.client.as_deref(),
        Some("203.0.113.9"),
        "the forwarded client"
    );
}

#[test]
fn a_session_spans_connections_and_deflate_bodies_are_read() {
    // One user (address and user agent) on two connections from different
    // ports, the second a minute later: one session, not two.
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(br#"{"q":"boots"}"#).unwrap();
    let z = z.finish().unwrap();
    let mut put = format!(
        "PUT /api/search HTTP/1.1\r\nHost: a\r\nUser-Agent: t/1\r\nContent-Type: application/json\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\n\r\n",
        z.len()
    )
    .into_bytes();
    put.extend_from_slice(&z);
    let mut a = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut b = Conn::v4([10, 0, 0, 1], 40777, [10, 0, 0, 2], 80);
    let mut pkts = ether(a.exchange_all(&[(GET_A, RESP_A)], 1000));
    pkts.extend(pcapgen::timed(
        b.exchange_all(&[(&put, RESP_B)], 1000),
        T0 + 60_000 * MS,
        MS,
        pcapgen::ethernet,
    ));
    let r = read(write_pcap(&pkts));
    match &r.xs[1].body {
        Some(Body::Text { text, .. }) => assert_eq!(text, r#"{"q":"boots"}"#),
        other => panic!("the deflate body is decoded: {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.pcap");
    std::fs::write(&path, write_pcap(&pkts)).unwrap();
    let (m, _, _) = crate::util::import(dir.path(), &[path.to_str().unwrap()]);
    assert_eq!((m.capture.requests, m.capture.sessions), (2, 1));
}

#[test]
fn exchanges_come_out_in_request_order() {
    // A slow request on one connection begins before a fast one on another
    // and finishes after it.
    let mut slow = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut fast = Conn::v4([10, 0, 0, 3], 40000, [10, 0, 0, 2], 80);
    let mut ips = slow.handshake();
    ips.extend(slow.send(true, GET_A, 1000));
    ips.extend(fast.exchange_all(&[(GET_B, RESP_B)], 1000));
    ips.extend(slow.send(false, RESP_A, 1000));
    ips.extend(slow.close());
    let r = read(write_pcap(&ether(ips)));
    assert_eq!(
        r.paths(),
        vec!["GET /api/items/17 Some(200)", "GET /api/items/18 Some(404)"]
    );
}

#[test]
fn idle_connections_are_closed_and_time_going_backwards_is_counted() {
    // A request unanswered, then the same connection silent for 10 minutes
    // (closed idle: the request is emitted without a response), then another
    // request on it (read as a connection seen from the middle).
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut ips = c.handshake();
    ips.extend(c.send(true, GET_A, 1000));
    let mut pkts = ether(ips);
    let mut d = Conn::v4([10, 0, 0, 9], 40000, [10, 0, 0, 2], 80);
    let later = T0 + 600_000 * MS;
    pkts.extend(pcapgen::timed(
        d.exchange_all(&[(GET_B, RESP_B)], 1000),
        later,
        MS,
        pcapgen::ethernet,
    ));
    let again = c.send(true, GET_B, 1000);
    pkts.extend(pcapgen::timed(
        again,
        later + 20 * MS,
        MS,
        pcapgen::ethernet,
    ));
    // One more exchange whose packets carry times from before the others.
    let mut e = Conn::v4([10, 0, 0, 7], 40000, [10, 0, 0, 2], 80);
    pkts.extend(pcapgen::timed(
        e.exchange_all(&[(GET_A, RESP_A)], 1000),
        T0 - 1000 * MS,
        MS,
        pcapgen::ethernet,
    ));
    let r = read(write_pcap(&pkts));
    assert_eq!(r.tally().closed_idle, 1);
    assert_eq!(
        r.paths(),
        vec![
            "GET /api/items/17 None",
            "GET /api/items/18 Some(404)",
            "GET /api/items/17 Some(200)",
            "GET /api/items/18 None",
        ]
    );
    // The exchange from the past comes when it is read, re-timed.
    assert_eq!(r.tally().retimed, 1);
    assert!(r.xs.windows(2).all(|w| w[0].time <= w[1].time));
}

#[test]
fn connections_that_are_not_http_are_set_aside() {
    let mut tls = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 443);
    let mut ips = tls.handshake();
    ips.extend(tls.send(true, &[0x16, 3, 1, 0, 40, 1, 0, 0, 36, 3, 3], 100));
    ips.extend(tls.send(false, &[0x16, 3, 3, 0, 40, 2, 0, 0, 36], 100));
    let mut ssh = Conn::v4([10, 0, 0, 1], 40001, [10, 0, 0, 2], 22);
    ips.extend(ssh.handshake());
    ips.extend(ssh.send(false, b"SSH-2.0-OpenSSH_9.2\r\n", 100));
    ips.extend(ssh.send(true, b"SSH-2.0-OpenSSH_9.6\r\n", 100));
    let mut odd = Conn::v4([10, 0, 0, 1], 40002, [10, 0, 0, 2], 5555);
    ips.extend(odd.exchange_all(&[(GET_A, RESP_A)], 100));
    let r = read(write_pcap(&ether(ips)));
    let t = r.tally();
    assert_eq!(r.xs.len(), 1);
    assert_eq!(t.not_http.get("TLS"), Some(&1));
    assert_eq!(t.not_http.get("no HTTP/1.x message found"), Some(&1));
    assert_eq!(t.server_ports.get(&5555), Some(&1));
    assert_eq!(
        r.stats.records, 1,
        "no phantom requests from other protocols"
    );
}

// ---- options ----

/// HTTP on ports 80 and 8080.
fn two_ports() -> Vec<u8> {
    let mut a = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut b = Conn::v4([10, 0, 0, 1], 40001, [10, 0, 0, 2], 8080);
    let mut ips = a.exchange_all(&[(GET_A, RESP_A)], 100);
    ips.extend(b.exchange_all(&[(GET_B, RESP_B)], 100));
    write_pcap(&ether(ips))
}

#[test]
fn port_restricts_the_servers_read() {
    let mut opts = ReadOptions::default();
    opts.pcap.ports = vec![8080];
    let r = read_bytes(two_ports(), &opts);
    assert_eq!(r.paths(), vec!["GET /api/items/18 Some(404)"]);
    assert!(r.tally().other_port_packets > 0);
    assert_eq!(
        r.tally().server_ports.keys().collect::<Vec<_>>(),
        vec![&8080]
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.pcap");
    std::fs::write(&path, two_ports()).unwrap();
    let (m, _, out) = crate::util::import(dir.path(), &[path.to_str().unwrap(), "--port", "8080"]);
    assert_eq!(m.capture.requests, 1);
    assert!(
        text(&out.stderr).contains("packets on other ports"),
        "{}",
        text(&out.stderr)
    );
    let (m, _, _) = crate::util::import(dir.path(), &[path.to_str().unwrap(), "--port", "80,8080"]);
    assert_eq!(m.capture.requests, 2);
    let bad = reprise()
        .args(["import", path.to_str().unwrap(), "--port", "0", "-o"])
        .arg(dir.path().join("m.json"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// A connection: one exchange, then an upload whose first segment is lost
/// while 100 KB of later segments arrive, never acknowledged (a one-sided
/// capture), then a request.
fn held_behind_a_hole() -> Vec<u8> {
    let big = format!(
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n{}",
        "x".repeat(100_000)
    );
    let mut c = Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let mut ips = c.handshake();
    ips.extend(c.send(true, GET_A, 1000));
    ips.extend(c.send(false, RESP_A, 1000));
    let mut segs = c.send(true, big.as_bytes(), 1000);
    segs.remove(0);
    ips.extend(segs);
    ips.extend(c.send(true, GET_B, 1000));
    write_pcap(&ether(ips))
}

#[test]
fn max_flow_bytes_bounds_what_a_connection_holds() {
    let mut opts = ReadOptions::default();
    opts.pcap.max_flow_bytes = 10_000;
    let r = read_bytes(held_behind_a_hole(), &opts);
    let t = r.tally();
    assert!(t.cut_holes >= 1, "{t:?}");
    assert!(
        t.cut_bytes <= 11_000,
        "never more than the limit held: {t:?}"
    );
    // The upload is lost; the requests before and after it are not.
    assert_eq!(
        r.paths()[..2],
        ["GET /api/items/17 Some(200)", "GET /api/items/18 None"]
    );
    // With room, the hole is kept open until the end instead.
    let r = read_bytes(held_behind_a_hole(), &ReadOptions::default());
    assert_eq!(r.tally().cut_holes, 0);

    // The flag, and what the report says.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hole.pcap");
    std::fs::write(&path, held_behind_a_hole()).unwrap();
    let out = reprise()
        .args([
            "import",
            path.to_str().unwrap(),
            "--max-flow-bytes",
            "10k",
            "-o",
        ])
        .arg(dir.path().join("m.json"))
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("memory limits cut: 1 holes"),
        "{}",
        text(&out.stderr)
    );
    for bad in [["--max-flow-bytes", "lots"], ["--max-buffered-bytes", "1k"]] {
        let out = reprise()
            .args(["import", path.to_str().unwrap()])
            .args(bad)
            .arg("-o")
            .arg(dir.path().join("m.json"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
}

#[test]
fn max_buffered_bytes_bounds_all_connections_together() {
    let mut opts = ReadOptions::default();
    opts.pcap.max_buffered_bytes = 20_000;
    let r = read_bytes(held_behind_a_hole(), &opts);
    assert!(r.tally().cut_holes >= 1);
    assert!(r.tally().cut_bytes <= 21_000);
}

#[test]
fn small_max_flow_bytes_drops_large_heads() {
    let mut opts = ReadOptions::default();
    opts.pcap.max_flow_bytes = 64;
    let r = read_bytes(write_pcap(&ether(two_exchanges(1000))), &opts);
    assert_eq!(
        r.stats.skipped.get("message head too large"),
        Some(&1),
        "{:?}",
        r.stats.skipped
    );
    assert_eq!(r.paths(), vec!["GET /api/items/18 Some(404)"]);
}

// ---- errors ----

#[test]
fn a_truncated_capture_keeps_what_is_whole() {
    let mut bytes = write_pcap(&ether(two_exchanges(1000)));
    let full = bytes.len();
    bytes.truncate(full - 10);
    let r = read(bytes.clone());
    assert!(r.result.is_ok());
    assert_eq!(r.xs.len(), 2, "the cut packet is the server's last FIN");
    assert!(
        r.stats.warnings[0].contains("truncated at byte"),
        "{:?}",
        r.stats.warnings
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let (_, _, out) = crate::util::import(dir.path(), &[path.to_str().unwrap()]);
    assert!(text(&out.stderr).contains("truncated at byte"));
    // Compressed and cut, too.
    let gz = dir.path().join("cut.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &write_pcap(&ether(two_exchanges(1000)))).unwrap();
    let mut z = enc.finish().unwrap();
    z.truncate(z.len() - 30);
    std::fs::write(&gz, &z).unwrap();
    let out = reprise()
        .args(["import", gz.to_str().unwrap(), "-o"])
        .arg(dir.path().join("m.json"))
        .output()
        .unwrap();
    assert!(!text(&out.stderr).contains("panicked"));
}

#[test]
fn damage_is_reported_with_file_and_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        reprise()
            .args(["import", path.to_str().unwrap(), "--format", "pcap", "-o"])
            .arg(dir.path().join("m.json"))
            .output()
            .unwrap()
    };
    // Not a capture at all.
    let out = run("text.pcap", b"hello, this is not a packet capture at all\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("text.pcap: byte 0: not a pcap or pcapng file"),
        "{}",
        text(&out.stderr)
    );
    // A record claiming 1 GB, before any exchange.
    let mut bytes = write_pcap(&ether(two_exchanges(1000)));
    bytes[24 + 8..24 + 12].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let out = run("huge.pcap", &bytes);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("huge.pcap: byte 24: a packet record claims 1073741824 captured bytes"),
        "{}",
        text(&out.stderr)
    );
    // The same damage after both exchanges: a warning, the exchanges kept.
    let pkts = ether(two_exchanges(1000));
    let mut bytes = write_pcap(&pkts);
    let at = bytes.len() - (16 + pkts.last().unwrap().data.len());
    bytes[at + 8..at + 12].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let out = run("late.pcap", &bytes);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("damaged at byte {at}")),
        "{}",
        text(&out.stderr)
    );
}

// ---- the capture recorded by this project ----

#[test]
fn the_recorded_capture_reproduces_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let cap = crate::util::repo("captures/demo-replay.pcap.gz");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::util::repo("captures/demo-replay.summary.json")).unwrap(),
    )
    .unwrap();
    let (m, _, _) = crate::util::import(dir.path(), &[cap.to_str().unwrap(), "--keep-assets"]);
    let sent = summary["requests"]["total"].as_u64().unwrap();
    let r = read_file(&cap);
    assert_eq!(r.stats.accepted, sent, "every request the replay sent");
    assert_eq!(r.answered() as u64, sent);
    assert_eq!(m.capture.requests, sent);
    // The endpoint mix: requests per endpoint as the replay counted them.
    for e in summary["endpoints"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let count = e["requests"].as_u64().unwrap();
        let got: u64 = m
            .endpoints
            .iter()
            .filter(|x| format!("{} {}", x.method, x.path) == name)
            .map(|x| x.requests)
            .sum();
        assert_eq!(got, count, "{name}");
    }
}
