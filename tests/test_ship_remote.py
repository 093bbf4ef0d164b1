"""Remote sources (an S3 bucket on the moto server) and the shaping options of
`logferry ship` end to end: --where, --fields, IP masking (/24, /48) and keyed hashing (no
raw client IP leaves the machine), Parquet objects rotated by size."""

from __future__ import annotations

import collections
import gzip
import hashlib
import hmac
import io
import json
import os
import re
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from tests.test_dest_conformance import HEADER, paths_of, s3, write_log  # noqa: F401  (fixture)

from logferry.cli import app
from logferry.destinations import open_destination
from logferry.ship.engine import Job, run_job
from logferry.ship.rotate import Limits
from logferry.ship.state import State


def _iis(start: int, n: int, header: bool = True) -> bytes:
    buf = io.StringIO()
    p = "/tmp/x.log"
    write_log(p, start, n, header=header)
    with open(p) as f:
        buf.write(f.read())
    os.remove(p)
    return buf.getvalue().encode()


@pytest.fixture
def bucket(request, monkeypatch, tmp_path):
    srv = request.getfixturevalue("s3")
    for k, v in (("AWS_ENDPOINT_URL", srv.endpoint), ("AWS_ACCESS_KEY_ID", "test"),
                 ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(k, v)
    import boto3

    name = f"cf{abs(hash(tmp_path)) % 10**8}"
    srv.make_bucket(name)
    return name, boto3.client("s3", endpoint_url=srv.endpoint, region_name="us-east-1")


def test_s3_source_delivered_once_new_renamed_and_replaced_objects(bucket, tmp_path):
    name, c = bucket
    c.put_object(Bucket=name, Key="cf/E1.2024-03-01-00.a.gz", Body=gzip.compress(_iis(0, 400)))
    c.put_object(Bucket=name, Key="cf/E1.2024-03-01-01.b.gz", Body=gzip.compress(_iis(400, 300)))
    c.put_object(Bucket=name, Key="other/ignored.gz", Body=gzip.compress(_iis(9000, 5)))
    out = f"file://{tmp_path}/out"
    job = Job("cf", (f"s3://{name}/cf/*.gz",), out, limits=Limits(max_records=250),
              name_template="{seq:03d}{ext}")
    st = State(tmp_path / "st")
    d = open_destination(out)

    def delivered():
        return collections.Counter(p for o in d.list() for p in paths_of(d.get(o.name)))

    r1 = run_job(job, st, d, clock=lambda: 1e12)
    assert (r1.status, r1.records, r1.objects) == ("ok", 700, 3)
    assert delivered() == collections.Counter(f"/p/{i}" for i in range(700))
    assert sorted(f.path for f in st.files("cf")) == [f"s3://{name}/cf/E1.2024-03-01-00.a.gz",
                                                      f"s3://{name}/cf/E1.2024-03-01-01.b.gz"]
    # a rerun sends nothing
    r2 = run_job(job, st, d, clock=lambda: 1e12)
    assert (r2.status, r2.records, r2.objects) == ("ok", 0, 0)
    # a new object: only it goes
    c.put_object(Bucket=name, Key="cf/E1.2024-03-01-02.c.gz", Body=gzip.compress(_iis(700, 50)))
    # an object "renamed" (copied to a new key, the old one deleted): not sent again
    c.copy_object(Bucket=name, Key="cf/E1.2024-03-01-00.a.renamed.gz",
                  CopySource={"Bucket": name, "Key": "cf/E1.2024-03-01-00.a.gz"})
    c.delete_object(Bucket=name, Key="cf/E1.2024-03-01-00.a.gz")
    r3 = run_job(job, st, d, clock=lambda: 1e12)
    assert (r3.status, r3.records) == ("ok", 50)
    assert delivered() == collections.Counter(f"/p/{i}" for i in range(750))
    assert sum(1 for f in st.files("cf") if f.path.endswith(".a.renamed.gz")) == 1
    assert len(st.files("cf")) == 3
    # a plain-text object replaced by a longer version of itself (a collector that
    # rewrites the object as the hour goes on): only the new lines go
    c.put_object(Bucket=name, Key="cf/live.log", Body=_iis(1000, 40))
    job2 = Job("cf", (f"s3://{name}/cf/*.gz", f"s3://{name}/cf/*.log"), out,
               limits=Limits(max_records=250), name_template="{seq:03d}{ext}")
    assert run_job(job2, st, d, clock=lambda: 1e12).records == 40
    c.put_object(Bucket=name, Key="cf/live.log", Body=_iis(1000, 40) + _iis(1040, 25, header=False))
    assert run_job(job2, st, d, clock=lambda: 1e12).records == 25
    # an object replaced by different content is new data
    c.put_object(Bucket=name, Key="cf/live.log", Body=_iis(2000, 10))
    assert run_job(job2, st, d, clock=lambda: 1e12).records == 10
    want = collections.Counter(f"/p/{i}" for i in [*range(750), *range(1000, 1065), *range(2000, 2010)])
    assert delivered() == want
    st.close()


def test_cli_ship_from_s3_to_s3(bucket, tmp_path):
    name, c = bucket
    c.put_object(Bucket=name, Key="in/a.log.gz", Body=gzip.compress(_iis(0, 120)))
    c.create_bucket(Bucket=name + "-out")
    args = ["ship", f"s3://{name}/in/*.gz", "--dest", f"s3://{name}-out/x", "--state", str(tmp_path / "st"),
            "--max-records", "50", "--name", "{seq:02d}{ext}"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "3 objects, 120 records" in r.output
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=name + "-out")["Contents"]]
    assert keys == ["x/00.jsonl.gz", "x/01.jsonl.gz", "x/02.jsonl.gz"]
    assert "0 objects, 0 records" in CliRunner().invoke(app, args).output


