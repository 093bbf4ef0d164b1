"""Property tests: every registered reader survives random and mangled input.

For EVERY reader in ``logferry.formats.registry()`` (listed when the tests are collected,
so readers added later are covered without touching this file) we feed

(a) random bytes, and
(b) real lines of that format -- the first lines of corpus files that ``logferry.detect``
    assigns to it (a mixed pool of every format's lines when no corpus file is its) --
    mangled by hypothesis: truncation, inserted/deleted separators and quotes, invalid
    UTF-8, CR/LF noise, NUL bytes, very long lines, numbers out of range, dropped/duplicated
    lines, sometimes repeated to 70+ lines (the CSV fast path), optional gzip (sometimes cut
    short);

and check that reading with ``logferry.read(path, format=name)`` either raises a clean
:class:`logferry.LogferryError` or

* ``records + bad == lines - directives - blank`` and ``records == sum of batch rows``;
* every batch starts with the canonical schema (names and types), then carries
  ``source_file`` and ``line_number``;
* every line number (records and bad rows) is in ``1..lines`` and no line is counted
  twice (as two records, or as a record and a bad row);
* reading without the original fields (``originals=false``) gives the same counts.

Set ``LOGFERRY_FUZZ_EXAMPLES`` to run more examples, ``LOGFERRY_FUZZ_RANDOM=1`` to
explore with a random seed instead of the reproducible default.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logferry
from conftest import CORPUS
from logferry.formats import registry
from logferry.reader import open_input

READERS = sorted(registry())
EXAMPLES = int(os.environ.get("LOGFERRY_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("LOGFERRY_FUZZ_RANDOM", "") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

SAMPLE_FILES_PER_FORMAT = 4
SAMPLE_LINES_PER_FILE = 12


# --- sample material -------------------------------------------------------------------


@functools.cache
def corpus_samples() -> dict[str, list[bytes]]:
    """format name -> sample material from up to a few corpus files that detect as it.

    Text formats: the first lines of each file; binary formats: each file's first bytes
    as one item.
    """
    out: dict[str, list[bytes]] = {}
    files: dict[str, int] = {}
    if not CORPUS.is_dir():
        return out
    reg = registry()
    for p in sorted(CORPUS.rglob("*")):
        if not p.is_file() or p.suffix in (".md", ".b64"):
            continue
        try:
            det = logferry.detect(p)
            stream, head, _ = open_input(p)
            stream.close()
        except logferry.LogferryError:
            continue
        if files.get(det.format, 0) >= SAMPLE_FILES_PER_FORMAT:
            continue
        files[det.format] = files.get(det.format, 0) + 1
        if reg[det.format].binary:
            out.setdefault(det.format, []).append(head[:16384])
            continue
        lines = head[: 64 << 10].splitlines()[:SAMPLE_LINES_PER_FILE]
        out.setdefault(det.format, []).extend(ln for ln in lines if len(ln) < 8192)
    return out


@functools.cache
def written_samples(name: str) -> list[bytes]:
    """Lines of format ``name`` made by logferry's own writer of that name, if it has one."""
    import io

    from logferry.writers import WRITERS, get_writer

    if name not in WRITERS or registry()[name].binary:
        return []
    src = CORPUS / "lnav" / "logfile_access_log.0"
    if not src.exists():
        return []
    out = io.BytesIO()
    w = get_writer(name, out)
    for b in logferry.read(src):
        w.write(b.slice(0, 12))
        break
    w.close()
    return out.getvalue().splitlines()[:SAMPLE_LINES_PER_FILE]


def seed_lines(name: str) -> list[bytes]:
    samples = corpus_samples()
    if samples.get(name):
        return samples[name]
    made = written_samples(name)
    if made:
        return made
    # no sample of this format: every format's lines, a few each
    pool = [ln for fmt, lines in samples.items() if not registry()[fmt].binary for ln in lines[:4]]
    return pool or [b"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326"]


# --- mangling --------------------------------------------------------------------------

NOISE = [
    b"\t", b" ", b",", b'"', b"'", b"\\", b"-", b"#", b":", b"{", b"}", b"[", b"]", b"?", b"%",
    b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82", b'""', b"\t\t",
    b"%25", b"+", b"#Fields: date time", b'","',
]
#: numbers no canonical column can hold (status is int16, ports int32) or hardly parse
BIG_NUMBERS = [b"99999", b"4294967296", b"99999999999999999999", b"-1", b"1e308", b"0x1F", b"007"]


