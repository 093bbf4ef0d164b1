"""One file read on several threads (byte ranges of a plain file; a compressed one
decompressed on a thread of its own) gives exactly what the single reader gives: the same
batches (rows, order, boundaries), bad rows (line numbers, reasons), stats and output
bytes.  Small range sizes (the ``range_size`` option) put range edges everywhere."""

from __future__ import annotations

import fnmatch
import gzip
import json
import subprocess
import sys

import pytest

from conftest import CORPUS
from logferry import parallel
from logferry.reader import read
from test_corpus import EXPECTED


def _read(path, threads: int, **options):
    s = read(path, options={"threads": threads, **options})
    batches = list(s)
    return {
        "format": s.format,
        "rows": [b.num_rows for b in batches],
        "data": [b.to_pylist() for b in batches],
        "bad": [b.as_dict() for b in s.bad_rows],
        "stats": s.stats.as_dict(),
    }


def assert_alike(path, sizes=(1, 7, 64, 333, 4096), **options) -> dict:
    """The single reader and 3 threads agree at every range size; returns one result."""
    for size in sizes:
        one = _read(path, 1, range_size=size, **options)
        many = _read(path, 3, range_size=size, **options)
        assert many == one, (path, size)
        s = one["stats"]
        assert s["records"] + s["bad"] == s["data_lines"]
    return one


def _corpus_files():
    out = []
    for p in sorted(CORPUS.rglob("*")):
        rel = str(p.relative_to(CORPUS))
        if not p.is_file() or p.name.endswith((".md", ".thrift", ".txt", ".json")) or "thrift" in rel.lower():
            continue
        for pat, fmt in EXPECTED:
            if fnmatch.fnmatch(rel, pat):
                out.append((rel, fmt))
                break
    return out


CORPUS_FILES = _corpus_files()


