"""Issue 17 (writers): a W3C file logferry writes declares its dialect and writes the
``time-taken`` unit that dialect implies (what GoAccess's ``%T``/``%L``, Matomo's importer
-- seconds unless the fields are IIS's -- and logferry's reader take), and leaves out the
columns no record has a value for unless ``--fields`` asks for them."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from datetime import UTC, datetime

import pyarrow as pa
import pytest

import logferry
from logferry.schema import make_batch
from logferry.writers.w3c import W3CWriter

CLOCK = lambda: datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # noqa: E731


def canonical(**cols) -> pa.RecordBatch:
    n = len(next(iter(cols.values())))
    base = {
        "timestamp": pa.array([datetime(2024, 5, 1, 10, 0, i, tzinfo=UTC) for i in range(n)], pa.timestamp("us", "UTC")),
        "client_ip": pa.array(["192.0.2.1"] * n),
        "method": pa.array(["GET"] * n),
        "path": pa.array(["/a"] * n),
        "status": pa.array([200] * n, pa.int16()),
    }
    base.update(cols)
    return make_batch(base, n, "t.log", pa.array(range(1, n + 1), pa.int64()), None)


def write(*batches, **kw) -> str:
    out = io.BytesIO()
    w = W3CWriter(out, clock=CLOCK, **kw)
    w.set_source("cloudfront")
    for b in batches:
        w.write(b)
    w.close()
    return out.getvalue().decode("utf-8")


def header(text: str, name: str) -> str:
    return next(ln for ln in text.splitlines() if ln.startswith(f"#{name}:")).split(":", 1)[1].strip()


def matomo_seconds(text: str) -> list[float]:
    """time-taken as Matomo's importer takes it: milliseconds when the fields are IIS's
    (its IIS format wins detection through sc-win32-status), else seconds."""
    fields = header(text, "Fields").split()
    k = fields.index("time-taken")
    iis = "sc-win32-status" in fields
    vals = [ln.split(" ")[k] for ln in text.splitlines() if ln and not ln.startswith("#")]
    return [float(v) / 1000 if iis else float(v) for v in vals]


def test_w3c_from_another_format_declares_and_writes_seconds():
    b = canonical(duration_ms=pa.array([82.0, 1000.0, 1500.0, 0.25]))
    text = write(b)
    assert header(text, "Software").endswith("(W3C Extended; time-taken in seconds)")
    fields = header(text, "Fields").split()
    assert "sc-win32-status" not in fields
    assert [ln.split(" ")[-1] for ln in text.splitlines()[4:]] == ["0.082", "1", "1.5", "0.00025"]
    assert matomo_seconds(text) == [0.082, 1.0, 1.5, 0.00025]
    back = logferry.read(io.BytesIO(text.encode()), "w3c").to_table()
    assert back.column("duration_ms").to_pylist() == [82.0, 1000.0, 1500.0, 0.25]


def test_w3c_iis_dialect_writes_milliseconds():
    b = canonical(duration_ms=pa.array([82.0, 1000.0]))
    fields = ["date", "time", "c-ip", "cs-method", "cs-uri-stem", "sc-status", "sc-substatus", "sc-win32-status", "time-taken"]
    text = write(b, fields=fields)
    assert header(text, "Software").endswith("(IIS; time-taken in milliseconds)")
    assert [ln.split(" ")[-1] for ln in text.splitlines()[4:]] == ["82", "1000"]
    assert matomo_seconds(text) == [0.082, 1.0]
    back = logferry.read(io.BytesIO(text.encode()), "w3c").to_table()
    assert back.column("duration_ms").to_pylist() == [82.0, 1000.0]
    # a #Software of IIS's own: milliseconds too
    text = write(b, software="Microsoft Internet Information Services 10.0")
    assert header(text, "Software") == "Microsoft Internet Information Services 10.0"
    assert [ln.split(" ")[-1] for ln in text.splitlines()[4:]] == ["82", "1000"]


def test_columns_without_any_value_are_left_out():
    # an Apache-like source: no duration, no site, no server address; one referer only
    b1 = canonical(referer=pa.array([None, None]), user_agent=pa.array(["curl/8", None]))
    b2 = canonical(referer=pa.array(["https://r.example/"]), user_agent=pa.array([None]))
    text = write(b1, b2)
    assert header(text, "Fields") == "date time cs-method cs-uri-stem c-ip cs(User-Agent) cs(Referer) sc-status"
    assert text.count("#Fields:") == 1
    rows = [ln.split(" ") for ln in text.splitlines() if not ln.startswith("#")]
    assert [r[-3:] for r in rows] == [["curl/8", "-", "200"], ["-", "-", "200"], ["-", "https://r.example/", "200"]]
    # --fields asks for them: kept, "-" on every line
    text = write(b1, fields=["date", "time", "c-ip", "time-taken", "s-sitename"])
    assert header(text, "Fields") == "date time c-ip time-taken s-sitename"
    assert all(ln.endswith(" - -") for ln in text.splitlines()[4:])
    # nothing written at all: still a valid file (a header)
    assert header(write(), "Fields").startswith("date time s-sitename")


def test_apache_log_converted_to_w3c_has_no_time_taken(tmp_path):
    src = tmp_path / "access.log"
    src.write_text(
        '192.0.2.1 - - [01/May/2024:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl/8"\n'
        '192.0.2.2 - bob [01/May/2024:10:00:01 +0000] "GET /b?x=1 HTTP/1.1" 404 0 "https://r.example/" "Mozilla/5.0"\n'
    )
    out = tmp_path / "out.log"
    p = subprocess.run([sys.executable, "-m", "logferry.cli", "convert", str(src), "--to", "w3c", "-o", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    fields = header(text, "Fields").split()
    assert "time-taken" not in fields and "s-sitename" not in fields and "s-ip" not in fields
    assert fields == ["date", "time", "cs-method", "cs-uri-stem", "cs-uri-query", "cs-username", "c-ip",
                      "cs-version", "cs(User-Agent)", "cs(Referer)", "sc-status", "sc-bytes"]
    # every data line has a token per field (what Matomo's W3C regex needs)
    assert all(len(ln.split(" ")) == len(fields) for ln in text.splitlines() if not ln.startswith("#"))


@pytest.mark.parametrize(("rel", "unit"), [
    ("matomo-log-analytics/netscaler.log", "seconds"),
    ("matomo-log-analytics/iis.log", "milliseconds"),
])
def test_w3c_round_trip_keeps_time_taken_and_declares_its_unit(rel, unit, corpus_path):
    p = corpus_path(rel)
    src = logferry.read(str(p))
    out = io.BytesIO()
    w = W3CWriter(out, clock=CLOCK)
    for b in src:
        w.set_source(src.format)
        w.write(b)
    w.close()
    text = out.getvalue().decode("utf-8", "replace")
    assert re.search(rf"^#Software: logferry .*time-taken in {unit}\)$", text, re.M)
    orig = [ln for ln in p.read_bytes().decode("utf-8", "replace").splitlines() if ln and not ln.startswith("#")]
    assert [ln for ln in text.splitlines() if ln and not ln.startswith("#")] == orig
    a = logferry.read(str(p)).to_table().column("duration_ms").to_pylist()
    b = logferry.read(io.BytesIO(out.getvalue()), "w3c").to_table().column("duration_ms").to_pylist()
    assert a == b and any(a)


def test_formats_command_says_what_changed():
    p = subprocess.run([sys.executable, "-m", "logferry.cli", "formats"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    readers_part, writers_part = p.stdout.split("writers:")
    lines = {ln.split()[0]: ln for ln in readers_part.splitlines() if ln.startswith("  ")}
    writers = {ln.split()[0]: ln for ln in writers_part.splitlines() if ln.startswith("  ")}
    assert "time-taken unit by dialect" in lines["w3c"]
    assert "host from x-host-header" in lines["cloudfront"]
    assert "host from the request URL" in lines["alb"]
    assert "without the later user_agent/ssl fields" in lines["elb"]
    assert "RFC 3339" in lines["haproxy"] and "own messages skipped" in lines["haproxy"]
    assert "other loggers' entries skipped" in lines["caddy-json"]
    assert "bare - referer/agent" in lines["combined"]
    assert "dialect declared in #Software" in writers["w3c"] and "left out" in writers["w3c"]