@st.composite
def mangled(draw, name: str) -> bytes:
    base = seed_lines(name)
    binary = registry()[name].binary
    lines = list(draw(st.lists(st.sampled_from(base), min_size=1, max_size=2 if binary else 12)))
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(lines) - 1))
        ln = lines[i]
        op = draw(st.sampled_from(["truncate", "insert", "delete", "replace", "long", "dup", "drop", "bytes",
                                   "number"]))
        pos = draw(st.integers(0, len(ln)))
        if op == "truncate":
            lines[i] = ln[:pos]
        elif op == "insert":
            lines[i] = ln[:pos] + draw(st.sampled_from(NOISE)) + ln[pos:]
        elif op == "delete":
            width = draw(st.integers(1, 5))
            lines[i] = ln[:pos] + ln[pos + width :]
        elif op == "replace" and pos < len(ln):
            lines[i] = ln[:pos] + draw(st.sampled_from(NOISE)) + ln[pos + 1 :]
        elif op == "long":
            lines[i] = ln[:pos] + draw(st.sampled_from([b"A", b"\t", b'"', b"%41", b" "])) * draw(
                st.sampled_from([1000, 70000])
            ) + ln[pos:]
        elif op == "dup":
            lines.insert(i, ln)
        elif op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "bytes":
            lines[i] = ln[:pos] + draw(st.binary(min_size=1, max_size=20)) + ln[pos:]
        elif op == "number":  # one run of digits becomes an odd number
            runs = list(re.finditer(rb"\d+", ln))
            if runs:
                m = runs[draw(st.integers(0, len(runs) - 1))]
                lines[i] = ln[: m.start()] + draw(st.sampled_from(BIG_NUMBERS)) + ln[m.end() :]
    if not binary and draw(st.integers(0, 3)) == 0:
        lines = lines * (70 // len(lines) + 1)  # long enough for the readers' CSV fast path
    if binary:
        data = b"".join(lines)
    else:
        eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
        data = eol.join(lines) + draw(st.sampled_from([b"", eol, eol + eol, b"\n \n"]))
    if draw(st.integers(0, 9)) == 0:
        data = gzip.compress(data)
        if draw(st.booleans()):
            data = data[: draw(st.integers(10, max(10, len(data) - 1)))]
    return data


# --- the property ----------------------------------------------------------------------


def check_read(path: Path, name: str) -> None:
    try:
        stream = logferry.read(path, format=name)
        batches = list(stream)
    except logferry.LogferryError as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        return
    s = stream.stats
    # without the original fields (ingest, Parquet), readers take other paths: same counts
    lean = logferry.read(path, format=name, options={"originals": False})
    assert sum(b.num_rows for b in lean) == s.records and lean.stats == s
    assert s.records + s.bad == s.lines - s.directives - s.blank, s
    assert s.records == sum(b.num_rows for b in batches), s
    assert len(stream.bad_rows) == s.bad
    n_canon = len(logferry.CANONICAL_SCHEMA)
    seen: set[int] = set()
    for b in batches:
        prefix = b.schema.names[:n_canon]
        assert prefix == logferry.CANONICAL_SCHEMA.names
        for f in logferry.CANONICAL_SCHEMA:
            assert b.schema.field(f.name).type == f.type, (f.name, b.schema.field(f.name).type)
        ln = b.column("line_number")
        assert ln.null_count == 0
        nums = ln.to_pylist()
        if nums:
            assert min(nums) >= 1 and max(nums) <= s.lines, (min(nums), max(nums), s.lines)
        dup = seen.intersection(nums)
        assert not dup and len(set(nums)) == len(nums), f"line(s) read twice: {sorted(dup)[:5]}"
        seen.update(nums)
        # source_file: a string on every row (a canonical-JSON reader may keep the
        # file a record came from originally, so it need not be this file's name)
        assert b.column("source_file").null_count == 0
    for r in stream.bad_rows:
        assert 1 <= r.line_number <= s.lines, (r.line_number, s.lines)
        assert isinstance(r.raw, str) and r.reason
        assert r.line_number not in seen, f"line {r.line_number} is both a record and a bad row"
        seen.add(r.line_number)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _write(d: Path, data: bytes) -> Path:
    p = d / f"{uuid.uuid4().hex}.log"
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("name", READERS)
@FUZZ
@given(data=st.one_of(st.binary(max_size=3000), st.text(max_size=1000).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_random_bytes(name: str, data: bytes, fuzz_dir: Path) -> None:
    p = _write(fuzz_dir, data)
    try:
        check_read(p, name)
    finally:
        p.unlink()


@pytest.mark.parametrize("name", READERS)
@FUZZ
@given(data=st.data())
def test_mangled_lines(name: str, data, fuzz_dir: Path) -> None:
    blob = data.draw(mangled(name))
    p = _write(fuzz_dir, blob)
    try:
        check_read(p, name)
    finally:
        p.unlink()


@pytest.mark.parametrize("name", READERS)
def test_unmangled_samples_read_cleanly(name: str, fuzz_dir: Path) -> None:
    """The seed lines themselves satisfy the property (sanity of the material)."""
    p = _write(fuzz_dir, b"\n".join(seed_lines(name)) + b"\n")
    try:
        check_read(p, name)
    finally:
        p.unlink()


def test_truncated_gzip_past_the_detection_head(fuzz_dir: Path) -> None:
    """A gzip file cut short after more than the 256 KiB head: a clean error or bad rows.

    (The head is read before any reader runs, so this damage shows up only while the
    batches stream -- for every reader alike.)
    """
    failures = []
    for name in READERS:
        lines = seed_lines(name)
        body = b"\n".join(lines * (400_000 // max(1, sum(len(x) + 1 for x in lines)) + 1)) + b"\n"
        blob = gzip.compress(body)
        p = _write(fuzz_dir, blob[: len(blob) - 12])
        try:
            check_read(p, name)
        except Exception as e:  # collected so one run names every reader that fails
            failures.append(f"{name}: {type(e).__name__}: {e}")
        finally:
            p.unlink()
    assert not failures, "\n".join(failures)


def test_every_reader_is_covered() -> None:
    # the parametrisation above is the registry itself, not a hand-kept list
    assert READERS == sorted(registry())
    assert {"cdn-tsv", "cdn-json", "csv-usage", "w3c"} <= set(READERS)
    assert all(isinstance(registry()[n].name, str) for n in READERS)
    assert pa.types.is_timestamp(logferry.CANONICAL_SCHEMA.field("timestamp").type)