@pytest.mark.skipif(not CORPUS_FILES, reason="the shared corpus is not there")
@pytest.mark.parametrize("rel,fmt", CORPUS_FILES, ids=[r for r, _ in CORPUS_FILES])
def test_corpus_file_reads_alike_on_threads(rel, fmt):
    path = CORPUS / rel
    for size in (max(97, path.stat().st_size // 100), 4096, 1 << 20):  # (at most ~100 ranges)
        one = _read_fmt(path, fmt, 1, size)
        many = _read_fmt(path, fmt, 3, size)
        assert many == one, (rel, size)


def _read_fmt(path, fmt, threads, size):
    s = read(path, fmt, options={"threads": threads, "range_size": size})
    batches = list(s)
    return ([b.num_rows for b in batches], [b.to_pylist() for b in batches],
            [b.as_dict() for b in s.bad_rows], s.stats.as_dict())


FIELDS_A = "#Fields: date time cs-method cs-uri-stem sc-status time-taken\n"
FIELDS_B = "#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes time-taken\n"


def _w3c(n: int = 400, crlf: bool = False) -> bytes:
    """A W3C log whose #Fields change mid-file (and back), with bad lines, blank lines,
    lines much longer than a range and a last line without its terminator."""
    lines = ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0", FIELDS_A.strip()]
    b_mode = False
    for i in range(n):
        if i % 97 == 50:
            b_mode = (i // 97) % 2 == 0
            lines.append(FIELDS_B.strip() if b_mode else FIELDS_A.strip())
        if i % 41 == 7:
            lines.append(f"garbage line {i} with the wrong number of fields")
        elif i % 53 == 11:
            lines.append("")
        elif i % 67 == 5:
            lines.append(f"2024-03-01 10:00:{i % 60:02d} GET /{'x' * 900}/{i} 200 {i}")
        elif b_mode:
            lines.append(f"2024-03-01 10:{i % 60:02d}:00 10.0.0.{i % 250} GET /b/{i} 200 {i * 3} {i}")
        else:
            lines.append(f"2024-03-01 10:{i % 60:02d}:01 GET /a/{i} {200 + i % 3} {i}")
    nl = "\r\n" if crlf else "\n"
    return (nl.join(lines)).encode()  # (no terminator after the last line)


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_w3c_fields_changing_mid_file_bad_lines_at_every_edge(tmp_path, crlf):
    p = tmp_path / "a.log"
    p.write_bytes(_w3c(crlf=crlf))
    one = assert_alike(p)
    assert one["stats"]["bad"] > 5 and one["stats"]["blank"] > 3
    # the second header's rows were read with it (c-ip only there)
    assert any(r["client_ip"] == "10.0.0.51" for rows in one["data"] for r in rows)


def test_lone_cr_long_lines_and_the_bad_row_cap(tmp_path):
    p = tmp_path / "b.log"
    body = _w3c(200).replace(b"\n", b"\r", 40)  # old Mac line ends in the first lines
    body += b"\n2024-03-01 10:00:00 GET /" + b"y" * 5000 + b" 200 1\n"  # longer than max_line
    p.write_bytes(body)
    # past the per-file cap the first bad rows in file order are kept, the rest counted;
    # a long line's bad row takes its place in file order (it was reported when read,
    # ahead of the parse of the chunks before it: the cap kept other rows on threads)
    one = assert_alike(p, sizes=(3, 100, 999), max_line_bytes=2000, bad_rows_bytes=1500)
    lines = [b["line_number"] for b in one["bad"]]
    assert lines == sorted(lines)
    assert one["stats"]["bad_omitted"] > 0
    assert any("longer than 2000 bytes" in b["reason"] for b in _read(p, 3, max_line_bytes=2000)["bad"])


def test_cloudfront_and_combined_generated(tmp_path):
    cf = tmp_path / "cf.log"
    head = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status\n"
    rows = [f"2024-03-01\t10:00:{i % 60:02d}\tLAX1\t{i}\t10.0.0.{i % 9}\tGET\th\t/p/{i}\t200" for i in range(300)]
    rows[17] = "bad\trow"
    cf.write_text(head + "\n".join(rows) + "\n")
    assert_alike(cf)
    clf = tmp_path / "access.log"
    clf.write_text("".join(
        f'10.0.0.{i % 7} - - [01/Mar/2024:10:00:{i % 60:02d} +0000] "GET /c/{i} HTTP/1.1" 200 {i} "-" "ua {i}"\n'
        if i % 31 else "not a log line\n" for i in range(300)))
    assert_alike(clf)


def test_ranges_are_read_on_workers(tmp_path, monkeypatch):
    """A plain file goes through the range reader, a gzip file through the decompressing
    thread, and --threads 1 through neither (the single reader)."""
    p = tmp_path / "a.log"
    p.write_bytes(_w3c())
    gz = tmp_path / "a.log.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    used = []
    for name in ("range_chunks", "prefetched"):
        real = getattr(parallel, name)
        monkeypatch.setattr(parallel, name, lambda *a, _r=real, _n=name, **k: used.append(_n) or _r(*a, **k))
    plain = _read(p, 2, range_size=100)
    assert used == ["range_chunks"]
    assert _read(gz, 2, range_size=100) == plain | {"bad": _renamed(plain["bad"], str(gz)),
                                                     "data": [_renamed(rows, str(gz)) for rows in plain["data"]]}
    assert used == ["range_chunks", "prefetched"]
    _read(p, 1)
    assert used == ["range_chunks", "prefetched"]


def _renamed(bad, name):
    return [dict(b, source_file=name) for b in bad]


@pytest.mark.parametrize("to", ["jsonl", "parquet", "csv-usage"])
def test_convert_output_bytes_identical(tmp_path, to):
    p = tmp_path / "a.log"
    p.write_bytes(_w3c(3000))
    outs = []
    for t in ("1", "3"):
        out = tmp_path / f"out{t}.{to}"
        bad = tmp_path / f"bad{t}.jsonl"
        r = subprocess.run([sys.executable, "-m", "logferry.cli", "convert", "--threads", t, "-O", "range_size=2K",
                            str(p), "--to", to, "-o", str(out), "--bad-rows", str(bad)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append((out.read_bytes(), bad.read_bytes(), r.stderr.split(" in ")[0]))
    assert outs[0] == outs[1]
    assert outs[0][1].count(b"\n") > 10


def test_report_file_same_on_threads(tmp_path):
    p = tmp_path / "a.log"
    p.write_bytes(_w3c(2000))
    res = []
    for t in ("1", "2"):
        r = subprocess.run([sys.executable, "-m", "logferry.cli", "report", "--threads", t, str(p), "--json"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        d.pop("generated_at")
        res.append((d, r.stderr.split(" in ")[0]))
    assert res[0] == res[1]


@pytest.mark.parametrize("bad", ["0", "-2", "many", "③"])
def test_threads_flag_checked(tmp_path, bad):
    p = tmp_path / "a.log"
    p.write_bytes(_w3c(10))
    out = tmp_path / "o.jsonl"
    r = subprocess.run([sys.executable, "-m", "logferry.cli", "convert", "--threads", bad, str(p), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"logferry: error: --threads: a number of workers, 1 or more, not {bad!r}"]
    assert not out.exists()


def test_threads_option_checked():
    from logferry.errors import InputError

    with pytest.raises(InputError, match="at least 1"):
        parallel.threads_of({"threads": "0"})
    assert parallel.threads_of({"threads": "3"}) == 3
