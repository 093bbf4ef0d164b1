"""Sample logs for ``logferry demo``, generated deterministically (same bytes every run).

One shop's morning on 2024-03-01 (UTC), seen from five sources:

* ``iis/u_ex240301.log`` -- IIS 10 W3C log of the web servers: pages, API calls, a few
  broken links (404/410 with referers), slow searches and checkouts, plus one garbled
  line (a bad row);
* ``cloudfront/E2DEMO0EXAMPLE.2024-03-01-09.7f3a9c21.gz`` -- CloudFront standard log
  (33 fields) for the static assets, with Hit/Miss/RefreshHit/Error results;
* ``shop/shop20240301.log`` -- W3C shop extension: searches, product views, baskets and
  orders with their order lines;
* ``cdn/20240301-090000.demo-video.00001.log.gz`` -- CDN transaction log (JSON lines);
* ``csv/db20240301_001.csv`` -- CSV usage log of the intranet proxy.

Every source sees the same incidents: an outage from 10:30 to 10:50 (mostly 5xx) and a
stretch without any traffic from 12:00 to 12:30.

Nothing here is copied from real logs: every line comes from the generators below.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from datetime import UTC, datetime, timedelta

DAY = datetime(2024, 3, 1, 8, 0, 0, tzinfo=UTC)
END = DAY + timedelta(hours=6)
OUTAGE = (DAY + timedelta(hours=2, minutes=30), DAY + timedelta(hours=2, minutes=50))
SILENCE = (DAY + timedelta(hours=4), DAY + timedelta(hours=4, minutes=30))

AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.59",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
]
AGENT_WEIGHTS = [30, 8, 12, 10, 14, 12, 6, 2]
PAGES = [
    ("/", 20, 40), ("/index.html", 6, 30), ("/catalog", 10, 60), ("/products/lamp-42", 6, 70),
    ("/products/chair-7", 5, 70), ("/api/cart", 8, 45), ("/api/search", 8, 180),
    ("/checkout", 3, 350), ("/images/logo.png", 10, 4), ("/css/site.css", 8, 3),
    ("/about", 2, 25),
]
BROKEN = [("/old-catalog.html", 404, "https://blog.example.org/2019/best-lamps"),
          ("/products/discontinued-9", 410, "https://www.example.com/catalog"),
          ("/img/banner-2019.jpg", 404, "https://www.example.com/")]
REFERERS = ["https://www.google.com/", "https://www.example.com/", "https://www.example.com/catalog",
            "https://news.example.net/deals", "-", "-", "-"]


def _clients(rnd: random.Random, n: int) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        ip = f"{rnd.choice((198, 203, 192))}.{rnd.choice((51, 0))}.{100 + i % 100}.{rnd.randint(2, 250)}"
        out.append((ip, rnd.choices(AGENTS, AGENT_WEIGHTS)[0]))
    return out


def _times(rnd: random.Random, n: int, start: datetime = DAY, end: datetime = END,
           skip: tuple[datetime, datetime] | None = SILENCE) -> list[datetime]:
    span = (end - start).total_seconds()
    ts = []
    while len(ts) < n:
        t = start + timedelta(seconds=rnd.random() * span)
        if skip and skip[0] <= t < skip[1]:
            continue
        ts.append(t.replace(microsecond=0))
    return sorted(ts)


def _plus(s: str) -> str:
    return s.replace(" ", "+")


def iis(path: str, n: int = 6000, seed: int = 11) -> str:
    rnd = random.Random(seed)
    clients = _clients(rnd, 180)
    lines = [
        "#Software: Microsoft Internet Information Services 10.0",
        "#Version: 1.0",
        "#Date: 2024-03-01 08:00:00",
        "#Fields: date time s-sitename s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
        "cs(User-Agent) cs(Referer) cs-host sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken",
    ]
    weights = [w for _, w, _ in PAGES]
    for i, t in enumerate(_times(rnd, n)):
        ip, ua = rnd.choice(clients)
        ref = rnd.choice(REFERERS)
        query = "-"
        if rnd.random() < 0.012:
            page, status, ref = rnd.choice(BROKEN)
            base = 15
        else:
            page, _, base = rnd.choices(PAGES, weights)[0]
            status = 304 if page.startswith(("/images", "/css")) and rnd.random() < 0.3 else 200
            if page == "/api/search":
                query = f"q={rnd.choice(['lamp', 'chair', 'desk', 'led+strip'])}"
        dur = int(rnd.lognormvariate(0, 0.5) * base)
        if page in ("/api/search", "/checkout") and rnd.random() < 0.04:
            dur = rnd.randint(2500, 9000)  # slow requests
        if OUTAGE[0] <= t < OUTAGE[1] and not page.startswith(("/images", "/css")) and rnd.random() < 0.85:
            status, dur = 503, rnd.randint(25, 60)
        elif status == 200 and rnd.random() < 0.004:
            status = 500
        if status == 401 or (page == "/api/cart" and rnd.random() < 0.02):
            status = 401
        size = 0 if status == 304 else rnd.randint(900, 48000) if status == 200 else rnd.randint(300, 1500)
        lines.append(
            f"{t:%Y-%m-%d %H:%M:%S} W3SVC1 10.20.0.{4 + i % 2} GET {page} {query} 443 - {ip} {_plus(ua)} "
            f"{ref} www.example.com {status} 0 0 {size} {rnd.randint(320, 900)} {dur}"
        )
        if i == n // 3:
            lines.append("2024-03-01 garbled line cut by a disk-full event")
    _write(path, "\n".join(lines) + "\n")
    return path


CF_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol "
    "cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type "
    "cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte "
    "x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end"
)


def cloudfront(path: str, n: int = 2000, seed: int = 12) -> str:
    rnd = random.Random(seed)
    clients = _clients(rnd, 120)
    edges = ["FRA56-C1", "LHR61-P2", "CDG50-C1", "AMS1-C1"]
    assets = [("/static/app.js", "application/javascript", 84000), ("/static/site.css", "text/css", 21000),
              ("/images/hero.webp", "image/webp", 240000), ("/images/lamp-42.webp", "image/webp", 96000),
              ("/fonts/inter.woff2", "font/woff2", 48000)]
    out = ["#Version: 1.0", "#Fields: " + CF_FIELDS]
    for i, t in enumerate(_times(rnd, n)):
        ip, ua = rnd.choice(clients)
        uri, ctype, size = rnd.choice(assets)
        r = rnd.random()
        result = "Hit" if r < 0.78 else "RefreshHit" if r < 0.84 else "Miss" if r < 0.98 else "Error"
        if OUTAGE[0] <= t < OUTAGE[1] and rnd.random() < 0.8:
            result = "Error"  # the origin is down: the edge cannot serve
        status = 502 if result == "Error" else 200
        ttfb = rnd.uniform(0.001, 0.012) if "Hit" in result else rnd.uniform(0.04, 0.4)
        taken = ttfb + size / 4e6 * rnd.uniform(0.5, 2)
        sent = 0 if status != 200 else size + 420
        rid = f"{rnd.getrandbits(160):040x}"[:52]
        out.append("\t".join([
            f"{t:%Y-%m-%d}", f"{t:%H:%M:%S}", edges[i % 7 % 4], str(sent), ip, "GET",
            "d1demo0example.cloudfront.net", uri, str(status), "https://www.example.com/",
            ua.replace(" ", "%20"), "-", "-", result, rid, "static.example.com", "https", str(rnd.randint(180, 400)),
            f"{taken:.3f}", "-", "TLSv1.3", "TLS_AES_128_GCM_SHA256", result, "HTTP/2.0", "-", "-",
            str(rnd.randint(1024, 65000)), f"{ttfb:.3f}", "OriginError" if result == "Error" else result,
            ctype, str(size if status == 200 else "-"), "-", "-",
        ]))
    _write(path, "\n".join(out) + "\n", gz=True)
    return path


PRODUCTS = [
    ("L-42", "Desk Lamp Aurora", "/Home/Lighting", "39.9000", "21.5000"),
    ("L-77", "LED Strip 5m", "/Home/Lighting", "24.5000", "11.2000"),
    ("C-7", "Office Chair Ergo", "/Office/Furniture", "189.0000", "121.0000"),
    ("D-3", "Standing Desk", "/Office/Furniture", "349.0000", "240.0000"),
    ("B-12", "Notebook A5", "/Office/Paper", "4.2000", "1.1000"),
]


def shop(path: str, visitors: int = 90, seed: int = 13) -> str:
    rnd = random.Random(seed)
    lines = [
        "#Software: Demo-Shop 2.0", "#Version: 1.0", "#Date: 2024-03-01 08:00:00",
        "#Fields: date time c-ip cs-customer-id cs-method cs-uri-stem cs-uri-query cs(User-Agent) cs(Referer)",
    ]
    events: list[tuple[datetime, str]] = []
    for v in range(visitors):
        ip, ua = f"203.0.113.{10 + v}", rnd.choices(AGENTS[:6], AGENT_WEIGHTS[:6])[0]
        cust = str(5000 + v) if rnd.random() < 0.4 else "-"
        t = DAY + timedelta(seconds=rnd.randint(0, 5 * 3600))
        if SILENCE[0] - timedelta(minutes=20) <= t < SILENCE[1]:
            t += timedelta(minutes=50)  # nobody shops while the site is unreachable
        uap = _plus(ua)

        def ev(method: str, stem: str, query: str, t: datetime = t, ip: str = ip, cust: str = cust,
               uap: str = uap) -> None:
            events.append((t, f"{t:%Y-%m-%d %H:%M:%S} {ip} {cust} {method} {stem} {query} {uap} -"))

        ev("GET", "/Home", "-")
        basket: list[tuple] = []
        steps = 1
        if rnd.random() < 0.55:
            t += timedelta(seconds=rnd.randint(5, 60))
            ev("SEARCH", "/Search", _plus(rnd.choice(["desk lamp", "chair", "led strip", "standing desk", "notebook"])), t)
        if rnd.random() < 0.7:
            for p in rnd.sample(PRODUCTS, rnd.randint(1, 3)):
                t += timedelta(seconds=rnd.randint(5, 90))
                ev("PROD", "/Product", f"{p[0]}&{_plus(p[1])}&{_plus(p[2])}", t)
                if rnd.random() < 0.45:
                    t += timedelta(seconds=rnd.randint(3, 40))
                    ev("ADDBI", "/Basket", f"{p[0]}&{_plus(p[1])}&{_plus(p[2])}", t)
                    basket.append((p, rnd.randint(1, 3)))
                steps += 1
        if basket and rnd.random() < 0.6:
            t += timedelta(seconds=rnd.randint(30, 300))
            total = sum(float(p[3]) * u for p, u in basket)
            if len(basket) > 1 and rnd.random() < 0.3:
                total *= 0.9  # an order-wide discount
            pay = rnd.choice(["Mastercard", "Visa", "PayPal", "Invoice"])
            ship = rnd.choice(["DHL", "UPS", "Pickup"])
            q = f"{total:.2f}&{pay}&{ship}" + "".join(
                f"&{p[0]}&{_plus(p[1])}&{_plus(p[2])}&{u}&{p[3]}&{p[4]}" for p, u in basket)
            ev("ORDER", "/OrderConfirmation", q, t)
    lines += [line for _, line in sorted(events)]
    _write(path, "\n".join(lines) + "\n")
    return path


def cdn(path: str, n: int = 800, seed: int = 14) -> str:
    rnd = random.Random(seed)
    clients = _clients(rnd, 60)
    out = []
    for i, t in enumerate(_times(rnd, n)):
        ip, ua = rnd.choice(clients)
        cache = rnd.choices(["hit", "miss", "expired", "stale", "bypass"], [70, 18, 6, 3, 3])[0]
        status = 200 if rnd.random() > 0.01 else 503
        if OUTAGE[0] <= t < OUTAGE[1] and rnd.random() < 0.8:
            status, cache = 503, "miss"
        ttfb = rnd.randint(2, 25) if cache in ("hit", "stale") else rnd.randint(60, 400)
        size = rnd.randint(200_000, 1_800_000) if status == 200 else 0
        ms = int(t.timestamp() * 1000) + rnd.randint(0, 999)
        seg = f"/vod/launch-2024/seg-{i % 240:04d}.mp4"
        out.append(json.dumps({
            "startTime": f"{t:%y-%m-%d %H:%M:%S}.{ms % 1000:03d}", "startTimeEpochMilli": ms,
            "durationMilli": ttfb + rnd.randint(10, 900), "source": "cache-delivery",
            "siteName": "demo-video-live", "clientIp": ip, "clientPort": rnd.randint(1024, 65000),
            "serverIp": "198.51.100.40", "serverPort": 443, "sentBytes": size, "httpResponseCode": status,
            "userAgent": ua, "referer": "https://www.example.com/launch", "httpMethod": "get",
            "httpVersion": "1.1", "CacheStatus": cache, "TTFB": ttfb,
            "edgeLocation": rnd.choice(["DE", "FR", "UK", "NL"]),
            "transactionChainId": f"{rnd.getrandbits(64):016x}-{i}", "contentType": "video/mp4",
            "uri": "https://video.example.com" + seg,
        }, separators=(",", ":")))
    _write(path, "\n".join(out) + "\n", gz=True)
    return path


def csv_usage(path: str, n: int = 500, seed: int = 15) -> str:
    rnd = random.Random(seed)
    title = ("server,s-date,s-time,c-host,c-ip,s-method,s-protocol,s-host,s-ip,s-path,s-status,r-status,"
             "s-byte,r-byte,l-url,c-agent,s-elaps,c-cookie-id,c-user")
    out = [title]
    paths = ["/intranet/index.html", "/intranet/news.html", "/intranet/hr/forms.pdf", "/intranet/missing.html"]
    for i, t in enumerate(_times(rnd, n)):
        p = rnd.choice(paths)
        status = 404 if p.endswith("missing.html") else 200
        if OUTAGE[0] <= t < OUTAGE[1] and rnd.random() < 0.8:
            status = 504  # the proxy cannot reach the upstream either
        row = ["proxy01", f"{t:%Y/%m/%d}", f"{t:%H:%M:%S}", f"pc{i % 40:03d}.corp.example", f"10.1.{i % 7}.{20 + i % 50}",
               "GET", "HTTP/1.1", "intranet.example", "10.0.0.8", p, str(status), "-",
               str(rnd.randint(800, 90000) if status == 200 else 512), "-", "-", AGENTS[i % 4],
               str(rnd.randint(3, 400)), "-", "-"]
        out.append(",".join(f'"{v}"' for v in row))
    _write(path, "\n".join(out) + "\n")
    return path


def _write(path: str, text: str, gz: bool = False) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    data = text.encode("utf-8")
    if gz:
        data = gzip.compress(data, mtime=0)  # mtime 0: the same bytes on every run
    with open(path, "wb") as f:
        f.write(data)


def write_samples(folder: str) -> list[str]:
    """Write the five sample logs under ``folder``; returns their paths."""
    j = os.path.join
    return [
        iis(j(folder, "iis", "u_ex240301.log")),
        cloudfront(j(folder, "cloudfront", "E2DEMO0EXAMPLE.2024-03-01-09.7f3a9c21.gz")),
        shop(j(folder, "shop", "shop20240301.log")),
        cdn(j(folder, "cdn", "20240301-090000.demo-video.00001.log.gz")),
        csv_usage(j(folder, "csv", "db20240301_001.csv")),
    ]


if __name__ == "__main__":  # pragma: no cover
    import sys

    for p in write_samples(sys.argv[1] if len(sys.argv) > 1 else "samples"):
        print(p)
