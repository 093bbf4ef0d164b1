"""Deterministic generators of large IIS and CloudFront logs for benchmarks (and the
one set-up step every benchmark shares: :func:`compile_logferry`)."""

from __future__ import annotations

import compileall
import sys
from pathlib import Path


def compile_logferry() -> None:
    """Compile the bytecode of logferry and of every package of its environment, as ``pip
    install`` does, so that no timed run compiles its imports from source: an editable or
    ``uv sync`` install (uv compiles nothing by default) in an environment with
    ``PYTHONDONTWRITEBYTECODE`` set (this one) would, at about 1 s per process (numpy,
    pyarrow, duckdb, click, ...).  Quick once the files are compiled."""
    import sysconfig

    import logferry

    dirs = {str(Path(logferry.__file__).parent), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    for d in sorted(dirs):
        compileall.compile_dir(d, quiet=2, workers=0)


def goaccess(jobs: int = 2) -> tuple[list[str], str] | None:
    """The GoAccess command to compare with and its version line: the binary named by
    ``GOACCESS=`` (e.g. a build of the newest release), else ``goaccess`` on the PATH;
    ``-j jobs`` (parsing threads) where it has them (1.9 and later).  None: none found."""
    import os
    import shutil
    import subprocess

    path = os.environ.get("GOACCESS") or shutil.which("goaccess")
    if not path or not os.access(path, os.X_OK):
        return None
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.splitlines()
    has_jobs = "--jobs" in subprocess.run([path, "--help"], capture_output=True, text=True).stdout
    return [path, *(["-j", str(jobs)] if has_jobs and jobs > 1 else [])], (version[0] if version else path)


def per_million(cpu: float, lines: int) -> float:
    """CPU seconds (user + sys) per million lines: what carries over to bigger machines."""
    return cpu * 1e6 / lines if lines else float("nan")


# --- what the traffic looks like ---------------------------------------------------------
# (a few dozen real user agents with weights: browsers, phones, bots, tools)
UA_WEIGHTS = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 18),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36", 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", 7),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", 5),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 6),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15", 5),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", 2),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 1),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1", 14),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", 4),
    ("Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1", 2),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", 12),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", 3),
    ("Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", 2),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1", 2),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 1),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0", 1),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 4),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 1),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", 1),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 1),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", 1),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 1),
    ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", 1),
    ("curl/8.4.0", 1),
    ("python-requests/2.31.0", 1),
    ("Go-http-client/1.1", 1),
    ("okhttp/4.12.0", 1),
    ("Wget/1.21.4", 1),
    ("-", 1),
]
#: referers: none most of the time, then search engines, social, the site itself, mail
REFERER_WEIGHTS = [
    ("-", 45), ("https://www.google.com/", 18), ("https://www.bing.com/", 3), ("https://duckduckgo.com/", 2),
    ("https://www.facebook.com/", 2), ("https://t.co/", 1), ("https://www.linkedin.com/", 1),
    ("https://news.ycombinator.com/", 1), ("https://www.reddit.com/r/webdev/", 1), ("android-app://com.google.android.gm/", 1),
    ("SELF", 25),
]
#: status mix of pages that exist (the 404s/410s come from dead paths)
STATUS_WEIGHTS = [(200, 820), (304, 60), (301, 12), (302, 15), (206, 5), (403, 4), (401, 3), (400, 2),
                  (404, 15), (500, 4), (502, 3), (503, 3), (504, 1)]
N_PATHS, N_IPS = 20_000, 60_000
SECTIONS = [("products", 5000), ("blog", 3000), ("static/js", 400), ("static/css", 150), ("images", 6000),
            ("api/v1/items", 2500), ("category", 800), ("search", 1), ("docs", 1600), ("account", 40),
            ("cart", 5), ("old", 504)]


