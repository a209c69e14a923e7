#!/usr/bin/env python3
"""Generate a synthetic nginx *combined* access log for importer benchmarks.

Usage:
    python3 benches/gen_access_log.py --size-mb 1024 --out bench-data/access.log [--seed 1]
        [--rate 1500] [--clients 300000] [--start 2024-10-10T08:00:00Z]

The log looks like production traffic of a multi-tenant shop API behind nginx
(`log_format combined`):

    203.0.113.7 - - [10/Oct/2024:13:55:36 +0000] "GET /t/acme/api/v1/products/48213 HTTP/1.1" 200 1834 "https://acme.shop.example.com/products" "Mozilla/5.0 (...)"

* five tenants of different weights, named by the path (`/t/<tenant>/api/v1/...`,
  i.e. `reprise import --tenant path:2`);
* a fixed pool of clients (`--clients`; IPv4 and some IPv6 addresses), each
  with a stable user agent: browsers (send a referer; on a first visit they
  load the SPA's static assets, shared by all tenants under /static/), mobile
  apps, and server-side API integrations (short think times, some with a
  basic-auth user); plus a load-balancer health check on /healthz;
* sessions of several requests that follow a few flows (browse, search, buy,
  check orders, sync orders) with think times between them; a client never
  runs two sessions at once;
* numeric ids, UUIDs, pagination and search query strings, a status mix of
  mostly 200 with some 201/304/400/404/422/429/500, plausible byte counts;
* timestamps that only go forward, at about `--rate` requests per second on
  average, with a gentle day/night cycle (so 1 GB spans about an hour, larger
  files several hours or days).

Idle clients are reused longest-idle first. At 1,500 req/s about 100 sessions
start per second, so the default 300,000 clients come back after ~45 min, more
than a 30 min session gap: sessions grouped by address + user agent stay
apart. With tens of thousands of clients each would return every few minutes
and its sessions would run together (like users behind a NAT), and far fewer
sessions would be open at once.

Output is deterministic for a given --seed and size. The file ends at the
first line boundary at or after the requested size. Standard library only;
value pools are built up front (~1 s), then lines are assembled from them and
written in large chunks: 1 GiB in about 12 s (~85 MiB/s) on one core here.
"""

import argparse
import bisect
import math
import random
import sys
import time
from collections import deque
from datetime import datetime, timezone

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Tenant name and share of the traffic.
TENANTS = (("acme", 0.38), ("globex", 0.24), ("initech", 0.17),
           ("umbrella", 0.13), ("hooli", 0.08))

POOL_BITS = 12           # every value pool has 2**POOL_BITS entries
POOL = 1 << POOL_BITS
RING = 256               # seconds of the future a session can be scheduled into
RING_MASK = RING - 1
WARMUP = 240             # seconds simulated before the log starts
HEALTH = 'GET /healthz HTTP/1.1" 200 2 "-" "ELB-HealthChecker/2.0"\n'

CATEGORIES = ("shoes", "shirts", "outdoor", "kitchen", "toys", "books",
              "garden", "electronics", "beauty", "sports")
SEARCH_WORDS = ("running+shoes", "blue+shirt", "tent", "kettle", "lego",
                "novel", "hose", "usb-c+cable", "headphones", "yoga+mat",
                "backpack", "coffee", "rain+jacket", "desk+lamp", "socks")
SORTS = ("price_asc", "price_desc", "newest", "rating")
ORDER_STATES = ("open", "paid", "shipped", "cancelled")

# Static assets of the single-page app: path, content bytes.
ASSETS = (("/static/app.3f2a1c.js", 412_733), ("/static/vendor.9b8e7d.js", 1_204_118),
          ("/static/app.5c1d2e.css", 88_412), ("/static/img/logo.a1b2c3.png", 14_208),
          ("/static/img/sprite.77e0f1.png", 52_993), ("/static/fonts/inter.var.woff2", 96_184),
          ("/favicon.ico", 5_430))


class FastRandom(random.Random):
    """random.Random with cheaper randint/randrange/choice (building the value
    pools makes over a million such calls). Deterministic for a seed."""

    def randint(self, a, b):
        return a + int(self.random() * (b - a + 1))

    def randrange(self, a, b=None):
        if b is None:
            a, b = 0, a
        return a + int(self.random() * (b - a))

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]


# ---------------------------------------------------------------- clients ----

