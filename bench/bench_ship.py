"""Ship a generated 2,000,000-line IIS log to the moto S3 server as gzip JSON lines in
50 MB objects; print lines/s and peak RSS.   python bench/bench_ship.py [LINES]"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.servers.servers import S3Server  # noqa: E402
from tests.test_dest_conformance import write_log  # noqa: E402

from logferry.destinations import open_destination  # noqa: E402
from logferry.ship.engine import Job, run_job  # noqa: E402
from logferry.ship.rotate import Limits  # noqa: E402
from logferry.ship.state import State  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    tmp = tempfile.mkdtemp()
    log = os.path.join(tmp, "access.log")
    write_log(log, 0, n)
    srv = S3Server()
    srv.make_bucket("bench")
    os.environ.update(AWS_ENDPOINT_URL=srv.endpoint, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                      AWS_DEFAULT_REGION="us-east-1")
    job = Job("bench", (log,), "s3://bench/logs", limits=Limits(max_bytes=50_000_000))
    dest = open_destination(job.dest)
    t0 = time.perf_counter()
    r = run_job(job, State(os.path.join(tmp, "st")), dest)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"status={r.status} lines={r.records} objects={r.objects} bytes={r.bytes} "
          f"input={os.path.getsize(log)/1e6:.0f}MB seconds={dt:.1f} lines/s={r.records/dt:,.0f} "
          f"peak_rss={rss:.0f}MB")
    srv.stop()


if __name__ == "__main__":
    main()