class Traffic:
    """Deterministic draws of realistic traffic (numpy, vectorised): ~20k distinct paths in a
    Zipf mix, 60k client IPs (about 1 in 8 IPv6, a few heavy hitters), a few dozen user agents,
    real referers and a status mix with dead links."""

    def __init__(self, n: int, seed: int):
        import numpy as np

        self.rng = rng = np.random.default_rng(seed)
        self.n = n
        paths: list[str] = ["/", "/index.html", "/favicon.ico", "/robots.txt", "/sitemap.xml"]
        for sec, k in SECTIONS:
            for i in range(k):
                if len(paths) >= N_PATHS:
                    break
                ext = {"static/js": ".js", "static/css": ".css", "images": ".jpg"}.get(sec, "")
                slug = f"{sec}/item-{i:05d}" if sec != "old" else f"old/page-{i}.html"
                paths.append(f"/{slug}{ext}" if k > 1 else f"/{sec}")
        rest = paths[5:N_PATHS]
        rng.shuffle(rest)  # the sections interleave in the popularity order
        self.paths = paths[:5] + rest
        self.dead = {i for i, p in enumerate(self.paths) if p.startswith("/old/")}
        ips = []
        for i in range(N_IPS):
            if i % 8 == 7:
                ips.append(f"2001:db8:{i % 997:x}:{(i * 7919) % 65535:x}::{i % 251 + 1:x}")
            else:
                a = (i * 2654435761) & 0xFFFFFFFF
                ips.append(f"{(a >> 24) % 223 + 1}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255 or 1}")
        self.ips = ips

        def zipf(k: int, s: float, size: int):
            w = 1.0 / np.arange(1, k + 1) ** s
            c = np.cumsum(w)
            return np.searchsorted(c, rng.random(size) * c[-1])

        def pick(weights, size):
            w = np.array([x[1] for x in weights], dtype=float)
            return rng.choice(len(weights), size=size, p=w / w.sum())

        self.path_i = zipf(len(self.paths), 1.05, n)
        self.ip_i = zipf(N_IPS, 0.75, n)
        self.ua_i = pick(UA_WEIGHTS, n)
        self.ref_i = pick(REFERER_WEIGHTS, n)
        self.ref_self = zipf(len(self.paths), 1.05, n)
        st = np.array([s for s, _ in STATUS_WEIGHTS])[pick(STATUS_WEIGHTS, n)]
        dead = np.isin(self.path_i, np.fromiter(self.dead, int))
        st[dead] = np.where(rng.random(int(dead.sum())) < 0.85, 404, 410)
        self.status = st
        self.ms = np.minimum(rng.lognormal(3.6, 1.0, n), 60000).astype(int) + 1
        self.bytes = np.where(st == 304, 0, rng.lognormal(9.0, 1.3, n).astype(int) + 200)
        self.query = rng.random(n) < 0.2
        self.qid = rng.integers(1, 5000, n)
        self.sec = (np.arange(n) * 86400) // max(n, 1)  # one day
        for a in ("path_i", "ip_i", "ua_i", "ref_i", "ref_self", "status", "ms", "bytes", "query", "qid", "sec"):
            setattr(self, a, getattr(self, a).tolist())  # Python ints: cheaper to format one by one

    def referer(self, i: int) -> str:
        r = REFERER_WEIGHTS[self.ref_i[i]][0]
        return f"https://www.example.com{self.paths[self.ref_self[i]]}" if r == "SELF" else r


IIS_HEADER = (
    "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2024-03-01 00:00:00\n"
    "#Fields: date time s-sitename s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
    "cs(User-Agent) cs(Referer) cs-host sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken\n"
)

CF_HEADER = (
    "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status "
    "cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header "
    "cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type "
    "cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type "
    "sc-content-type sc-content-len sc-range-start sc-range-end\n"
)


def _hms(s: int) -> str:
    return f"{(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}"


def iis(path: Path, n: int, seed: int = 1) -> Path:
    t = Traffic(n, seed)
    uas = [u.replace(" ", "+") for u, _ in UA_WEIGHTS]
    with open(path, "w", newline="\n") as f:
        f.write(IIS_HEADER)
        lines = []
        for i in range(n):
            q = f"id={t.qid[i]}" if t.query[i] else "-"
            lines.append(
                f"2024-03-01 {_hms(t.sec[i])} W3SVC1 10.0.0.{i % 4 + 1} GET {t.paths[t.path_i[i]]} {q} 443 - "
                f"{t.ips[t.ip_i[i]]} {uas[t.ua_i[i]]} {t.referer(i)} www.example.com "
                f"{t.status[i]} 0 0 {t.bytes[i]} {300 + t.qid[i] % 600} {t.ms[i]}\n"
            )
            if len(lines) == 10000:
                f.writelines(lines)
                lines.clear()
        f.writelines(lines)
    return path


def cloudfront(path: Path, n: int, seed: int = 2) -> Path:
    from urllib.parse import quote

    t = Traffic(n, seed)
    uas = [quote(u, safe="/;:()+,.~=-_") for u, _ in UA_WEIGHTS]
    edges = ["LAX1", "FRA2", "SEA19-C1", "IAD89-C2", "NRT57-P1", "LHR61-C1", "GRU3-C1", "SIN2-P2"]
    results = ["Hit", "Hit", "Hit", "Miss", "Miss", "RefreshHit", "Error"]
    with open(path, "w", newline="\n") as f:
        f.write(CF_HEADER)
        lines = []
        for i in range(n):
            st = int(t.status[i])
            res = "Error" if st >= 400 else results[(i * 7 + int(t.qid[i])) % 6]
            ms = int(t.ms[i])
            lines.append(
                "\t".join(
                    [
                        "2024-03-01", _hms(t.sec[i]), edges[int(t.ip_i[i]) % len(edges)],
                        str(t.bytes[i]), t.ips[t.ip_i[i]], "GET", "d111111abcdef8.cloudfront.net",
                        t.paths[t.path_i[i]], str(st), t.referer(i), uas[t.ua_i[i]],
                        f"id={t.qid[i]}" if t.query[i] else "-", "-", res, f"req{i:012d}AbCdEfGhIjKlMnOpQrStUvWxYz==",
                        "www.example.com", "https", str(300 + int(t.qid[i]) % 600), f"{ms / 1000:.3f}", "-", "TLSv1.3",
                        "TLS_AES_128_GCM_SHA256", res, "HTTP/2.0", "-", "-", str(1024 + i % 60000),
                        f"{ms * 0.6 / 1000:.3f}", res, "text/html", str(t.bytes[i]), "-", "-",
                    ]
                )
                + "\n"
            )
            if len(lines) == 10000:
                f.writelines(lines)
                lines.clear()
        f.writelines(lines)
    return path


if __name__ == "__main__":
    kind, out, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    {"iis": iis, "cloudfront": cloudfront}[kind](out, n)
