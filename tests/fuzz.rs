//! Property tests: no reader, nor the modeller behind it, panics on any
//! bytes. Arbitrary bytes are tried under every format, and so are real
//! lines with random damage (which reach deeper into each parser). Packet
//! captures get their own: damaged files of every format and link layer,
//! and TCP conversations whose segments are dropped, repeated, reordered,
//! cut and corrupted (which reach the reassembler and the HTTP parser).

use proptest::prelude::*;
use reprise::capture::{self, Format, InputStats, ReadOptions};
use reprise::model::{ModelOptions, Modeller};

use crate::util::pcapgen::{self, Conn, PcapKind};

const FORMATS: [Format; 9] = [
    Format::Har,
    Format::Clf,
    Format::LogFormat,
    Format::Alb,
    Format::Elb,
    Format::Cloudfront,
    Format::W3c,
    Format::Json,
    Format::Pcap,
];

const SEEDS: [&str; 8] = [
    "{\"log\":{\"entries\":[{\"startedDateTime\":\"2024-01-01T00:00:00Z\",\"time\":5,\"request\":{\"method\":\"GET\",\"url\":\"http://a/b/12?x=1\",\"headers\":[{\"name\":\"Authorization\",\"value\":\"Bearer a.b.c\"}],\"postData\":{\"mimeType\":\"application/json\",\"text\":\"{\\\"a\\\":[1,{\\\"password\\\":2}]}\"}},\"response\":{\"status\":200}}]}}",
    "1.2.3.4 - bob [10/Oct/2000:13:55:36 -0700] \"GET /a/1?b=2&flag&=x&&c= HTTP/1.1\" 200 2326 \"-\" \"curl\" 0.005\n",
    "h 1.2.3.4, 5.6.7.8 - - [10/Oct/2000:13:55:36 +0000] \"POST /x HTTP/1.0\" 201 - \"r\" \"u\" \"9.9.9.9\"\n",
    "https 2023-04-26T12:23:00.186641Z app/x 192.168.1.11:44740 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 \"GET https://w.example.com:443/r HTTP/1.1\" \"curl\" - - arn \"Root\" \"d\" \"c\" 1 2018-07-02T22:22:48.364000Z\n",
    "2015-05-13T23:39:43.945958Z lb 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 \"GET http://e.com:80/ HTTP/1.1\" \"curl\" - -\n",
    "#Fields: date time c-ip cs-method cs-uri-stem cs-uri-query sc-status time-taken cs(User-Agent)\n2019-03-06 18:43:17 10.0.0.2 GET /h q=1 200 15 Mozilla/4.0+(x)\n",
    "2024-03-12\t15:22:28\tCDG50\t703\t1.2.3.4\tGET\td.net\t/t\t400\t-\tcurl\tq=42\t-\tError\tid\th.net\thttps\t62\t0.113\t-\n",
    "{\"ts\":1693840791.75,\"request\":{\"client_ip\":\"127.0.0.1\",\"method\":\"GET\",\"host\":\"h\",\"uri\":\"/a?b=1\",\"headers\":{\"User-Agent\":[\"c\"]}},\"duration\":0.5,\"status\":200}\n",
];

/// Reads `bytes` as `format` and models whatever comes out. Errors are
/// fine; panics are not.
fn read_and_model(bytes: Vec<u8>, format: Option<Format>) {
    let opts = ReadOptions {
        format,
        ..ReadOptions::default()
    };
    let Ok(input) = capture::Input::from_bytes("fuzz", bytes) else {
        return;
    };
    let mut stats = InputStats::new("fuzz");
    let mut modeller = Modeller::new(ModelOptions::default());
    let _ = capture::read(
        input,
        &opts,
        &mut stats,
        &mut capture::Emit::new(|x| modeller.add(0, &x)),
    );
    if let Some(m) = modeller.finish(&[stats]) {
        let json = m.to_json();
        reprise::model::Model::from_json("fuzz", json.as_bytes()).expect("a model reads back");
    }
}

/// Applies `edits`: (where, byte, what) — 0 sets the byte, 1 removes it, 2
/// inserts one, 3 cuts the rest off.
fn damage(b: &mut Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) {
    for &(at, byte, op) in edits {
        if b.is_empty() {
            break;
        }
        let i = at.index(b.len());
        match op {
            0 => b[i] = byte,
            1 => {
                b.remove(i);
            }
            2 => b.insert(i, byte),
            _ => b.truncate(i),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500), f in 0..=FORMATS.len()) {
        read_and_model(bytes, FORMATS.get(f).copied());
    }

    #[test]
    fn damaged_records_never_panic(
        seed in 0..SEEDS.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12),
        f in 0..=FORMATS.len(),
    ) {
        let mut b = SEEDS[seed].as_bytes().to_vec();
        damage(&mut b, &edits);
        // Each seed under its own format (deep) and under a random one.
        read_and_model(b.clone(), None);
        read_and_model(b, FORMATS.get(f).copied());
    }

    #[test]
    fn detection_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = capture::detect(&bytes);
    }

    #[test]
    fn time_parsers_never_panic(s in ".{0,40}") {
        let _ = reprise::model::Timestamp::parse_iso8601(&s);
        let _ = reprise::model::Timestamp::parse_clf(s.as_bytes());
        let _ = reprise::model::Timestamp::parse_w3c(&s, &s);
    }
}

