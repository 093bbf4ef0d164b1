"""Deterministic generators of large IIS and CloudFront logs for benchmarks (and the
one set-up step every benchmark shares: :func:`compile_logferry`)."""

from __future__ import annotations

import compileall
import random
import sys
from pathlib import Path


def compile_logferry() -> None:
    """Compile logferry's bytecode, as ``pip install`` does for a regular install, so that
    no timed run compiles the package from source: an editable install in an environment
    with ``PYTHONDONTWRITEBYTECODE`` set (this one) would, at about 0.15 s per process."""
    import logferry

    compileall.compile_dir(str(Path(logferry.__file__).parent), quiet=1)

UAS = [
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/120.0.0.0+Safari/537.36",
    "Mozilla/5.0+(Macintosh;+Intel+Mac+OS+X+14_2)+AppleWebKit/605.1.15+(KHTML,+like+Gecko)+Version/17.2+Safari/605.1.15",
    "Mozilla/5.0+(X11;+Linux+x86_64;+rv:121.0)+Gecko/20100101+Firefox/121.0",
    "Mozilla/5.0+(compatible;+bingbot/2.0;++http://www.bing.com/bingbot.htm)",
    "curl/8.4.0",
]
PATHS = ["/", "/index.html", "/api/orders", "/api/products/42", "/images/logo.png", "/missing", "/checkout"]
STATUS = [200] * 30 + [304] * 4 + [404] * 3 + [500, 503]

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


def iis(path: Path, n: int, seed: int = 1) -> Path:
    rnd = random.Random(seed)
    with open(path, "w", newline="\n") as f:
        f.write(IIS_HEADER)
        lines = []
        for i in range(n):
            s = i // 20  # 20 requests per second
            hh, mm, ss = (s // 3600) % 24, (s // 60) % 60, s % 60
            st = rnd.choice(STATUS)
            lines.append(
                f"2024-03-01 {hh:02d}:{mm:02d}:{ss:02d} W3SVC1 10.0.0.{rnd.randint(1, 4)} GET "
                f"{rnd.choice(PATHS)} {'id=' + str(rnd.randint(1, 999)) if rnd.random() < 0.3 else '-'} 443 - "
                f"203.0.113.{rnd.randint(1, 254)} {rnd.choice(UAS)} https://www.example.com/ www.example.com "
                f"{st} 0 0 {rnd.randint(200, 90000)} {rnd.randint(300, 900)} {rnd.randint(1, 3000)}\n"
            )
            if len(lines) == 10000:
                f.writelines(lines)
                lines.clear()
        f.writelines(lines)
    return path


def cloudfront(path: Path, n: int, seed: int = 2) -> Path:
    rnd = random.Random(seed)
    with open(path, "w", newline="\n") as f:
        f.write(CF_HEADER)
        lines = []
        for i in range(n):
            s = i // 20
            hh, mm, ss = (s // 3600) % 24, (s // 60) % 60, s % 60
            ua = rnd.choice(UAS).replace("+", "%20")
            res = rnd.choice(["Hit", "Hit", "Miss", "RefreshHit", "Error"])
            lines.append(
                "\t".join(
                    [
                        "2024-03-01", f"{hh:02d}:{mm:02d}:{ss:02d}", rnd.choice(["LAX1", "FRA2", "SEA19-C1"]),
                        str(rnd.randint(200, 90000)), f"198.51.100.{rnd.randint(1, 254)}", "GET",
                        "d111111abcdef8.cloudfront.net", rnd.choice(PATHS), str(rnd.choice(STATUS)), "-", ua,
                        "-", "-", res, f"req{i:012d}AbCdEfGhIjKlMnOpQrStUvWxYz==", "www.example.com", "https",
                        str(rnd.randint(100, 900)), f"{rnd.randint(1, 3000) / 1000:.3f}", "-", "TLSv1.3",
                        "TLS_AES_128_GCM_SHA256", res, "HTTP/2.0", "-", "-", str(rnd.randint(1024, 65535)),
                        f"{rnd.randint(1, 900) / 1000:.3f}", res, "text/html", str(rnd.randint(100, 90000)), "-", "-",
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
