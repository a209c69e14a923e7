#!/usr/bin/env python3
"""Generate a large synthetic HAR 1.2 file for importer benchmarks.

Usage:
    python3 benches/gen_har.py --size-mb 200 --out bench-data/capture.har [--seed 1]
        [--rate 25] [--users 3000] [--start 2024-10-10T08:00:00Z]

The file imitates a Chrome DevTools "Save all as HAR with content" export,
2-space indented, keys in Chrome's order (`_initiator`, `_priority`,
`_resourceType`, `cache`, `connection`, `pageref`, `request`, `response`,
`serverIPAddress`, `startedDateTime`, `time`, `timings`), of a multi-tenant
single-page shop app used by many people at once (as a proxy-side capture
would be):

* five tenants of different weights, each on its own subdomain
  (`https://acme.app.example.com/api/v1/...`) and also named by an
  `X-Tenant-ID` request header and a `tenant_id` claim of the bearer token;
* users with stable browsers; every session is one page (`pages[]`,
  `pageref`) that may first load the app's assets (scripts, stylesheet, a
  base64 PNG), then calls the JSON API with think times in between;
* HTTP/2 requests with pseudo-headers, `authorization: Bearer <JWT>`,
  cookies (header and `cookies[]`), `queryString`, `postData` JSON for
  POSTs; responses with headers, `set-cookie`, JSON bodies from a few
  hundred bytes to several KB (some base64-encoded), 304s without content,
  the odd 404/422/500 and a redirect with `redirectURL`;
* Chrome-like `timings` (-1 where not applicable) and `time`, their sum.

Entries are rendered and written one at a time (memory stays flat). The
`pages` array precedes `entries`, as in Chrome's exports, so the sessions
are planned first from a size estimate; the file lands within a few percent
of --size-mb. Output is deterministic for a given seed. Standard library
only.
"""

import argparse
import base64
import heapq
import json
import math
import random
import sys
import time
from datetime import datetime, timezone

TENANTS = (("acme", 0.38), ("globex", 0.24), ("initech", 0.17),
           ("umbrella", 0.13), ("hooli", 0.08))
PARENT = "app.example.com"
SERVERS = {t: f"203.0.113.{10 + i}" for i, (t, _) in enumerate(TENANTS)}   # serverIPAddress
INDENT = "      "   # entries sit three levels deep: {"log": {"entries": [ ...

NAMES = ("Trail Runner 2", "Café Crème Mug", "Merino Crew Socks", "Straße Backpack 28L",
         "Ultralight Tent", "Kettle 1.7 l", "Brick Set 1001", "Noise-Cancelling Headphones",
         "Yoga Mat Pro", "Rain Jacket", "Desk Lamp LED", "USB-C Cable 2 m", "Garden Hose 25 m",
         "Linen Shirt", "Dutch Oven 5 qt", "Über Comfy Hoodie")
CATEGORIES = ("shoes", "shirts", "outdoor", "kitchen", "toys", "books", "garden", "electronics")
SEARCH_WORDS = ("running shoes", "blue shirt", "tent", "kettle", "lego", "headphones", "yoga mat")
CITIES = (("Berlin", "DE", "10115"), ("Lyon", "FR", "69001"), ("Austin", "US", "78701"),
          ("Leeds", "GB", "LS1 4DY"), ("Utrecht", "NL", "3511"), ("Kraków", "PL", "31-042"))
STATUS_TEXT = {200: "OK", 201: "Created", 302: "Found", 304: "Not Modified", 400: "Bad Request",
               401: "Unauthorized", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity",
               429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}

CHROMES = [
    (v, plat, f"Mozilla/5.0 ({ua}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36")
    for v in range(120, 131)
    for plat, ua in (('"Windows"', "Windows NT 10.0; Win64; x64"),
                     ('"macOS"', "Macintosh; Intel Mac OS X 10_15_7"),
                     ('"Linux"', "X11; Linux x86_64"))
]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uuid(r):
    h = "%032x" % r.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def iso(t):
    """Epoch seconds -> 2024-10-10T13:55:36.123Z"""
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def http_date(t):
    g = time.gmtime(int(t))
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", g)


# ------------------------------------------------------------------ users ----