// ---- packet captures ----

const REQ: &[u8] = b"POST /api/orders/7 HTTP/1.1\r\nHost: acme.test\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"sku\":\"A-1\",\"n\":2}";
const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n";
const GET: &[u8] =
    b"GET /api/items/1?x=2 HTTP/1.1\r\nHost: acme.test\r\nExpect: 100-continue\r\n\r\n";
const SIZED: &[u8] =
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!";

/// The IP packets of a keep-alive conversation (IPv4 or IPv6).
fn conversation(v6: bool) -> Vec<Vec<u8>> {
    let mut c = if v6 {
        Conn::v6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            40000,
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            80,
        )
    } else {
        Conn::v4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80)
    };
    c.exchange_all(&[(REQ, CHUNKED), (GET, SIZED), (REQ, CHUNKED)], 23)
}

/// Whole captures to damage: each file format and several link layers.
fn capture_seeds() -> Vec<Vec<u8>> {
    let at = 1_700_000_000_000_000_000;
    let ms = 1_000_000;
    let eth = |v6| pcapgen::timed(conversation(v6), at, ms, pcapgen::ethernet);
    vec![
        pcapgen::pcap(
            PcapKind {
                big_endian: false,
                nanos: false,
            },
            1,
            &eth(false),
        ),
        pcapgen::pcap(
            PcapKind {
                big_endian: true,
                nanos: true,
            },
            1,
            &eth(true),
        ),
        pcapgen::pcapng(false, &[(1, 6)], &eth(false)),
        pcapgen::pcapng(true, &[(1, 9)], &eth(true)),
        pcapgen::pcap(
            PcapKind {
                big_endian: false,
                nanos: false,
            },
            276,
            &pcapgen::timed(conversation(false), at, ms, pcapgen::sll2),
        ),
        pcapgen::pcap(
            PcapKind {
                big_endian: false,
                nanos: false,
            },
            1,
            &pcapgen::timed(conversation(false), at, ms, pcapgen::vlan3),
        ),
        pcapgen::pcap(
            PcapKind {
                big_endian: false,
                nanos: false,
            },
            0,
            &pcapgen::timed(conversation(true), at, ms, pcapgen::null_le),
        ),
    ]
}

/// Reads a capture; checks what holds whatever the input: every request
/// found is accepted or skipped, and exchanges come out in time order.
fn read_capture(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let Ok(input) = capture::Input::from_bytes("fuzz.pcap", bytes) else {
        return Ok(());
    };
    let opts = ReadOptions {
        format: Some(Format::Pcap),
        ..ReadOptions::default()
    };
    let mut stats = InputStats::new("fuzz.pcap");
    let mut times = Vec::new();
    let mut modeller = Modeller::new(ModelOptions::default());
    let _ = capture::read(
        input,
        &opts,
        &mut stats,
        &mut capture::Emit::new(|x| {
            times.push(x.time);
            modeller.add(0, &x);
        }),
    );
    prop_assert_eq!(stats.records, stats.accepted + stats.skipped_total());
    prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "{:?}", times);
    if let Some(m) = modeller.finish(&[stats]) {
        reprise::model::Model::from_json("fuzz", m.to_json().as_bytes())
            .expect("a model reads back");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn damaged_captures_never_panic(
        seed in 0..7usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..16),
    ) {
        let mut b = capture_seeds().swap_remove(seed);
        damage(&mut b, &edits);
        read_capture(b.clone())?;
        read_and_model(b, None);
    }

    #[test]
    fn arbitrary_bytes_behind_capture_magic(
        magic in 0..4usize,
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
    ) {
        let heads: [&[u8]; 4] = [
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0],
            &[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 113],
            &[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0],
            &[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28],
        ];
        let mut b = heads[magic].to_vec();
        b.extend(bytes);
        read_capture(b)?;
    }

    /// The reassembler and the HTTP parser under a hostile network: any
    /// segment dropped, repeated, moved, cut short or with a bit of its
    /// TCP header or payload flipped.
    #[test]
    fn scrambled_tcp_conversations(
        v6 in any::<bool>(),
        ops in proptest::collection::vec((0u8..6, any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 0..30),
    ) {
        let mut ips = conversation(v6);
        let ip_header = if v6 { 40 } else { 20 };
        for (op, a, b, byte) in ops {
            if ips.is_empty() { break; }
            let i = a.index(ips.len());
            match op {
                0 => { ips.remove(i); }
                1 => { let p = ips[i].clone(); ips.insert(b.index(ips.len() + 1), p); }
                2 => { let j = b.index(ips.len()); ips.swap(i, j); }
                3 => { let n = ips[i].len(); ips[i].truncate(ip_header + b.index(n - ip_header + 1)); }
                // A byte of the TCP header (sequence numbers, flags, offsets).
                4 => {
                    if let Some(x) = ips[i].get_mut(ip_header + b.index(20)) {
                        *x = byte;
                    }
                }
                _ => { let n = ips[i].len(); let k = b.index(n); ips[i][k] ^= byte; }
            }
        }
        let pkts = pcapgen::timed(ips, 1_700_000_000_000_000_000, 1_000_000, pcapgen::ethernet);
        read_capture(pcapgen::pcap(PcapKind { big_endian: false, nanos: false }, 1, &pkts))?;
    }
}
