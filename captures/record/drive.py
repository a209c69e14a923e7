#!/usr/bin/env python3
"""Simulated shoppers for recording captures of the demo target.

Each shopper is a user of one tenant (acme, globex, initech, umbrella, with
different weights) who runs one session — log in or not, browse products,
maybe order and track the order — with think times between requests, then
leaves and a new shopper arrives. Every shopper sends from its own loopback
address (127.T.U.V) with its own user agent, so the web server's access log
tells clients apart the way production logs do.

Usage: drive.py --base http://127.0.0.1:18081 --seconds 150 --users 30

Only the standard library; talks only to the given loopback base URL.
"""

import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse

TENANTS = [("acme", 0.45), ("globex", 0.30), ("initech", 0.15), ("umbrella", 0.10)]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "ShopApp/3.2.1 (iPhone; iOS 17.5)",
    "ShopApp/3.2.0 (Android 14; Pixel 8)",
    "okhttp/4.12.0",
]
PASSWORD = "demo-password"


class Shopper:
    def __init__(self, base, tenant, user, rng, think_median):
        self.base = urllib.parse.urlsplit(base)
        self.tenant = tenant
        self.user = user
        self.rng = rng
        self.think_median = think_median
        t = [name for name, _ in TENANTS].index(tenant) + 1
        self.source = f"127.{t}.{user // 250}.{user % 250 + 1}"
        self.agent = AGENTS[user % len(AGENTS)]
        self.token = None
        self.conn = None

    def think(self):
        time.sleep(min(30.0, self.rng.lognormvariate(0, 0.6) * self.think_median))

    def request(self, method, path, body=None):
        headers = {
            "Host": f"{self.tenant}.shop.test",
            "X-Tenant-ID": self.tenant,
            "User-Agent": self.agent,
            "Accept": "application/json",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    self.base.hostname, self.base.port, timeout=10, source_address=(self.source, 0)
                )
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                try:
                    return resp.status, json.loads(payload or b"null")
                except ValueError:
                    return resp.status, None
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0, None
        return 0, None

    def product_id(self):
        t = [name for name, _ in TENANTS].index(self.tenant) + 1
        # Popular products first: a skewed draw over the 500 ids.
        return t * 1000 + int(self.rng.random() ** 2.5 * 500)

    def session(self):
        r = self.rng.random()
        if self.rng.random() < 0.6:
            status, body = self.request(
                "POST", "/api/login", {"email": f"user{self.user}@{self.tenant}.example", "password": PASSWORD}
            )
            if status == 200 and body:
                self.token = body.get("token")
            self.think()
        if r < 0.45:  # browse
            for _ in range(self.rng.randint(1, 3)):
                self.request("GET", f"/api/products?page={self.rng.randint(1, 5)}&per_page=20")
                self.think()
                for _ in range(self.rng.randint(1, 3)):
                    self.request("GET", f"/api/products/{self.product_id()}")
                    self.think()
        elif r < 0.80:  # buy
            self.request("GET", f"/api/products?page=1&per_page=20")
            self.think()
            pid = self.product_id()
            self.request("GET", f"/api/products/{pid}")
            self.think()
            status, order = self.request("POST", "/api/orders", {"product_id": pid, "quantity": self.rng.randint(1, 3)})
            if status == 201 and order:
                self.think()
                self.request("GET", f"/api/orders/{order['id']}")
        elif r < 0.95:  # check orders
            self.request("GET", "/api/orders?page=1")
            if self.token:
                self.think()
                self.request("GET", "/api/me")
        else:  # a quick look
            self.request("GET", f"/api/products/{self.product_id()}")
        if self.conn:
            self.conn.close()


def worker(args, seed, deadline, counter, lock):
    rng = random.Random(seed)
    while time.time() < deadline:
        tenant = rng.choices([t for t, _ in TENANTS], weights=[w for _, w in TENANTS])[0]
        user = rng.randrange(0, 600)
        Shopper(args.base, tenant, user, rng, args.think).session()
        with lock:
            counter[0] += 1
        # The next shopper of this slot arrives a little later.
        time.sleep(rng.expovariate(1 / args.arrival_gap))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="loopback base URL, e.g. http://127.0.0.1:18081")
    p.add_argument("--seconds", type=float, default=150)
    p.add_argument("--users", type=int, default=30, help="concurrent shoppers")
    p.add_argument("--think", type=float, default=2.0, help="median think time, seconds")
    p.add_argument("--arrival-gap", type=float, default=2.0, help="mean pause before a slot's next shopper")
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args()
    host = urllib.parse.urlsplit(args.base).hostname
    if not host.startswith("127."):
        raise SystemExit("drive.py only talks to loopback addresses")
    deadline = time.time() + args.seconds
    counter, lock = [0], threading.Lock()
    threads = [
        threading.Thread(target=worker, args=(args, args.seed * 1000 + i, deadline, counter, lock), daemon=True)
        for i in range(args.users)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 60)
    print(f"{counter[0]} sessions")


if __name__ == "__main__":
    main()
