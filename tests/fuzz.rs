//! Property tests: no reader, nor the modeller behind it, panics on any
//! bytes. Arbitrary bytes are tried under every format, and so are real
//! lines with random damage (which reach deeper into each parser).

use proptest::prelude::*;
use reprise::capture::{self, Format, InputStats, ReadOptions};
use reprise::model::{ModelOptions, Modeller};

const FORMATS: [Format; 8] = [
    Format::Har,
    Format::Clf,
    Format::LogFormat,
    Format::Alb,
    Format::Elb,
    Format::Cloudfront,
    Format::W3c,
    Format::Json,
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
        for (at, byte, op) in edits {
            if b.is_empty() { break; }
            let i = at.index(b.len());
            match op {
                0 => b[i] = byte,
                1 => { b.remove(i); }
                _ => b.insert(i, byte),
            }
        }
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