def make_users(r, n, start):
    users = []
    for i in range(n):
        tenant = r.choices([t for t, _ in TENANTS], [w for _, w in TENANTS])[0]
        version, platform, ua = r.choice(CHROMES)
        sub = f"usr_{r.getrandbits(48):012x}"
        claims = {"iss": f"https://auth.example.com/{tenant}", "sub": sub, "aud": "shop-api",
                  "tenant_id": tenant, "scope": "catalog:read cart:write orders:write profile",
                  "iat": int(start) - r.randint(60, 3000), "exp": int(start) + 3600 + r.randint(0, 7200),
                  "email": f"user{i}@{tenant}-corp.example"}
        head = {"alg": "RS256", "typ": "JWT", "kid": f"{tenant}-2024-09"}
        jwt = ".".join((b64url(json.dumps(head, separators=(",", ":")).encode()),
                        b64url(json.dumps(claims, separators=(",", ":")).encode()),
                        b64url(r.randbytes(256))))
        cookies = [("_ga", f"GA1.1.{r.randint(10**8, 10**9 - 1)}.{int(start) - r.randint(0, 10**7)}"),
                   ("sid", b64url(r.randbytes(24))),
                   ("locale", r.choice(("en-US", "de-DE", "fr-FR", "nl-NL"))),
                   ("__cf_bm", b64url(r.randbytes(40)) + f"-{int(start)}-1.0.1.1-" + b64url(r.randbytes(30)))]
        users.append(dict(tenant=tenant, sub=sub, ua=ua, version=version, platform=platform, jwt=jwt,
                          cookies=cookies, lang=r.choice(("en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8",
                                                          "fr-FR,fr;q=0.9,en;q=0.7", "nl-NL,nl;q=0.9"))))
    return users


# ------------------------------------------------------------------ bodies ----

def product(r, pid):
    return {"id": pid, "sku": f"SKU-{pid:06d}", "name": r.choice(NAMES),
            "price": {"amount": r.randint(299, 24999), "currency": r.choice(("EUR", "USD", "GBP"))},
            "stock": r.randint(0, 400), "rating": round(r.uniform(2.5, 5.0), 1),
            "category": r.choice(CATEGORIES),
            "image": f"https://cdn.example.com/p/{pid}/{r.getrandbits(32):08x}.webp",
            "tags": r.sample(("new", "sale", "eco", "bestseller", "limited", "bundle"), r.randint(0, 3))}


def order(r, oid, tenant):
    city, country, zipc = r.choice(CITIES)
    lines = [{"product_id": r.randint(1, 99999), "quantity": r.randint(1, 3),
              "unit_price": r.randint(299, 9999)} for _ in range(r.randint(1, 4))]
    return {"id": oid, "tenant": tenant, "status": r.choice(("open", "paid", "shipped")),
            "created_at": f"2024-10-{r.randint(1, 9):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z",
            "lines": lines, "total": sum(x["quantity"] * x["unit_price"] for x in lines),
            "currency": "EUR", "shipping": {"city": city, "country": country, "postal_code": zipc}}


