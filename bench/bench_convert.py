"""Convert throughput: IIS -> JSON lines (gzip) and CloudFront -> CDN TSV (gzip).

    python bench/bench_convert.py [--lines 2000000] [--dir /tmp/logferry-bench] [--read-only] [--profile]

Generates the inputs once (synthetic, varied values), then times ``logferry.convert``
end to end (read, decode, write, gzip) in a fresh process per case and prints lines/s
by wall clock and by CPU time (user+sys from ``os.wait4``, which is steadier than wall
time on a shared machine), the main thread's CPU time (the serial part: reading runs on
worker threads, gzip on its own thread) and the case's peak RSS.  ``--read-only`` also times reading
alone; ``--profile`` dumps cProfile stats.  Target: >= 300,000 lines/s.
"""

from __future__ import annotations

import argparse
import os
import random
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


def run_case(src: str, to: str | None, out_path: str, profile: str | None = None) -> None:
    """Child process body: one conversion (``to=None``: read only), figures as JSON."""
    import json

    from logferry.convert import convert, open_output
    from logferry.reader import read

    w0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile(time.thread_time)  # main-thread CPU, not wall (shared machine)
        prof.enable()
    if to is None:
        records = 0
        stream = read(src)
        for batch in stream:
            records += batch.num_rows
    else:
        out, finish = open_output(out_path, "gzip")
        records = convert([src], out, to).stats.records
        finish()
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)
    print(json.dumps({"records": records, "wall": time.perf_counter() - w0,
                      "cpu_in": time.process_time() - c0, "cpu_main": time.thread_time() - m0}))


def measure(src: str, to: str | None, out_path: str, profile: str | None = None) -> dict:
    """Run one case in a fresh interpreter; CPU (user+sys) and peak RSS from wait4."""
    import json
    import subprocess
    import sys

    cmd = [sys.executable, __file__, "--child", src, to or "-", out_path]
    if profile:
        cmd += ["--profile", profile]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    outp = p.stdout.read()  # type: ignore[union-attr]
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"case {to} failed (status {status})")
    r = json.loads(outp.decode().strip().splitlines()[-1])
    r["proc_wall"] = wall
    r["cpu"] = ru.ru_utime + ru.ru_stime
    r["rss_mib"] = ru.ru_maxrss / 1024
    return r


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        prof = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None
        run_case(sys.argv[2], None if sys.argv[3] == "-" else sys.argv[3], sys.argv[4], prof)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--dir", default="/tmp/logferry-bench")
    ap.add_argument("--read-only", action="store_true", help="also time reading alone")
    ap.add_argument("--profile", action="store_true", help="write cProfile stats next to the outputs")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    cases = [("iis", "jsonl", "iis.log", "out.jsonl.gz"), ("cloudfront", "cdn-tsv", "cf.log", "out.tsv.gz")]
    for kind, to, name, out in cases:
        src = os.path.join(a.dir, f"{a.lines}-{name}")
        if not os.path.exists(src):
            gen(src, a.lines, kind)
        todo = [None, to] if a.read_only else [to]
        for target in todo:
            prof = os.path.join(a.dir, f"{kind}-{target or 'read'}.prof") if a.profile else None
            r = measure(src, target, os.path.join(a.dir, out), prof)
            n = r["records"]
            label = f"{kind:>10} -> {target or '(read only)':<11}"
            print(f"{label} {n:,} lines: wall {r['wall']:.2f}s = {n / r['wall']:,.0f} lines/s; "
                  f"CPU {r['cpu']:.2f}s = {n / r['cpu']:,.0f} lines/CPU-s "
                  f"(main thread {r['cpu_main']:.2f}s); peak RSS {r['rss_mib']:.0f} MiB "
                  f"(input {os.path.getsize(src) / 1e6:.0f} MB)", flush=True)


if __name__ == "__main__":
    main()
