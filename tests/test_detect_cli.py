"""Detection errors and the detect/convert command-line contract."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

import logferry
from conftest import corpus
from logferry import formats
from logferry.formats import Reader


def cli(*args, input=None):
    return subprocess.run(
        [sys.executable, "-m", "logferry.cli", *args], capture_output=True, input=input
    )


def test_tie_is_a_clear_error_listing_candidates(monkeypatch, tmp_path):
    fake = {
        "alpha": Reader("alpha", "a", lambda h: 0.8, lambda c, x: iter(())),
        "beta": Reader("beta", "b", lambda h: 0.79, lambda c, x: iter(())),
        "gamma": Reader("gamma", "c", lambda h: 0.2, lambda c, x: iter(())),
    }
    monkeypatch.setattr(formats, "_REGISTRY", fake)
    p = tmp_path / "x.log"
    p.write_text("something\n")
    with pytest.raises(logferry.AmbiguousFormatError) as e:
        logferry.detect(p)
    msg = str(e.value)
    assert "alpha" in msg and "beta" in msg and "gamma" not in msg
    assert "--format" in msg
    assert [c[0] for c in e.value.candidates] == ["alpha", "beta"]


def test_not_a_log_and_missing_and_empty(tmp_path):
    b = tmp_path / "blob.bin"
    b.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(logferry.UnknownFormatError, match="not a log"):
        logferry.detect(b)
    t = tmp_path / "prose.txt"
    t.write_text("Dear diary,\nnothing happened today.\n")
    with pytest.raises(logferry.UnknownFormatError, match="--format"):
        logferry.read(t)
    e = tmp_path / "empty.log"
    e.write_bytes(b"")
    with pytest.raises(logferry.UnknownFormatError, match="empty"):
        logferry.detect(e)
    with pytest.raises(logferry.InputError, match="no such file"):
        logferry.read(tmp_path / "nope.log")
    with pytest.raises(logferry.InputError, match="directory"):
        logferry.read(tmp_path)
    # a truncated gzip is unreadable, not a crash
    z = tmp_path / "cut.gz"
    z.write_bytes(gzip.compress(b"x" * 100000)[:50])
    with pytest.raises(logferry.InputError):
        list(logferry.read(z, format="w3c"))


def test_detect_cli_json_and_exit_codes(tmp_path):
    iis = corpus("matomo-log-analytics/iis.log")
    r = cli("detect", "--json", str(iis))
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["file"] == str(iis) and d["format"] == "w3c" and d["confidence"] == pytest.approx(0.9)
    assert d["candidates"][0]["format"] == "w3c"
    r = cli("detect", str(tmp_path / "missing.log"))
    assert r.returncode != 0 and b"no such file" in r.stderr


def test_convert_cli_jsonl_contract(tmp_path):
    src = corpus("elastic-beats-filebeat-iis/test.log")
    out = tmp_path / "out.jsonl"
    bad = tmp_path / "bad.jsonl"
    r = cli("convert", str(src), "--to", "jsonl", "-o", str(out), "--bad-rows", str(bad))
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    rec = json.loads(lines[0])
    for col in logferry.CANONICAL:
        assert col in rec
    assert rec["timestamp"] == "2018-01-01T08:09:10Z"
    assert rec["status"] == 200 and isinstance(rec["status"], int)
    assert rec["duration_ms"] == 123
    assert rec["source_file"] == str(src) and rec["line_number"] == 5
    assert rec["bytes_sent"] is None
    summary = r.stderr.decode().strip().splitlines()[-1]
    assert "5 records" in summary and "0 bad rows" in summary
    assert bad.read_text() == ""


def test_convert_cli_stdout_bad_rows_and_forced_format(tmp_path):
    src = corpus("lnav/logfile_w3c.5")
    bad = tmp_path / "bad.jsonl"
    r = cli("convert", str(src), "--to", "jsonl", "-o", "-", "--format", "w3c", "--bad-rows", str(bad))
    assert r.returncode == 0
    assert r.stdout == b""
    (b,) = [json.loads(x) for x in bad.read_text().splitlines()]
    assert b["line_number"] == 2 and b["source_file"] == str(src) and "names 6" in b["reason"]
    assert b"1 bad rows" in r.stderr


def test_convert_cli_unreadable_input_is_nonzero(tmp_path):
    prose = tmp_path / "prose.txt"
    prose.write_text("just some words\nand more words\n")
    r = cli("convert", str(prose), "--to", "jsonl", "-o", str(tmp_path / "o.jsonl"))
    assert r.returncode != 0 and b"not a recognised" in r.stderr
    r = cli("convert", str(tmp_path / "missing"), "--to", "jsonl")
    assert r.returncode != 0 and b"no such file" in r.stderr
    r = cli("convert", str(prose), "--format", "no-such-format")
    assert r.returncode != 0 and b"unknown format" in r.stderr


@pytest.mark.parametrize(
    "magic", [b"\x1f\x8b\x08", b"\x1f\x8b\x09", b"\x28\xb5\x2f\xfd", b"BZh9", b"\xfd7zXZ\x00"]
)
def test_corrupt_compressed_input_is_a_clear_error(tmp_path, magic):
    p = tmp_path / "x.log"
    p.write_bytes(magic + bytes(range(7, 250)) * 4)
    with pytest.raises(logferry.InputError, match="cannot decompress|corrupt or truncated"):
        list(logferry.read(p, format="w3c"))
    r = cli("convert", str(p), "--to", "jsonl", "-o", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2 and b"logferry: error:" in r.stderr and b"Traceback" not in r.stderr


def test_package_import_is_light_and_public_names_resolve():
    """``import logferry`` loads neither numpy nor pyarrow (the CLI configures numpy's
    thread pool before anything loads it); the public names still resolve, lazily."""
    code = (
        "import sys, logferry\n"
        "heavy = sorted(m for m in ('numpy', 'pyarrow') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert set(logferry.__all__) <= set(dir(logferry))\n"
        "assert all(getattr(logferry, n) is not None for n in logferry.__all__)\n"
        "assert 'timestamp' in logferry.CANONICAL\n"
        "try:\n    logferry.no_such_name\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit('no AttributeError')\n"
        "import os, logferry.cli\n"
        "assert os.environ['OPENBLAS_NUM_THREADS'] == '1'\n"
        "assert callable(logferry.usage.connect) and callable(logferry.usage.ingest)\n"
        "assert logferry.usage.DEFAULT_DB == logferry.usage.db.DEFAULT_DB == 'logferry.duckdb'\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_NUM_THREADS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr


def test_command_registry_and_version_stay_light():
    """Registering every command group, ``--version`` and ``--help`` load neither numpy,
    pyarrow, DuckDB nor pydantic (a tenth of a second instead of a third): the usage
    database's names load on first use, the config's pydantic models with the config."""
    code = (
        "import sys\n"
        "sys.argv = ['logferry', '--version']\n"
        "import logferry.cli\n"
        "try:\n    logferry.cli.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('numpy', 'pyarrow', 'duckdb', 'pydantic') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("logferry ")


def test_the_command_does_not_load_pandas_but_the_library_still_can(tmp_path):
    """pyarrow would import pandas (0.2-0.3 s) on its first array just to ask whether the
    input is a pandas object: the ``logferry`` command declines that, its library users
    (and ``app`` under test) keep pyarrow's pandas support."""
    pytest.importorskip("pandas")
    src = str(corpus("matomo-log-analytics/iis.log"))
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "logferry.cli", "convert", src,
                        "--to", "parquet", "-o", str(tmp_path / "o.parquet")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "pandas.core" not in r.stderr and "records" in r.stderr
    code = ("import logferry.cli, pyarrow as pa\n"
            "assert pa.array([1, 2]).to_pandas().sum() == 3\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
