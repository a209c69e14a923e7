//! What reading a capture found besides exchanges: packets, connections,
//! responses, losses, what the limits cut — for the import report.

use std::collections::BTreeMap;

use crate::output::thousands;

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