# ------------------------------------------------------------------ shaping + privacy
V4 = ["203.0.113.77", "198.51.100.9", "192.0.2.201"]
V6 = ["2001:db8:abcd:12::5", "2001:db8:ffff:1:2:3:4:5"]
MASKED = {"203.0.113.77": "203.0.113.0", "198.51.100.9": "198.51.100.0", "192.0.2.201": "192.0.2.0",
          "2001:db8:abcd:12::5": "2001:db8:abcd::", "2001:db8:ffff:1:2:3:4:5": "2001:db8:ffff::"}


def _privacy_log(path, n=300):
    ips = V4 + V6
    t0 = datetime(2024, 3, 1)
    with open(path, "w") as f:
        f.write(HEADER)
        for i in range(n):
            d = t0 + timedelta(seconds=i)
            f.write(f"{d:%Y-%m-%d %H:%M:%S} 10.0.0.1 GET /p/{i} q={i} 80 - {ips[i % len(ips)]} "
                    f"Mozilla/5.0 {503 if i % 3 == 0 else 200} 0 0 {i}\n")


def _all_output(dest_dir) -> bytes:
    blob = b""
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(dest_dir) for f in fs)
    assert files
    for name in files:
        data = open(name, "rb").read()
        blob += gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    return blob


def _raw_ip_in(blob: bytes) -> list[str]:
    text = blob.decode()
    return [ip for ip in V4 + V6 if re.search(r"(?<![0-9a-fA-F:.])" + re.escape(ip) + r"(?![0-9a-fA-F])", text)]


def test_ship_where_fields_and_ip_masking(tmp_path):
    log = tmp_path / "a.log"
    _privacy_log(log)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["ship", str(log), "--dest", f"file://{out}", "--state", str(tmp_path / "st"),
                                 "--where", "status>=500", "--fields", "timestamp,client_ip,path,status",
                                 "--mask-ip", "--max-records", "40"])
    assert r.exit_code == 0, r.output
    assert "3 objects, 100 records" in r.output
    rows = [json.loads(x) for x in _all_output(out).splitlines()]
    assert [list(x) for x in rows[:1]] == [["timestamp", "client_ip", "path", "status"]]
    assert [x["path"] for x in rows] == [f"/p/{i}" for i in range(0, 300, 3)]
    assert {x["status"] for x in rows} == {503}
    ips = V4 + V6
    assert [x["client_ip"] for x in rows] == [MASKED[ips[i % 5]] for i in range(0, 300, 3)]
    assert rows[1]["timestamp"].startswith("2024-03-01T00:00:03")
    assert _raw_ip_in(_all_output(out)) == []


