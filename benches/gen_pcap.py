#!/usr/bin/env python3
"""Generate a large synthetic packet capture (pcap) of HTTP/1.1 API traffic
for importer benchmarks.

Usage:
    python3 benches/gen_pcap.py --size-mb 1024 --out bench-data/capture.pcap [--seed 1]
        [--clients 20000] [--concurrency 400] [--reorder 0.001] [--retransmit 0.001]
        [--loss 0] [--no-acks]

What it looks like: the traffic a sidecar tcpdump sees in front of a
multi-tenant shop API, on Ethernet, IPv4, classic little-endian pcap with
microsecond timestamps (what `tcpdump -w` writes):

* a fixed pool of clients (`--clients`), each with its own address and user
  agent; `--concurrency` connections open at once, each a keep-alive session
  of 2 to 12 requests with think times between them (a client never holds
  two connections at once);
* two servers: the API on 10.0.0.10:8080 and an older one on 10.0.0.11:80;
* five tenants by subdomain (`Host: acme.shop.example.com`), bearer tokens
  on logged-in sessions, numeric ids and UUIDs in paths, page and search
  query strings;
* GETs with JSON responses (log-normal sizes, median ~6 KB, some up to a
  few hundred KB), 10% of them chunked; POST/PUT with JSON bodies, some
  gzip-compressed; 201, 204, 304 without bodies, some 404/409/500;
* real TCP: handshake, MSS-sized segments (1448 bytes), an ACK every two
  segments, FIN at the end; a small share of segments reordered
  (`--reorder`) or sent twice (`--retransmit`), so reassembly has work.

For memory tests: `--loss P` drops data segments without retransmitting
them, and `--no-acks` leaves out the pure ACKs (a capture of one direction's
acknowledgements missing), so nothing confirms a hole before the connection
ends and the importer must hold what follows it (bounded by
`--max-flow-bytes`).

Output is deterministic for a given --seed and size; the file ends after the
first connection that completes past the requested size. Standard library
only. About 25 MiB/s on one core here (1 GiB in ~45 s).
"""

import argparse
import base64
import gzip
import heapq
import json
import random
import struct
import sys
from collections import deque

TENANTS = (("acme", 0.38), ("globex", 0.24), ("initech", 0.17),
           ("umbrella", 0.13), ("hooli", 0.08))
SERVERS = ((bytes([10, 0, 0, 10]), 8080), (bytes([10, 0, 0, 11]), 80))
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "shop-android/4.12.0 okhttp/4.12.0",
    "shop-ios/4.11.2 CFNetwork/1494.0.7 Darwin/23.4.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
)
MSS = 1448
MAC_SERVER = b"\x02\x00\x00\x00\x00\x01"
MAC_CLIENT = b"\x02\x00\x00\x00\x00\x02"

# A body to slice response payloads from: JSON-looking text.
BLOB = (json.dumps([{"id": i, "sku": f"SKU-{i:06d}", "name": f"Product {i}",
                     "price": round(i * 1.37 % 500, 2), "tags": ["a", "b", "c"],
                     "stock": i % 97} for i in range(6000)]) * 2).encode()


def pick(rng, weighted):
    r = rng.random()
    for name, w in weighted:
        r -= w
        if r <= 0:
            return name
    return weighted[-1][0]


def token(i, rng):
    """A JWT-shaped bearer token whose subject is the client."""
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'HS256'})}.{b64({'sub': f'user-{i}', 'exp': 1718107200})}.{rng.getrandbits(128):032x}"


