"""Ship a generated 2,000,000-line IIS log to an S3 server (moto, in its own process) as
gzip JSON lines in 50 MB objects; print lines/s and logferry's own peak RSS.

    python bench/bench_ship.py [LINES]

The S3 server runs as a separate process so that the peak RSS reported is the shipping
process's alone (moto keeps every object in memory)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.servers.servers import free_port, wait_port  # noqa: E402
from tests.test_dest_conformance import write_log  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    tmp = tempfile.mkdtemp()
    log = os.path.join(tmp, "access.log")
    t0 = time.perf_counter()
    write_log(log, 0, n)
    print(f"generated {n:,} lines ({os.path.getsize(log) / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s")
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 30)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                          AWS_DEFAULT_REGION="us-east-1")
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        from logferry.destinations import open_destination
        from logferry.ship.engine import Job, run_job
        from logferry.ship.rotate import Limits
        from logferry.ship.state import State

        job = Job("bench", (log,), "s3://bench/logs", limits=Limits(max_bytes=50_000_000),
                  partial_grace_secs=0)
        dest = open_destination(job.dest)
        c0 = time.process_time()
        t0 = time.perf_counter()
        r = run_job(job, State(os.path.join(tmp, "st")), dest)
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sizes = [o["Size"] for o in boto3.client("s3").list_objects_v2(Bucket="bench")["Contents"]]
        print(f"status={r.status} lines={r.records:,} objects={r.objects} bytes={r.bytes:,} "
              f"largest_object={max(sizes):,} (limit 50,000,000)")
        print(f"seconds={dt:.1f} lines/s={r.records / dt:,.0f} (cpu {cpu:.1f}s of logferry's process) "
              f"peak_rss_logferry={rss:.0f}MB (before the run: {rss_before:.0f}MB)")
    finally:
        moto.terminate()
        moto.wait(10)
        print(f"moto server peak_rss={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f}MB "
              "(separate process, not counted above)")


if __name__ == "__main__":
    main()
