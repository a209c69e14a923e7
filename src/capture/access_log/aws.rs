//! AWS load balancer access logs: Application (ALB) and Classic (ELB).
//!
//! Both are space-separated with quoted fields and a fixed field order
//! (AWS documents it and only ever appends). Request start is ALB's
//! `request_creation_time` when present, else the log time; the duration is
//! the sum of the three processing times, which are `-1` when the target did
//! not answer.

use super::{
    LineParser, Parsed, first_client, parse_secs, parse_status, parse_u64, present, set_target,
    split_request_line, text, tokens,
};
use crate::capture::Exchange;
use crate::model::Timestamp;

pub struct Alb;
pub struct Elb;

const ALB_TYPES: [&[u8]; 6] = [b"http", b"https", b"h2", b"grpcs", b"ws", b"wss"];

impl LineParser for Alb {
    fn parse(&mut self, line: &[u8], x: &mut Exchange) -> Parsed {
        let t = tokens(line);
        if t.len() < 14 || !ALB_TYPES.contains(&t[0]) {
            return Parsed::Skip("not an ALB log line");
        }
        // ALB: type time elb client target rpt tpt rspt elb_status
        // target_status rx tx "request" "ua" ... request_creation_time(21)
        let started = t
            .get(21)
            .and_then(|s| Timestamp::parse_iso8601(&text(s)))
            .or_else(|| Timestamp::parse_iso8601(&text(t[1])));
        finish(started, &t[3..], t.get(18).copied(), x)
    }
}

impl LineParser for Elb {
    fn parse(&mut self, line: &[u8], x: &mut Exchange) -> Parsed {
        let t = tokens(line);
        if t.len() < 13 || !t[2].contains(&b':') {
            return Parsed::Skip("not a Classic ELB log line");
        }
        finish(Timestamp::parse_iso8601(&text(t[0])), &t[2..], None, x)
    }
}

/// From `client:port` on, the two formats agree.
fn finish(
    started: Option<Timestamp>,
    t: &[&[u8]],
    domain: Option<&[u8]>,
    out: &mut Exchange,
) -> Parsed {
    let Some(time) = started else {
        return Parsed::Skip("bad timestamp");
    };
    match fields(time, t, domain) {
        Ok(x) => {
            *out = x;
            Parsed::Exchange
        }
        Err(r) => Parsed::Skip(r),
    }
}

fn fields(time: Timestamp, t: &[&[u8]], domain: Option<&[u8]>) -> Result<Exchange, &'static str> {
    // client backend rpt bpt rspt elb_status backend_status rx tx "request" "ua"
    let mut x = Exchange {
        time,
        client: first_client(t[0]),
        ..Exchange::default()
    };
    let times: Option<Vec<_>> = t[2..5].iter().map(|s| parse_secs(s)).collect();
    x.duration = times.map(|v| v.into_iter().sum());
    // The target's status when it answered, else the load balancer's own.
    x.status = match parse_status(t[6]) {
        Ok(Some(s)) => Some(s),
        _ => parse_status(t[5])?,
    };
    x.response_bytes = parse_u64(t[8]);
    let (method, target) = split_request_line(t[9])?;
    x.method = text(method);
    set_target(&mut x, target)?;
    if let Some(ua) = present(t[10]) {
        x.headers.push(("user-agent".into(), text(ua)));
    }
    if let Some(d) = domain.and_then(present) {
        x.host = Some(text(d).to_ascii_lowercase());
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alb_line() {
        let line = br#"https 2023-04-26T12:23:00.186641Z app/x/490d 192.168.1.11:44740 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/robots.txt HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:x "Root=1-58337281" "www.example.com" "arn:aws:acm" 1 2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;
        let x = super::super::parse_one(&mut Alb, line).unwrap();
        assert_eq!(x.path, "/robots.txt");
        assert_eq!(x.host.as_deref(), Some("www.example.com"));
        assert_eq!(x.client.as_deref(), Some("192.168.1.11"));
        assert_eq!(x.duration.unwrap().as_millis(), 171);
        assert_eq!(x.time.to_rfc3339(), "2018-07-02T22:22:48.364000Z");
    }

    #[test]
    fn elb_line() {
        let line = br#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
        let x = super::super::parse_one(&mut Elb, line).unwrap();
        assert_eq!(x.status, Some(200));
        assert_eq!(x.client.as_deref(), Some("192.168.131.39"));
        assert_eq!(x.header("user-agent"), Some("curl/7.38.0"));
        assert!(matches!(
            super::super::parse_one(&mut Elb, b"2015-05-13T23:39:43Z x y"),
            Err(Parsed::Skip(_))
        ));
    }
}
