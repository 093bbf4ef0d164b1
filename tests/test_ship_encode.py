"""The encode step of shipping (``ship/encode.py``): what an object is made of comes from
the job and the destination -- a destination that takes records brings its limits, and
a Parquet field selection is written as chosen."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
from tests.servers import servers as S
from tests.test_dest_conformance import write_log

from logferry.destinations import open_destination
from logferry.ship.engine import Job, run_job
from logferry.ship.rotate import Limits
from logferry.ship.state import State


def test_limits_within_a_destinations_own():
    assert Limits(50, 10, None).within(40, 1000) == Limits(40, 10, 1000)
    assert Limits(30, None, 5).within(40, 1000) == Limits(30, None, 5)
    assert Limits(None, 7, None).within(None, 1000) == Limits(None, 7, 1000)
    assert Limits(30, None, 5).within() == Limits(30, None, 5)


def test_a_destination_that_takes_records_gets_json_lines_within_its_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("DD_API_KEY", "dd-test-key-123")
    intake = S.DatadogIntake("dd-test-key-123")
    try:
        log = tmp_path / "a.log"
        write_log(log, 0, 2500)
        # the job asks for zstd Parquet in 50 MB objects: Datadog takes JSON lines, 1000 a time
        job = Job("dd", (str(log),), f"datadog://127.0.0.1:{intake.port}?tls=false", to="parquet",
                  compress="zstd", limits=Limits(max_bytes=50_000_000))
        st = State(tmp_path / "st")
        r = run_job(job, st, open_destination(job.dest, {}), clock=lambda: 1e12, sleep=lambda s: None)
        assert r.status == "ok" and r.records == 2500
        assert [o.records for o in st.objects(job="dd")] == [1000, 1000, 500]
        assert all(name.endswith(f"Z-{i:06d}.jsonl") for i, name in enumerate(r.names))
        assert len(intake.items) == 2500 and intake.items[0]["message"].startswith("{")
        st.close()
    finally:
        intake.stop()


def test_parquet_with_fields_holds_the_chosen_columns_in_their_order(tmp_path):
    log = tmp_path / "a.log"
    write_log(log, 0, 300)
    out = tmp_path / "out"
    job = Job("pq", (str(log),), f"file://{out}", to="parquet", fields=("status", "path", "fields"),
              limits=Limits(max_records=200), partial_grace_secs=0)
    st = State(tmp_path / "st")
    r = run_job(job, st, open_destination(job.dest, {}), clock=lambda: 1e12, sleep=lambda s: None)
    assert r.status == "ok" and r.objects == 2 and r.records == 300
    tables = [pq.read_table(io.BytesIO((out / name).read_bytes())) for name in r.names]
    assert [t.num_rows for t in tables] == [200, 100]
    for t in tables:
        assert t.schema.names == ["status", "path", "fields"]
        assert pa.types.is_map(t.schema.field("fields").type)
    st.close()
