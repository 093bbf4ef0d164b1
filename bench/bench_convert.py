"""Convert throughput: IIS -> JSON lines (gzip) and CloudFront -> CDN TSV (gzip).

    python bench/bench_convert.py [--lines 2000000] [--dir /tmp/logferry-bench]

Generates the inputs once (synthetic, varied values), then times ``logferry.convert``
end to end (read, decode, write, compress) and prints lines/s and the peak RSS.
Target: >= 300,000 lines/s.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import time

IIS_HEADER = (
    "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2024-03-01 00:00:00\n"
    "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
    "cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\n"
)
CF_HEADER = (
    "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
    "sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id "
    "x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
    "x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
    "time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n"
)
UAS = [
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/120.0+Safari/537.36",
    "Mozilla/5.0+(iPhone;+CPU+iPhone+OS+17_0+like+Mac+OS+X)+AppleWebKit/605.1.15",
    "curl/8.4.0",
]
PATHS = ["/", "/index.html", "/api/v1/items", "/static/app.js", "/img/logo.png", "/search"]


def gen(path: str, n: int, kind: str) -> None:
    rnd = random.Random(42)
    with open(path, "w") as f:
        f.write(IIS_HEADER if kind == "iis" else CF_HEADER)
        buf = []
        for i in range(n):
            s = i % 86400
            t = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
            ip = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}"
            p = PATHS[i % len(PATHS)] + ("" if i % 7 else f"/{i}")
            st = (200, 200, 200, 304, 404, 500)[i % 6]
            if kind == "iis":
                ua = UAS[i % 3]
                buf.append(f"2024-03-01 {t} 192.0.2.1 GET {p} q={i % 100} 443 - {ip} {ua} - {st} 0 0 {i % 900}\n")
            else:
                ua = UAS[i % 3].replace("+", "%20")
                buf.append(
                    f"2024-03-01\t{t}\tFRA56-C1\t{1000 + i % 5000}\t{ip}\tGET\td1.cloudfront.net\t{p}\t{st}\t-\t{ua}\t"
                    f"q={i % 100}\t-\tHit\tRID{i:012d}\texample.com\thttps\t{200 + i % 50}\t0.{i % 1000:03d}\t-\t"
                    f"TLSv1.3\tTLS_AES_128_GCM_SHA256\tHit\tHTTP/2.0\t-\t-\t{1024 + i % 60000}\t0.001\tHit\t"
                    f"text/html\t{1000 + i % 5000}\t-\t-\n"
                )
            if len(buf) >= 50000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))


def run(src: str, to: str, out_path: str) -> tuple[float, int]:
    from logferry.convert import convert, open_output

    out, finish = open_output(out_path, "gzip")
    t0 = time.perf_counter()
    s = convert([src], out, to)
    finish()
    return time.perf_counter() - t0, s.stats.records


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--dir", default="/tmp/logferry-bench")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    cases = [("iis", "jsonl", "iis.log", "out.jsonl.gz"), ("cloudfront", "cdn-tsv", "cf.log", "out.tsv.gz")]
    for kind, to, name, out in cases:
        src = os.path.join(a.dir, f"{a.lines}-{name}")
        if not os.path.exists(src):
            gen(src, a.lines, kind)
        secs, recs = run(src, to, os.path.join(a.dir, out))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{kind:>10} -> {to:<8} gzip: {recs:,} lines in {secs:.2f}s = {recs / secs:,.0f} lines/s "
              f"(input {os.path.getsize(src) / 1e6:.0f} MB, peak RSS so far {rss:.0f} MiB)")


if __name__ == "__main__":
    main()