def test_ship_masking_scrubs_the_raw_fields_too(tmp_path):
    """Without --fields the record carries the raw W3C fields (c-ip among them)."""
    log = tmp_path / "a.log"
    _privacy_log(log, 50)
    out = tmp_path / "out"
    args = ["ship", str(log), "--dest", f"file://{out}", "--state", str(tmp_path / "st"), "--mask-ip",
            "--ipv4-prefix", "16", "--ipv6-prefix", "32"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    blob = _all_output(out)
    rows = [json.loads(x) for x in blob.splitlines()]
    assert len(rows) == 50
    assert [x["client_ip"] for x in rows[:5]] == ["203.0.0.0", "198.51.0.0", "192.0.0.0", "2001:db8::",
                                                  "2001:db8::"]
    assert rows[0]["fields"]["c-ip"] == "203.0.0.0"
    assert _raw_ip_in(blob) == []
    # control: the same run without privacy does carry the raw addresses
    r = CliRunner().invoke(app, ["ship", str(log), "--dest", f"file://{tmp_path}/raw", "--state",
                                 str(tmp_path / "st2")])
    assert sorted(_raw_ip_in(_all_output(tmp_path / "raw"))) == sorted(V4 + V6)


def test_ship_keyed_hash_of_client_ips(tmp_path, monkeypatch):
    key = "k3y-for-ip-hashing-0123"
    monkeypatch.setenv("LF_IP_KEY", key)
    log = tmp_path / "a.log"
    _privacy_log(log, 30)
    out = tmp_path / "out"
    state = tmp_path / "st"
    r = CliRunner().invoke(app, ["ship", str(log), "--dest", f"file://{out}", "--state", str(state),
                                 "--hash-ip-key-env", "LF_IP_KEY"])
    assert r.exit_code == 0, r.output
    blob = _all_output(out)
    rows = [json.loads(x) for x in blob.splitlines()]
    ips = V4 + V6
    want = [hmac.new(key.encode(), ips[i % 5].encode(), hashlib.sha256).hexdigest()[:16] for i in range(30)]
    assert [x["client_ip"] for x in rows] == want
    assert [x["fields"]["c-ip"] for x in rows] == want
    assert len(set(want)) == 5
    assert _raw_ip_in(blob) == []
    # the key is in no output, no message and not in the state
    assert key not in r.output and key.encode() not in blob
    assert all(key.encode() not in open(os.path.join(state, f), "rb").read() for f in os.listdir(state))
    # no key -> a clear error naming the variable, not a crash
    monkeypatch.delenv("LF_IP_KEY")
    r = CliRunner().invoke(app, ["ship", str(log), "--dest", f"file://{out}", "--state", str(state),
                                 "--hash-ip-key-env", "LF_IP_KEY"])
    assert r.exit_code == 2 and "LF_IP_KEY is not set" in r.output


def test_ship_parquet_rotated_by_size(tmp_path):
    log = tmp_path / "a.log"
    write_log(log, 0, 6000)
    out = tmp_path / "out"
    limit = 15_000
    r = CliRunner().invoke(app, ["ship", str(log), "--dest", f"file://{out}", "--state", str(tmp_path / "st"),
                                 "--to", "parquet", "--max-bytes", str(limit), "--fields",
                                 "timestamp,client_ip,path,status,duration_ms", "--name", "{seq:03d}{ext}"])
    assert r.exit_code == 0, r.output
    names = sorted(os.listdir(out))
    assert len(names) >= 3 and all(n.endswith(".parquet") for n in names)
    sizes = [os.path.getsize(out / n) for n in names]
    assert all(s <= limit for s in sizes), sizes
    assert min(sizes[:-1]) > limit * 0.6  # objects are filled, not cut early
    tables = [pq.read_table(out / n) for n in names]
    assert all(t.column_names == ["timestamp", "client_ip", "path", "status", "duration_ms"] for t in tables)
    paths = [p for t in tables for p in t.column("path").to_pylist()]
    assert paths == [f"/p/{i}" for i in range(6000)]
    assert tables[0].column("status").to_pylist()[:12] == [500] + [200] * 10 + [500]
