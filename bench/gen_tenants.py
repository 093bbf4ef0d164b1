"""Small CloudFront logs of many tenants, as a CDN bucket holds them: ``--tenants`` sites
of ``--files`` gzip files each (a few minutes of one distribution, ``--lines`` requests),
written so that the tenants interleave in the order a run reads them:

    uv run python bench/gen_tenants.py WORK                  # 10 tenants x 30 files x 200 lines
    logferry ingest $(cat WORK/by-mtime.txt) --lake lake/    # per-tenant folders, by mtime
    logferry ingest WORK/hours --lake lake/                  # hour folders holding every tenant

``WORK/tenants/<site>/`` holds each tenant's files (their modification times 5 minutes
apart, the tenants' a second apart: ``by-mtime.txt`` lists them oldest first, as ``ls -tr``
would); ``WORK/hours/2024/03/01/HH/`` the same files under CloudFront's names
(``DISTRIBUTION.2024-03-01-HH.xxxxxxxx.gz``), every tenant in every hour.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import gen  # noqa: E402


def make(work: Path, tenants: int, files: int, lines: int) -> list[Path]:
    """The files, oldest first (every tenant's k-th file before any tenant's k+1-th)."""
    big = gen.cloudfront(work / "all.log", tenants * files * lines)
    out = []
    with open(big, "rb") as f:
        head = [next(f), next(f)]
        for k in range(files):
            hour, minute = divmod(5 * k, 60)
            for t in range(tenants):
                site = f"t{t:02d}.example".encode()
                body = [next(f).replace(b"www.example.com", site).replace(b"d111111abcdef8.cloudfront.net", site)
                        for _ in range(lines)]
                data = gzip.compress(b"".join(head + body), compresslevel=6)
                mine = work / "tenants" / site.decode() / f"access-{k:04d}.log.gz"
                hours = work / "hours" / "2024" / "03" / "01" / f"{hour:02d}" / f"E{t:02d}CDN.2024-03-01-{hour:02d}.{k:08x}.gz"
                for p in (mine, hours):
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_bytes(data)
                    os.utime(p, (1_709_251_200 + 300 * k + t,) * 2)
                out.append(mine)
    big.unlink()
    (work / "by-mtime.txt").write_text("".join(f"{p}\n" for p in out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--tenants", type=int, default=10)
    ap.add_argument("--files", type=int, default=30, help="files per tenant")
    ap.add_argument("--lines", type=int, default=200, help="lines per file")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    n = len(make(a.work, a.tenants, a.files, a.lines))
    print(f"{n} files in {a.work}/tenants (by-mtime.txt) and {a.work}/hours")


if __name__ == "__main__":
    main()