def browser_agents(r):
    """A few hundred realistic browser user agents."""
    out = []
    for v in range(118, 131):
        for plat in ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7",
                     "X11; Linux x86_64"):
            out.append(f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) "
                       f"Chrome/{v}.0.0.0 Safari/537.36")
        out.append(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                   f"(KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.{r.randint(1000, 2900)}.{r.randint(10, 99)}")
        for dev in ("Linux; Android 10; K", "Linux; Android 14; Pixel 8",
                    "Linux; Android 13; SM-S918B"):
            out.append(f"Mozilla/5.0 ({dev}) AppleWebKit/537.36 (KHTML, like Gecko) "
                       f"Chrome/{v}.0.0.0 Mobile Safari/537.36")
    for v in range(115, 132):
        out.append(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0")
        out.append(f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:{v}.0) Gecko/20100101 Firefox/{v}.0")
        out.append(f"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0")
    for v in ("16_6", "17_0", "17_4_1", "17_5_1", "17_6", "18_0", "18_0_1"):
        sv = v.replace("_", ".").rsplit(".", 1)[0] if v.count("_") > 1 else v.replace("_", ".")
        out.append(f"Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 "
                   f"(KHTML, like Gecko) Version/{sv} Mobile/15E148 Safari/604.1")
        out.append(f"Mozilla/5.0 (iPad; CPU OS {v} like Mac OS X) AppleWebKit/605.1.15 "
                   f"(KHTML, like Gecko) Version/{sv} Mobile/15E148 Safari/604.1")
        out.append(f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                   f"(KHTML, like Gecko) Version/{sv} Safari/605.1.15")
    return out


def mobile_agents(r):
    out = []
    for build in range(4800, 4830):
        ver = f"4.{build // 10 - 472}.{build % 10}"
        for ios in ("16.7.8", "17.5.1", "17.6.1", "18.0", "18.0.1"):
            out.append(f"ShopKit/{ver} (com.example.shopkit; build:{build}; iOS {ios}) Alamofire/5.9.1")
        for dev, andr, bld in (("Pixel 8", "14", "AP2A.240805.005"), ("SM-A546B", "14", "UP1A.231005.007"),
                               ("moto g54 5G", "13", "T1TDS33.60-71"), ("Redmi Note 12", "13", "TKQ1.221114.001")):
            out.append(f"ShopKit/{ver} (Android {andr}; {dev} Build/{bld}) okhttp/4.12.0")
    return out


API_AGENTS = ("python-requests/2.31.0", "python-requests/2.32.3", "Go-http-client/1.1",
              "Go-http-client/2.0", "axios/1.7.7", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
              "PostmanRuntime/7.42.0", "curl/8.5.0", "Java/17.0.12", "Apache-HttpClient/4.5.14 (Java/11.0.24)",
              "okhttp/4.12.0", "Ruby", "erp-sync/3.2.0 (+https://erp.example.net)")


# Public-looking first octets (no 10/8, 127/8, 172.16/12, 192.168/16): 32 of them.
FIRST_OCTETS = (23, 31, 37, 45, 46, 62, 66, 73, 77, 81, 82, 86, 88, 90, 91, 93,
                94, 98, 99, 104, 107, 109, 145, 151, 176, 178, 185, 188, 193, 203, 212, 217)


def ipv4(r):
    x = r.getrandbits(29)
    return f"{FIRST_OCTETS[x & 31]}.{x >> 5 & 255}.{x >> 13 & 255}.{(x >> 21) % 254 + 1}"


def ipv6(r):
    x = r.getrandbits(64)
    return f"2a01:{0x4000 + (x & 0xfff):x}:{x >> 12 & 0xffff:x}:{x >> 28 & 0xffff:x}::{(x >> 44 & 0xffff) + 1:x}"


# ------------------------------------------------------------- endpoints ----

def status_bytes(r, mix, size):
    """Pick a status from `mix` ((status, weight), ...) and a body size for it."""
    s = r.choices(mix[0], cum_weights=mix[1])[0]
    if s == 304:
        return s, 0
    if s in (400, 404, 409, 422, 429):
        return s, r.randint(60, 180)
    if s >= 500:
        return s, r.choice((157, 166, 183, 502))
    return s, size()


def mix(*pairs):
    """((status, weight), ...) -> (statuses, cumulative weights) for random.choices."""
    statuses, weights = zip(*pairs)
    cum, total = [], 0
    for w in weights:
        total += w
        cum.append(total)
    return statuses, cum


OK = mix((200, 960), (304, 20), (401, 4), (500, 6), (503, 2))
OK_ID = mix((200, 900), (304, 30), (404, 60), (500, 8), (503, 2))
CREATED = mix((201, 930), (400, 25), (409, 8), (422, 25), (500, 10), (503, 2))
TOKEN = mix((200, 970), (401, 25), (429, 5))
ASSET = mix((200, 700), (304, 290), (404, 10))


def uuid(r):
    h = "%032x" % r.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def product_id(r):
    # Log-uniform over 1..99999: a few hot products, a long tail.
    return int(100_000 ** r.random())


def endpoint_kinds():
    """Endpoint kinds: name -> function(r, tenant) giving `METHOD target` and a status/bytes pair."""
    def ver(r):
        return "HTTP/2.0" if r.random() < 0.3 else "HTTP/1.1"

    def list_products(r, base):
        q = f"page={min(int(r.expovariate(0.45)) + 1, 40)}"
        if r.random() < 0.5:
            q += "&per_page=" + r.choice(("24", "48"))
        if r.random() < 0.35:
            q += "&sort=" + r.choice(SORTS)
        if r.random() < 0.4:
            q += "&category=" + r.choice(CATEGORIES)
        return "GET", f"{base}/products?{q}", OK, lambda: r.randint(4_000, 26_000)

    def get_product(r, base):
        return "GET", f"{base}/products/{product_id(r)}", OK_ID, lambda: r.randint(900, 3_400)

    def reviews(r, base):
        return ("GET", f"{base}/products/{product_id(r)}/reviews?page={r.randint(1, 3)}",
                OK_ID, lambda: r.randint(600, 9_000))

    def search(r, base):
        return ("GET", f"{base}/search?q={r.choice(SEARCH_WORDS)}&page={r.randint(1, 4)}", OK,
                lambda: r.randint(2_000, 18_000))

    def me(r, base):
        return "GET", f"{base}/me", OK, lambda: r.randint(380, 720)

    def get_cart(r, base):
        return "GET", f"{base}/cart", OK, lambda: r.randint(150, 4_200)

    def add_cart(r, base):
        return "POST", f"{base}/cart/items", CREATED, lambda: r.randint(300, 900)

    def create_order(r, base):
        return "POST", f"{base}/orders", CREATED, lambda: r.randint(700, 2_400)

    def get_order(r, base):
        return "GET", f"{base}/orders/{uuid(r)}", OK_ID, lambda: r.randint(700, 2_400)

    def list_orders(r, base):
        q = f"page={r.randint(1, 6)}&per_page=20"
        if r.random() < 0.4:
            q += "&status=" + r.choice(ORDER_STATES)
        return "GET", f"{base}/orders?{q}", OK, lambda: r.randint(2_000, 14_000)

    def sync_orders(r, base):
        # API integrations poll for changes since a recent instant.
        ts = f"2024-10-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}%3A{r.randint(0, 59):02d}%3A00Z"
        return ("GET", f"{base}/orders?updated_since={ts}&limit=100", OK,
                lambda: r.randint(200, 60_000))

    def patch_order(r, base):
        return "PATCH", f"{base}/orders/{uuid(r)}", OK_ID, lambda: r.randint(500, 1_800)

    def token(r, base):
        return "POST", f"{base}/auth/token", TOKEN, lambda: r.randint(900, 1_200)

    kinds = dict(list_products=list_products, get_product=get_product, reviews=reviews,
                 search=search, me=me, get_cart=get_cart, add_cart=add_cart,
                 create_order=create_order, get_order=get_order, list_orders=list_orders,
                 sync_orders=sync_orders, patch_order=patch_order, token=token)
    return kinds, ver


def build_pools(r, kinds, ver):
    """pools[tenant][kind] = POOL ready-made `METHOD target HTTP/x" status bytes` strings."""
    names = list(kinds)
    # One set of API requests with a tenant placeholder, then a copy per tenant
    # (a session draws from its pool at random, so sharing ids is invisible).
    template = []
    for name in names:
        pool = []
        for _ in range(POOL):
            method, target, mix, size = kinds[name](r, "/t/\0/api/v1")
            s, b = status_bytes(r, mix, size)
            pool.append(f'{method} {target} {ver(r)}" {s} {b}')
        template.append(pool)
    # Static assets are shared by every tenant's SPA (not under /t/...); they
    # have few variants, so a short pool is repeated.
    for path, size in ASSETS:
        pool = []
        for _ in range(64):
            s, b = status_bytes(r, ASSET, lambda: size)
            pool.append(f'GET {path} {ver(r)}" {s} {b}')
        template.append(pool * (POOL // 64))
    pools = [[[x.replace("\0", tenant) for x in pool] for pool in template]
             for tenant, _ in TENANTS]
    index = {n: i for i, n in enumerate(names)}
    for i, (path, _) in enumerate(ASSETS):
        index[path] = len(names) + i
    return pools, index


# ---------------------------------------------------------------- sessions ----

# Think-time classes: 0 asset (parallel fetch), 1 human, 2 machine, 3 first step.
T_ASSET, T_HUMAN, T_MACHINE, T_FIRST = 0, 1, 2, 3


def think_pools(r):
    asset = [r.uniform(0.005, 0.12) for _ in range(POOL)]
    human = [min(r.lognormvariate(math.log(4.0), 1.0), 180.0) for _ in range(POOL)]
    machine = [r.uniform(0.03, 0.6) for _ in range(POOL)]
    first = [r.uniform(0.3, 2.5) for _ in range(POOL)]
    return (asset, human, machine, first)


def shapes_for(r, kind, index):
    """One session: a tuple of (endpoint kind index, think class before the *next* step)."""
    steps = []

    def add(name, think=T_HUMAN):
        steps.append((index[name], think))

    if kind == "web":
        # The SPA's hashed assets are cached "immutable": only a first visit
        # (or a new release) fetches them.
        if r.random() < 0.35:
            for path, _ in ASSETS[:5] if r.random() < 0.85 else ASSETS:
                add(path, T_ASSET)
            steps[-1] = (steps[-1][0], T_FIRST)
        add("me")
    elif kind == "mobile":
        if r.random() < 0.3:
            add("token", T_MACHINE)
        add("me")
    else:  # api integration
        add("token", T_MACHINE)
        for _ in range(r.randint(2, 30)):
            add("sync_orders", T_MACHINE)
            for _ in range(r.randint(0, 4)):
                add("get_order", T_MACHINE)
            if r.random() < 0.4:
                add("patch_order", T_MACHINE)
        return tuple(steps)

    flow = r.choices(("browse", "search", "buy", "orders"), (45, 20, 20, 15))[0]
    if flow in ("browse", "buy"):
        for _ in range(r.randint(1, 5 if flow == "browse" else 2)):
            add("list_products")
            for _ in range(r.randint(1, 3)):
                add("get_product")
                if r.random() < 0.25:
                    add("reviews")
    if flow == "search":
        for _ in range(r.randint(1, 4)):
            add("search")
            for _ in range(r.randint(0, 3)):
                add("get_product")
    if flow == "buy":
        for _ in range(r.randint(1, 3)):
            add("add_cart")
        add("get_cart")
        if r.random() < 0.7:
            add("create_order")
            add("get_order")
    if flow == "orders":
        add("list_orders")
        for _ in range(r.randint(1, 4)):
            add("get_order")
    return tuple(steps)


def client_pool(r, n):
    """Yields n clients with distinct addresses: (kind, tenant, line prefix up to the '[', user agent)."""
    browsers, mobiles = browser_agents(r), mobile_agents(r)
    tnames = [t for t, _ in TENANTS]
    tcum = [sum(w for _, w in TENANTS[:i + 1]) for i in range(len(TENANTS))]
    seen = set()
    rnd = r.random
    while len(seen) < n:
        ip = ipv6(r) if rnd() < 0.04 else ipv4(r)
        if ip in seen:
            continue
        seen.add(ip)
        tenant = min(bisect.bisect(tcum, rnd() * tcum[-1]), len(tcum) - 1)
        k = rnd()
        user = "-"
        if k < 0.62:
            kind, ua = "web", r.choice(browsers)
        elif k < 0.92:
            kind, ua = "mobile", r.choice(mobiles)
        else:
            kind, ua = "api", r.choice(API_AGENTS)
            if rnd() < 0.5:
                purpose = r.choice(("sync", "erp", "bi", "crm"))
                user = f"svc-{tnames[tenant]}-{purpose}-{r.randrange(1000):03d}"
        yield kind, tenant, f"{ip} - {user} [", ua


REFERER_PAGES = ("/", "/products", "/products?category=shoes", "/search", "/cart",
                 "/account/orders", "/checkout", "/products?sort=newest")


# -------------------------------------------------------------------- main ----

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, required=True, help="output size in MiB")
    ap.add_argument("--out", required=True, help="output file ('-' for stdout)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=1500.0, help="mean requests per second")
    ap.add_argument("--clients", type=int, default=300_000,
                    help="distinct client addresses (keep well above the ~6,000 sessions open at "
                         "once at 1,500 req/s, or arrivals wait for a free client)")
    ap.add_argument("--start", default="2024-10-10T08:00:00Z", help="time of the first request (UTC)")
    a = ap.parse_args()
    began = time.perf_counter()

    r = FastRandom(a.seed)
    target = int(a.size_mb * 1024 * 1024)
    start = datetime.strptime(a.start.rstrip("Z"), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=timezone.utc).timestamp()

    kinds, ver = endpoint_kinds()
    pools, index = build_pools(r, kinds, ver)
    thinks = think_pools(r)
    fresh = client_pool(r, a.clients)   # made on first use
    shapes = {k: [shapes_for(r, k, index) for _ in range(POOL)] for k in ("web", "mobile", "api")}
    tnames = [t for t, _ in TENANTS]

    # Suffix (referer and user agent) per client and session start page.
    def suffix(c):
        kind, tenant, _, ua = c
        if kind != "web":
            return f' "-" "{ua}"\n'
        page = REFERER_PAGES[r.getrandbits(3)]
        return f' "https://{tnames[tenant]}.shop.example.com{page}" "{ua}"\n'

    # Mean requests per session, to turn --rate into a session arrival rate.
    kmix = {"web": 62, "mobile": 30, "api": 8}   # as in client_pool
    mean_len = sum(kmix[k] * sum(map(len, shapes[k])) / POOL for k in kmix) / 100
    session_rate = a.rate / mean_len

    def load(t):
        """Day/night cycle: 0.6x at 03:00 UTC, 1.4x at 15:00 UTC."""
        return 1.0 - 0.4 * math.cos(2 * math.pi * ((t / 3600.0) % 24 - 3) / 24)

    # Clients not in a session, longest idle first; those never seen yet
    # count as the longest idle.
    idle = deque()

    # Sessions due in each second of simulated time (a ring of per-second
    # lists): within a second the log cannot show any order, so no heap is
    # needed. A session is [time of next request, steps, next step, prefix,
    # suffix, client, number of steps].
    ring = [[] for _ in range(RING)]

    # The shapes resolved per tenant: steps[client kind][tenant][n] is a tuple
    # of (request pool, think-time pool) pairs, shared between shapes.
    pair = {}
    steps = {k: [[tuple(pair.setdefault((t, e, th), (pools[t][e], thinks[th])) for e, th in shape)
                  for shape in shapes[k]] for t in range(len(TENANTS))] for k in shapes}

    made = 0

    def new_session(t):
        nonlocal made
        if made < a.clients:
            c = next(fresh)
            made += 1
        else:
            c = idle.popleft()
        shape = steps[c[0]][c[1]][r.getrandbits(POOL_BITS)]
        ring[int(t) & RING_MASK].append(
            [t, shape, 0, c[2], suffix(c), c, len(shape)])

    # The simulation starts WARMUP seconds early with no session open, and
    # writes nothing until `start`: the log then begins in steady state, with
    # sessions already under way, as a real log does.
    sec = int(start) - WARMUP
    next_arrival = sec + r.expovariate(session_rate * load(sec))

    rb = r.getrandbits
    mask = RING_MASK
    low = POOL - 1
    out = sys.stdout if a.out == "-" else open(a.out, "w", encoding="ascii", newline="\n")
    written = 0
    buf = []
    add = buf.append
    while written < target:
        g = time.gmtime(sec)
        stamp = (f"{g.tm_mday:02d}/{MONTHS[g.tm_mon - 1]}/{g.tm_year}:"
                 f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} +0000] \"")
        # Sessions that start in this second.
        while next_arrival < sec + 1 and (idle or made < a.clients):
            new_session(next_arrival)
            next_arrival += r.expovariate(session_rate * load(next_arrival))
        # The load balancer's health checks, every 5 s from one of two addresses.
        if sec % 5 == 0:
            add(f"10.0.{sec // 5 % 2}.17 - - [{stamp}{HEALTH}")
        due = ring[sec & mask]
        for s in due:      # grows while iterated: steps due again this second
            i = s[2]
            requests, think = s[1][i]
            x = rb(2 * POOL_BITS)
            add(f"{s[3]}{stamp}{requests[x & low]}{s[4]}")
            i += 1
            if i < s[6]:
                s[2] = i
                t = s[0] = s[0] + think[x >> POOL_BITS]
                ring[int(t) & mask].append(s)
            else:
                idle.append(s[5])
        ring[sec & mask] = []
        sec += 1
        if sec <= start:
            buf.clear()
        if len(buf) >= 16384:
            chunk = "".join(buf)
            buf.clear()
            if written + len(chunk) >= target:
                chunk = chunk[:chunk.find("\n", max(target - written - 1, 0)) + 1]
            out.write(chunk)
            written += len(chunk)
    if out is not sys.stdout:
        out.close()
    took = time.perf_counter() - began
    span = sec - int(start)
    print(f"wrote {written / 1048576:.1f} MiB in {took:.1f} s ({written / 1048576 / took:.0f} MiB/s); "
          f"simulated {span / 3600:.2f} h of traffic", file=sys.stderr)


if __name__ == "__main__":
    main()
