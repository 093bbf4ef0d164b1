"""Bad rows never amplify their input: a bounded prefix of each bad line (with its full
length and SHA-256), a per-file cap on what is kept with exact counts, and a line longer
than the maximum is one line and one bad row."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from click.testing import CliRunner

from logferry import read
from logferry.cli import app

BAD_TEXT_BYTES = 4096  # the documented defaults: 4 KiB of a bad line's text kept,
BAD_ROW_OVERHEAD = 128  # and each kept row costs 128 bytes besides against the cap

IIS_HEAD = (
    b"#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n"
    b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
    b"cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n"
)


def iis(n: int) -> bytes:
    return f"2024-01-01 00:00:{n:02d} 10.0.0.1 GET /p{n} - 80 - 1.2.3.4 UA - 200 0 0 5\r\n".encode()


def clf(n: int) -> bytes:
    return f'1.2.3.4 - - [01/Mar/2024:10:00:{n % 60:02d} +0000] "GET /p{n} HTTP/1.1" 200 5 "-" "ua"\n'.encode()


def consume(stream):
    return [n for b in stream for n in b.column("line_number").to_pylist()]


def test_iis_header_and_32_mib_of_nul_bytes_is_one_bad_row(tmp_path):
    nul = b"\0" * (32 << 20)
    src = tmp_path / "nul.log.gz"
    with gzip.open(src, "wb", compresslevel=1) as f:
        f.write(IIS_HEAD + iis(1) + nul + b"\r\n" + iis(2))
    bad = tmp_path / "bad.jsonl"
    r = CliRunner().invoke(app, ["convert", str(src), "-o", str(tmp_path / "out.jsonl"), "--bad-rows", str(bad)])
    assert r.exit_code == 0, r.output
    assert "2 records, 1 bad rows (6 lines, 3 directives, 0 blank)" in r.output
    assert [json.loads(x)["line_number"] for x in (tmp_path / "out.jsonl").read_text().splitlines()] == [4, 6]
    rows = [json.loads(x) for x in bad.read_text().splitlines()]
    assert len(rows) == 1
    (row,) = rows
    assert row["line_number"] == 5 and row["length"] == len(nul)
    assert row["sha256"] == hashlib.sha256(nul).hexdigest()
    assert row["raw"] == "\0" * BAD_TEXT_BYTES and "longer than" in row["reason"]
    assert bad.stat().st_size < 64 << 10  # not 32 MiB (or 6 times that, JSON-escaped)


def test_a_line_over_the_maximum_is_one_line_and_numbers_after_it_stay_right(tmp_path):
    src = tmp_path / "a.log"
    long = b"9.9.9.9 " + b"x" * 5000
    src.write_bytes(clf(1) + long + b"\n" + clf(3))
    for chunk in (64, 1 << 20):  # the long line across many reads, and inside one read
        s = read(str(src), "combined", options={"max_line_bytes": 1000}, chunk_size=chunk)
        assert consume(s) == [1, 3]
        assert (s.stats.lines, s.stats.records, s.stats.bad) == (3, 2, 1)
        (b,) = s.bad_rows
        assert (b.line_number, b.length, b.sha256) == (2, len(long), hashlib.sha256(long).hexdigest())
        assert b.raw.encode() == long[: len(b.raw.encode())] and b.truncated


def test_bad_text_is_a_prefix_cut_at_a_character(tmp_path):
    src = tmp_path / "a.log"
    junk = ("é" * 3000).encode()  # 6000 bytes of two-byte characters
    src.write_bytes(clf(1) + junk + b"\n")
    s = read(str(src), "combined", options={"bad_text_bytes": 1001})
    consume(s)
    (b,) = s.bad_rows
    assert b.raw == "é" * 500 and b.length == 6000 and b.sha256 == hashlib.sha256(junk).hexdigest()


@pytest.mark.parametrize("threads", ["1", "2"])
def test_bad_rows_are_capped_per_file_and_counted_exactly(tmp_path, monkeypatch, threads):
    monkeypatch.setenv("LOGFERRY_THREADS", threads)
    src = tmp_path / "a.log"
    lines = []
    for i in range(1, 20001):
        lines.append(clf(i) if i % 4 == 0 else f"garbage line {i:06d} ".encode() + b"z" * 40 + b"\n")
    src.write_bytes(b"".join(lines))
    cap = 64 << 10
    s = read(str(src), "combined", options={"bad_rows_bytes": cap}, chunk_size=32 << 10)
    consume(s)
    st = s.stats
    assert st.records == 5000 and st.bad == 15000 and st.records + st.bad == st.data_lines == 20000
    kept = s.bad_rows
    assert st.bad_omitted == st.bad - len(kept) > 0
    assert sum(len(b.raw.encode()) + BAD_ROW_OVERHEAD for b in kept) <= cap
    # the first bad lines of the file are the ones kept, in file order
    want = [i for i in range(1, 20001) if i % 4][: len(kept)]
    assert [b.line_number for b in kept] == want


def test_convert_bad_rows_cap_option_and_summary(tmp_path):
    src = tmp_path / "a.log"
    src.write_bytes(b"".join(b"not a log line %d\n" % i for i in range(5000)) + clf(1))
    bad = tmp_path / "bad.jsonl"
    r = CliRunner().invoke(app, ["convert", str(src), "-f", "combined", "-o", str(tmp_path / "o.jsonl"),
                                 "--bad-rows", str(bad), "--bad-rows-cap", "4K"])
    assert r.exit_code == 0, r.output
    n = len(bad.read_text().splitlines())
    assert 0 < n < 40
    assert "1 records, 5000 bad rows" in r.output and f"{5000 - n} bad rows counted but not kept" in r.output
    r = CliRunner().invoke(app, ["convert", str(src), "--bad-rows-cap", "lots"])
    assert r.exit_code == 2 and "--bad-rows-cap: a size in bytes" in r.output


def test_ship_of_a_long_line_writes_one_small_bad_row(tmp_path):
    nul = b"\0" * (32 << 20)
    src = tmp_path / "nul.log.gz"
    with gzip.open(src, "wb", compresslevel=1) as f:
        f.write(IIS_HEAD + iis(1) + nul + b"\r\n" + iis(2))
    state = tmp_path / "state"
    r = CliRunner().invoke(app, ["ship", str(src), "--dest", (tmp_path / "dest").as_uri(), "--state", str(state)])
    assert r.exit_code == 0, r.output
    assert "2 records" in r.output and "1 bad lines" in r.output
    rows = [json.loads(x) for x in (state / "ship.bad.jsonl").read_text().splitlines()]
    assert [(b["line_number"], b["length"]) for b in rows] == [(5, len(nul))]
    assert (state / "ship.bad.jsonl").stat().st_size < 64 << 10


def test_ingest_counts_the_bad_rows_past_the_cap_in_files(tmp_path):
    """The usage database keeps the first bad rows of a file (up to the reader's cap) and
    counts all of them: files.bad_rows + records == data lines, and the summary says so."""
    import duckdb

    from logferry.usage import connect, ingest

    src = tmp_path / "a.log"
    src.write_bytes(b"".join(clf(i) if i % 4 == 0 else f"garbage line {i:06d} ".encode() + b"z" * 40 + b"\n"
                             for i in range(1, 20001)))
    db = tmp_path / "u.duckdb"
    con = connect(db)
    try:
        summary = ingest(con, [str(src)], format="combined", options={"bad_rows_bytes": 64 << 10})
    finally:
        con.close()
    assert summary.files[0].bad_rows == 15000 and summary.files[0].records == 5000
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT lines, directives, blank, records, bad_rows FROM files").fetchall()[0]
        kept = con.execute("SELECT count(*) FROM bad_rows").fetchall()[0][0]
    finally:
        con.close()
    assert row == (20000, 0, 0, 5000, 15000)
    assert 0 < kept < 15000  # the cap held