def checksum(hdr):
    s = sum(struct.unpack("!10H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Conn:
    """One TCP connection: packets in time order, as a generator."""

    def __init__(self, rng, client, start_us, ident):
        self.rng = rng
        self.client = client
        self.start = start_us
        self.ident = ident
        self.server, self.sport = SERVERS[0] if rng.random() < 0.8 else SERVERS[1]
        self.cport = 20000 + ident % 40000
        self.cseq = rng.getrandbits(32)
        self.sseq = rng.getrandbits(32)
        self.ipid = rng.getrandbits(16)

    def packet(self, from_client, flags, payload=b""):
        if from_client:
            src, dst, sp, dp = self.client["ip"], self.server, self.cport, self.sport
            seq, ack = self.cseq, self.sseq
            macs = MAC_SERVER + MAC_CLIENT
        else:
            src, dst, sp, dp = self.server, self.client["ip"], self.sport, self.cport
            seq, ack = self.sseq, self.cseq
            macs = MAC_CLIENT + MAC_SERVER
        self.ipid = (self.ipid + 1) & 0xFFFF
        tcp = struct.pack("!HHIIBBHHH", sp, dp, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, 64240, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload),
                         self.ipid, 0x4000, 64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        n = len(payload) + (1 if flags & 0x03 else 0)  # SYN and FIN take a number
        if from_client:
            self.cseq += n
        else:
            self.sseq += n
        return macs + b"\x08\x00" + ip + tcp + payload

    def send(self, t, from_client, data, out, net):
        """Segments of `data` with an ACK every two; returns the time after."""
        reorder, retransmit, loss, acks = net
        rng = self.rng
        segs = [data[i:i + MSS] for i in range(0, len(data), MSS)]
        pkts = []
        for i, s in enumerate(segs):
            p = self.packet(from_client, 0x18 if i == len(segs) - 1 else 0x10, s)
            if rng.random() >= loss:
                pkts.append(p)
            if acks and (i % 2 == 1 or i == len(segs) - 1):
                pkts.append(self.packet(not from_client, 0x10))
        for i, p in enumerate(pkts):
            if rng.random() < retransmit:
                pkts.insert(min(len(pkts), i + 2), p)
        for i in range(len(pkts) - 1):
            if rng.random() < reorder:
                pkts[i], pkts[i + 1] = pkts[i + 1], pkts[i]
        for p in pkts:
            t += 12 if len(p) > 100 else 3
            out.append((t, p))
        return t

    def run(self, net):
        rng, c = self.rng, self.client
        out = []
        t = self.start
        out.append((t, self.packet(True, 0x02)))
        t += 150
        out.append((t, self.packet(False, 0x12)))
        t += 150
        out.append((t, self.packet(True, 0x10)))
        for _ in range(rng.randint(2, 12)):
            t += int(rng.lognormvariate(13.0, 1.0))  # think time, median ~0.44 s
            req = request(rng, c)
            t = self.send(t, True, req, out, net)
            t += int(rng.lognormvariate(8.5, 0.8))  # server time, median ~5 ms
            t = self.send(t, False, response(rng, req), out, net)
        t += 1000
        out.append((t, self.packet(True, 0x11)))
        out.append((t + 100, self.packet(False, 0x11)))
        out.append((t + 200, self.packet(True, 0x10)))
        return out


def request(rng, c):
    tenant = c["tenant"]
    r = rng.random()
    body = None
    if r < 0.55:
        method, path = "GET", f"/api/v1/products/{rng.randint(1, 50000)}"
    elif r < 0.70:
        method, path = "GET", f"/api/v1/orders?page={rng.randint(1, 20)}&status=open"
    elif r < 0.78:
        method, path = "GET", f"/api/v1/search?q=item{rng.randint(1, 999)}&limit=20"
    elif r < 0.88:
        method, path = "POST", "/api/v1/orders"
        body = {"items": [{"sku": f"SKU-{rng.randint(1, 6000):06d}", "qty": rng.randint(1, 4)}
                          for _ in range(rng.randint(1, 5))], "note": "x" * rng.randint(0, 400)}
    elif r < 0.95:
        method = "PUT"
        path = f"/api/v1/carts/{c['cart']}"
        body = {"sku": f"SKU-{rng.randint(1, 6000):06d}", "qty": rng.randint(1, 3)}
    else:
        method, path = "DELETE", f"/api/v1/carts/{c['cart']}/items/{rng.randint(1, 40)}"
    lines = [f"{method} {path} HTTP/1.1",
             f"Host: {tenant}.shop.example.com",
             f"User-Agent: {c['agent']}",
             "Accept: application/json",
             f"X-Request-Id: {rng.getrandbits(64):016x}"]
    if c["token"]:
        lines.append(f"Authorization: Bearer {c['token']}")
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        lines.append("Content-Type: application/json")
        if rng.random() < 0.2:
            payload = gzip.compress(payload, compresslevel=1, mtime=0)
            lines.append("Content-Encoding: gzip")
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def response(rng, req):
    method = req.split(b" ", 1)[0]
    r = rng.random()
    if method == b"DELETE":
        status, size = (204, 0)
    elif method == b"POST":
        status, size = (201, rng.randint(200, 900)) if r < 0.95 else (409, 120)
    elif r < 0.05:
        status, size = 304, 0
    elif r < 0.08:
        status, size = 404, 90
    elif r < 0.085:
        status, size = 500, 60
    else:
        status, size = 200, min(int(rng.lognormvariate(8.7, 1.0)), 400_000)
    reason = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
              404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}[status]
    head = [f"HTTP/1.1 {status} {reason}", "Server: shop-api",
            "Date: Mon, 10 Jun 2024 12:00:00 GMT"]
    if status in (204, 304):
        return ("\r\n".join(head) + "\r\n\r\n").encode()
    start = rng.randint(0, len(BLOB) - size - 1)
    body = BLOB[start:start + size]
    head.append("Content-Type: application/json")
    if size > 4096 and rng.random() < 0.1:
        head.append("Transfer-Encoding: chunked")
        parts = [body[i:i + 8192] for i in range(0, len(body), 8192)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {size}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clients", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=400)
    ap.add_argument("--reorder", type=float, default=0.001)
    ap.add_argument("--retransmit", type=float, default=0.001)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--no-acks", action="store_true")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    target = int(a.size_mb * 1024 * 1024)
    clients = []
    for i in range(a.clients):
        clients.append({
            "ip": bytes([10, 1 + i // 65536 % 200, i // 256 % 256, i % 256]),
            "agent": rng.choice(AGENTS),
            "tenant": pick(rng, TENANTS),
            "n": i,
            "token": (token(i, rng) if rng.random() < 0.6 else None),
            "cart": f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}"
                    f"-a{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}",
        })
    order_ = list(range(a.clients))
    rng.shuffle(order_)
    idle = deque(order_)
    start = 1_718_020_800 * 1_000_000  # 2024-06-10T12:00:00Z
    written = 24
    # Packets of open connections, merged by time: (time, order, packet).
    heap = []
    order = 0
    ident = 0
    clock = start

    def open_one(t):
        nonlocal ident, order
        client = clients[idle.popleft()]
        conn = Conn(random.Random(rng.getrandbits(64)), client, t, ident)
        ident += 1
        pkts = conn.run((a.reorder, a.retransmit, a.loss, not a.no_acks))
        for ts, p in pkts:
            heapq.heappush(heap, (ts, order, p, None))
            order += 1
        # Marks the connection's end: the client is free, another opens.
        heapq.heappush(heap, (pkts[-1][0], order, None, client))
        order += 1

    for _ in range(a.concurrency):
        clock += rng.randint(0, 20_000)
        open_one(clock)
    out = open(a.out, "wb")
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    buf = []
    while heap:
        ts, _, p, done = heapq.heappop(heap)
        if p is None:
            idle.append(done["n"])
            if written < target:
                open_one(ts + rng.randint(0, 5_000))
            continue
        buf.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(p), len(p)))
        buf.append(p)
        written += 16 + len(p)
        if len(buf) > 8192:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
    out.close()
    print(f"wrote {written} bytes, {ident} connections", file=sys.stderr)


if __name__ == "__main__":
    main()