def dumps(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- endpoints ----

def request_for(r, kind, tenant, state):
    """(method, path, query pairs, JSON body or None, response status, response body or None)."""
    base = "/api/v1"
    if kind == "me":
        return "GET", f"{base}/me", [], None, 200, {"id": state["sub"], "tenant": tenant,
                                                      "roles": ["customer"], "locale": "en-US",
                                                      "features": {"new_checkout": r.random() < 0.5}}
    if kind == "list_products":
        page = min(int(r.expovariate(0.5)) + 1, 30)
        q = [("page", str(page)), ("per_page", "24")]
        if r.random() < 0.4:
            q.append(("category", r.choice(CATEGORIES)))
        n = r.randint(3, 14)
        return "GET", f"{base}/products", q, None, 200, {
            "data": [product(r, int(100_000 ** r.random())) for _ in range(n)],
            "page": page, "per_page": 24, "total": r.randint(400, 9000)}
    if kind == "get_product":
        pid = int(100_000 ** r.random())
        state["product"] = pid
        if r.random() < 0.04:
            return "GET", f"{base}/products/{pid}", [], None, 404, {"error": "not_found"}
        return "GET", f"{base}/products/{pid}", [], None, 200, product(r, pid)
    if kind == "search":
        q = r.choice(SEARCH_WORDS)
        return "GET", f"{base}/search", [("q", q), ("page", "1")], None, 200, {
            "query": q, "hits": [product(r, int(100_000 ** r.random())) for _ in range(r.randint(0, 8))]}
    if kind == "add_cart":
        body = {"product_id": state.get("product", r.randint(1, 99999)), "quantity": r.randint(1, 3)}
        if r.random() < 0.03:
            return "POST", f"{base}/cart/items", [], body, 422, {"error": "out_of_stock",
                                                               "product_id": body["product_id"]}
        return "POST", f"{base}/cart/items", [], body, 201, {"cart_id": state["cart"], "items": r.randint(1, 5)}
    if kind == "get_cart":
        return "GET", f"{base}/cart", [], None, 200, {
            "id": state["cart"], "items": [{"product": product(r, r.randint(1, 99999)), "quantity": 1}
                                           for _ in range(r.randint(1, 4))]}
    if kind == "create_order":
        city, country, zipc = r.choice(CITIES)
        oid = uuid(r)
        state["order"] = oid
        body = {"cart_id": state["cart"], "payment_method": f"pm_{r.getrandbits(64):016x}",
                "shipping_address": {"name": "Jane Doe", "street": f"{r.randint(1, 200)} Main St",
                                     "city": city, "country": country, "postal_code": zipc},
                "idempotency_key": uuid(r)}
        return "POST", f"{base}/orders", [], body, 201 if r.random() < 0.98 else 500, order(r, oid, tenant)
    if kind == "get_order":
        oid = state.get("order") or uuid(r)
        return "GET", f"{base}/orders/{oid}", [], None, 200, order(r, oid, tenant)
    if kind == "list_orders":
        return "GET", f"{base}/orders", [("page", "1"), ("per_page", "20")], None, 200, {
            "data": [order(r, uuid(r), tenant) for _ in range(r.randint(1, 5))], "page": 1}
    if kind == "invoice":
        oid = state.get("order") or uuid(r)
        return "GET", f"{base}/orders/{oid}/invoice", [], None, 302, None
    raise ValueError(kind)


FLOWS = {
    "browse": ["me", "list_products", "get_product", "get_product", "list_products", "get_product"],
    "search": ["me", "search", "get_product", "search", "get_product"],
    "buy": ["me", "list_products", "get_product", "add_cart", "get_cart", "create_order", "get_order"],
    "orders": ["me", "list_orders", "get_order", "invoice", "get_order"],
}

ASSETS = (("/static/js/app.3f2a1c.js", "script", "application/javascript", 9000),
          ("/static/js/vendor.9b8e7d.js", "script", "application/javascript", 16000),
          ("/static/css/app.5c1d2e.css", "stylesheet", "text/css", 3000),
          ("/static/img/logo.a1b2c3.png", "image", "image/png", 2400))


def session_steps(r):
    flow = r.choices(list(FLOWS), (45, 20, 20, 15))[0]
    steps = list(FLOWS[flow])
    # Vary the length: repeat or drop a few steps.
    for _ in range(r.randint(0, 6)):
        i = r.randrange(1, len(steps))
        if r.random() < 0.7:
            steps.insert(i, steps[i])
        elif len(steps) > 2:
            del steps[i]
    assets = r.random() < 0.35
    return ([a[0] for a in ASSETS] if assets else []) + steps, flow


# ------------------------------------------------------------------- render ----

def nv(pairs):
    return [{"name": n, "value": v} for n, v in pairs]


class Renderer:
    """Turns a session's steps into HAR entries."""

    def __init__(self, r):
        self.r = r
        self.asset_text = {}
        for path, _, mime, size in ASSETS:
            if mime == "image/png":
                raw = b"\x89PNG\r\n\x1a\n" + r.randbytes(size)
                self.asset_text[path] = (len(raw), base64.b64encode(raw).decode(), "base64")
            else:
                words = ("function", "return", "const", "let", "=>", "{", "}", ";", "var", "this",
                         "null", "true", "e", "t", "n", "r", "o", "i", "a.push(", ")", "document")
                text = " ".join(r.choice(words) for _ in range(size // 5))
                self.asset_text[path] = (len(text.encode()), text, None)

    def entry(self, s, t, step, conn):
        """Session s's `step` (an endpoint kind or an asset path) at time t, on
        connection `conn` (None: a new one) -> (indented JSON text, connection)."""
        r = self.r
        u = s["user"]
        tenant = u["tenant"]
        host = f"{tenant}.{PARENT}"
        page_url = f"https://{host}{s['page']}"
        first = s["step"] == 0
        asset = step.startswith("/static/")
        if asset:
            _, rtype, mime, _ = next(a for a in ASSETS if a[0] == step)
            method, path, query, body = "GET", step, [], None
            cached = s["returning"]
            status = 304 if cached else 200
            size, text, encoding = self.asset_text[step]
            resp_body = None
        else:
            rtype, mime, cached = "fetch", "application/json", False
            method, path, query, body, status, resp_body = request_for(r, step, tenant, s)
            if method == "GET" and status == 200 and r.random() < 0.03:
                status, resp_body = 304, None
            if status == 200 and r.random() < 0.005:
                status, resp_body = 500, {"error": "internal", "request_id": uuid(r)}
            text = dumps(resp_body) if resp_body is not None else None
            size = len(text.encode()) if text is not None else 0
            encoding = None
            if text is not None and r.random() < 0.05:
                text, encoding = base64.b64encode(text.encode()).decode(), "base64"
        qs = "&".join(f"{n}={v.replace(' ', '+')}" for n, v in query)
        url = f"https://{host}{path}" + (f"?{qs}" if qs else "")
        h2 = r.random() < 0.92 or asset
        version = "http/2.0" if h2 else "http/1.1"
        rid = uuid(r)

        cookie = "; ".join(f"{n}={v}" for n, v in u["cookies"])
        req_headers = []
        if h2:
            req_headers += [(":authority", host), (":method", method),
                            (":path", path + (f"?{qs}" if qs else "")), (":scheme", "https")]
        req_headers += [("accept", "application/json, text/plain, */*" if not asset else "*/*"),
                        ("accept-encoding", "gzip, deflate, br, zstd"),
                        ("accept-language", u["lang"])]
        if not asset:
            req_headers.append(("authorization", f"Bearer {u['jwt']}"))
        if body is not None:
            req_headers.append(("content-type", "application/json"))
        req_headers.append(("cookie", cookie))
        if not h2:
            req_headers.append(("host", host))
        if body is not None:
            req_headers.append(("origin", f"https://{host}"))
        req_headers += [("priority", "u=1, i"), ("referer", page_url),
                        ("sec-ch-ua", f'"Google Chrome";v="{u["version"]}", "Chromium";v="{u["version"]}", "Not?A_Brand";v="24"'),
                        ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", u["platform"]),
                        ("sec-fetch-dest", "empty" if not asset else rtype.replace("stylesheet", "style")),
                        ("sec-fetch-mode", "cors" if not asset else "no-cors"),
                        ("sec-fetch-site", "same-origin"), ("user-agent", u["ua"])]
        if not asset:
            req_headers += [("x-request-id", rid), ("x-tenant-id", tenant)]
        request = {"method": method, "url": url, "httpVersion": version, "headers": nv(req_headers),
                   "queryString": nv(query),
                   "cookies": [{"name": n, "value": v, "path": "/", "domain": f".{PARENT}",
                                "expires": "2025-10-10T00:00:00.000Z", "httpOnly": n == "sid",
                                "secure": True} for n, v in u["cookies"]],
                   "headersSize": -1 if h2 else 420 + len(cookie) + len(u["jwt"]),
                   "bodySize": 0}
        if body is not None:
            post = dumps(body)
            request["bodySize"] = len(post.encode())
            request["postData"] = {"mimeType": "application/json", "text": post}

        resp_headers = [("access-control-allow-origin", f"https://{host}")] if not asset else []
        if status == 302:
            location = (f"https://files.example-cdn.com/invoices/{tenant}/{r.getrandbits(64):016x}.pdf"
                        f"?X-Amz-Expires=300&X-Amz-Signature={r.getrandbits(128):032x}")
            resp_headers.append(("location", location))
        else:
            location = ""
        resp_headers.append(("cache-control", "public, max-age=31536000, immutable" if asset else "no-store"))
        if status != 304:
            resp_headers += [("content-encoding", "br") if size > 1000 else ("content-length", str(size)),
                             ("content-type", mime + ("; charset=utf-8" if not asset else ""))]
        resp_headers += [("date", http_date(t)),
                         ("etag", f'W/"{r.getrandbits(40):010x}"'),
                         ("server", "envoy"),
                         ("strict-transport-security", "max-age=63072000; includeSubDomains; preload"),
                         ("vary", "Origin, Accept-Encoding")]
        if not asset:
            resp_headers += [("x-envoy-upstream-service-time", str(r.randint(3, 300))),
                             ("x-ratelimit-remaining", str(r.randint(0, 600))),
                             ("x-request-id", rid)]
        resp_cookies = []
        if first and not asset and r.random() < 0.5:
            v = b64url(r.randbytes(24))
            resp_headers.append(("set-cookie", f"sid={v}; Path=/; Domain=.{PARENT}; Secure; HttpOnly; SameSite=Lax"))
            resp_cookies.append({"name": "sid", "value": v, "path": "/", "domain": f".{PARENT}",
                                 "expires": None, "httpOnly": True, "secure": True, "sameSite": "Lax"})
        transfer = (size // 4 if size > 1000 else size) if status != 304 else 0
        content = {"size": size if status != 304 else 0, "mimeType": mime}
        if status not in (302, 304):
            if size > 1000:
                content["compression"] = size - transfer
            if text is not None:
                content["text"] = text
            if encoding:
                content["encoding"] = encoding
        elif status == 304:
            content["size"] = 0
        response = {"status": status,
                    "statusText": "" if h2 else STATUS_TEXT[status],
                    "httpVersion": version, "headers": nv(resp_headers), "cookies": resp_cookies,
                    "content": content, "redirectURL": location,
                    "headersSize": -1 if h2 else 300,
                    "bodySize": transfer, "_transferSize": transfer + 350, "_error": None,
                    "_fetchedViaServiceWorker": False}

        new_conn = conn is None
        blocked = round(r.uniform(0.3, 6.0), 3)
        dns = round(r.uniform(4, 40), 3) if new_conn else -1
        connect = round(r.uniform(15, 60), 3) if new_conn else -1
        ssl = round(connect * r.uniform(0.5, 0.8), 3) if new_conn else -1
        send = round(r.uniform(0.05, 0.6), 3)
        wait = round(min(r.lognormvariate(math.log(60), 0.7), 4000), 3)
        receive = round(r.uniform(0.2, 3.0) + transfer / 4000, 3)
        total = blocked + max(dns, 0) + max(connect, 0) + send + wait + receive
        initiator = ({"type": "parser", "url": page_url, "lineNumber": r.randint(1, 40)} if asset else
                     {"type": "script", "stack": {"callFrames": [
                         {"functionName": r.choice(("fetchJson", "request", "loadPage", "submit")),
                          "scriptId": str(r.randint(10, 99)),
                          "url": f"https://{host}/static/js/app.3f2a1c.js",
                          "lineNumber": 0, "columnNumber": r.randint(1000, 90000)}]}})
        e = {"_initiator": initiator,
             "_priority": "High" if not asset or rtype != "image" else "Low",
             "_resourceType": rtype,
             "cache": {},
             "connection": conn or str(r.randint(100000, 999999)),
             "pageref": s["pageref"],
             "request": request,
             "response": response,
             "serverIPAddress": s["server"],
             "startedDateTime": iso(t),
             "time": round(total, 3),
             "timings": {"blocked": blocked, "dns": dns, "ssl": ssl, "connect": connect,
                         "send": send, "wait": wait, "receive": receive,
                         "_blocked_queueing": round(blocked * 0.6, 3), "_workerStart": -1,
                         "_workerReady": -1, "_workerFetchStart": -1, "_workerRespondWithSettled": -1}}
        return INDENT + json.dumps(e, ensure_ascii=False, indent=2).replace("\n", "\n" + INDENT), e["connection"]


# -------------------------------------------------------------------- main ----

def think(r, step):
    if step.startswith("/static/"):
        return r.uniform(0.002, 0.08)
    return min(r.lognormvariate(math.log(5.0), 0.9), 120.0)


def plan(r, n_sessions, users, start, rate):
    """n_sessions sessions: start time, user, steps, page."""
    sessions = []
    t = start
    for i in range(n_sessions):
        t += r.expovariate(rate)
        u = r.choice(users)
        steps, flow = session_steps(r)
        page = {"browse": "/products", "search": "/search", "buy": "/checkout",
                "orders": "/account/orders"}[flow]
        sessions.append({"start": t, "user": u, "steps": steps, "step": 0, "page": page,
                         "pageref": f"page_{i + 1}", "cart": uuid(r),
                         "sub": u["sub"],
                         "returning": r.random() < 0.6,
                         "server": SERVERS[u["tenant"]]})
    return sessions


def run(r, sessions, out, renderer):
    """Writes the entries of `sessions` in time order; returns bytes written."""
    heap = [(s["start"], i, s) for i, s in enumerate(sessions)]
    heapq.heapify(heap)
    written = 0
    first = True
    conns = {}
    while heap:
        t, i, s = heapq.heappop(heap)
        step = s["steps"][s["step"]]
        text, conn = renderer.entry(s, t, step, conns.get(id(s)))
        conns[id(s)] = conn
        chunk = (text if first else ",\n" + text).encode()
        first = False
        out.write(chunk)
        written += len(chunk)
        s["step"] += 1
        if s["step"] < len(s["steps"]):
            heapq.heappush(heap, (t + think(r, step), i, s))
        else:
            conns.pop(id(s), None)
    return written


class Counter:
    """A write sink that only counts bytes."""
    def __init__(self):
        self.n = 0

    def write(self, b):
        self.n += len(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, required=True, help="approximate output size in MiB")
    ap.add_argument("--out", required=True, help="output file ('-' for stdout)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=25.0, help="mean requests per second")
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--start", default="2024-10-10T08:00:00Z", help="time of the first session (UTC)")
    a = ap.parse_args()
    began = time.perf_counter()

    target = int(a.size_mb * 1024 * 1024)
    start = datetime.strptime(a.start.rstrip("Z"), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=timezone.utc).timestamp()
    r = random.Random(a.seed)
    users = make_users(r, a.users, start)

    # Estimate the bytes per session from a throw-away sample, to plan enough
    # sessions for the requested size.
    probe = random.Random(a.seed + 1)
    sample = plan(probe, 100, users, start, 1.0)
    sink = Counter()
    run(probe, sample, sink, Renderer(probe))
    per_session = sink.n / len(sample)
    n_sessions = max(1, round(target / per_session))
    mean_steps = sum(len(s["steps"]) for s in sample) / len(sample)

    sessions = plan(r, n_sessions, users, start, a.rate / mean_steps)
    renderer = Renderer(r)
    out = sys.stdout.buffer if a.out == "-" else open(a.out, "wb", buffering=1 << 20)
    pages = []
    for s in sessions:
        loaded = r.uniform(300, 1800)
        pages.append({"startedDateTime": iso(s["start"]), "id": s["pageref"],
                      "title": f"https://{s['user']['tenant']}.{PARENT}{s['page']}",
                      "pageTimings": {"onContentLoad": round(loaded, 3),
                                      "onLoad": round(loaded + r.uniform(50, 1500), 3)}})
    head = {"log": {"version": "1.2",
                    "creator": {"name": "WebInspector", "version": "537.36"},
                    "pages": pages, "entries": []}}
    text = json.dumps(head, ensure_ascii=False, indent=2)
    opening, closing = text.rsplit('"entries": []', 1)
    opening = (opening + '"entries": [\n').encode()
    closing = ("\n    ]" + closing + "\n").encode()
    out.write(opening)
    written = len(opening) + run(r, sessions, out, renderer)
    out.write(closing)
    written += len(closing)
    if out is not sys.stdout.buffer:
        out.close()
    took = time.perf_counter() - began
    n = sum(len(s["steps"]) for s in sessions)
    span = max(s["start"] for s in sessions) - start
    print(f"wrote {written / 1048576:.1f} MiB, {n:,} entries, {len(sessions):,} pages, "
          f"{len(set(id(s['user']) for s in sessions)):,} users, ~{span / 3600:.1f} h, "
          f"in {took:.1f} s ({written / 1048576 / took:.1f} MiB/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
