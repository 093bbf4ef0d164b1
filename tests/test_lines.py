"""Line chunking: every chunk size gives the same lines and line numbers."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from logferry.lines import iter_chunks


def lines_of(data: bytes, size: int, keep_partial: bool = True):
    out = []
    for c in iter_chunks(io.BytesIO(data), size, keep_partial=keep_partial):
        assert c.buf == data[c.offset : c.end_offset]
        out += [(c.first_line + i, c.line(i)) for i in range(len(c))]
    return out


def reference(data: bytes):
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    parts = text.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return list(enumerate(parts, 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bc", b" ", b"\n", b"\r\n", b"\r", b"#x"]), max_size=40), st.integers(1, 9))
def test_any_chunk_size_gives_the_same_lines(parts, size):
    data = b"".join(parts)
    assert lines_of(data, size) == reference(data)


def test_crlf_split_across_blocks_is_one_terminator():
    data = b"abc\r\ndef\r\n"
    for size in range(1, len(data) + 2):
        assert lines_of(data, size) == [(1, b"abc"), (2, b"def")]


def test_partial_last_line_can_be_left_unconsumed():
    assert lines_of(b"a\nb", 4, keep_partial=False) == [(1, b"a")]
    assert lines_of(b"a\nb", 4) == [(1, b"a"), (2, b"b")]


def test_old_mac_line_endings_do_not_accumulate():
    data = b"x" * 50 + b"\r"
    chunks = list(iter_chunks(io.BytesIO(data * 1000), 4096))
    assert len(chunks) > 10  # cut at CRs, not held until EOF
    assert sum(len(c) for c in chunks) == 1000


def test_split_regular_sends_empty_fields_and_odd_lines_to_the_slow_path():
    import numpy as np

    from logferry.formats._split import split_regular
    from logferry.lines import make_chunk

    data = b"a\tb\tc\r\n\tb\tc\na\tb\t\na\t\tc\r\n#x\ta\tb\nd\te\tf\na\tb\tc\t\nq\"\tr\ts\ng\th\ti"
    c = make_chunk(data)
    idx = np.array([i for i in range(len(c)) if not c.line(i).startswith(b"#")])
    good, cols, other = split_regular(c, idx, 9, 3)
    assert [c.line(i) for i in good] == [b"a\tb\tc", b"d\te\tf", b"g\th\ti"]
    assert [col.to_pylist() for col in cols] == [["a", "d", "g"], ["b", "e", "h"], ["c", "f", "i"]]
    assert [c.line(i) for i in other] == [
        b"\tb\tc", b"a\tb\t", b"a\t\tc", b"a\tb\tc\t", b'q"\tr\ts'
    ]
    # with empty fields allowed, the empty ones are cut too (quotes still forbidden)
    good, cols, other = split_regular(c, idx, 9, 3, allow_empty=True)
    assert cols[0].to_pylist() == ["a", "", "a", "a", "d", "g"]
    assert cols[1].to_pylist() == ["b", "b", "b", "", "e", "h"]


def _split_both_ways(data: bytes, sep: int, n: int, idx=None, **kw):
    """split_regular with Arrow's CSV fast path allowed, and with it forced off."""
    import numpy as np

    from logferry.formats import _split
    from logferry.lines import make_chunk

    c = make_chunk(data)
    idx = np.arange(len(c)) if idx is None else np.asarray(idx)
    fast_cols = _split._split_csv(c, idx, sep, n, kw.get("forbid", (_split.QUOTE,)),
                                  kw.get("allow_empty", False), kw.get("want"))
    results = []
    for min_lines in (_split._CSV_MIN_LINES, 10**9):
        old = _split._CSV_MIN_LINES
        _split._CSV_MIN_LINES = min_lines
        try:
            good, cols, other = _split.split_regular(c, idx, sep, n, **kw)
        finally:
            _split._CSV_MIN_LINES = old
        results.append((good.tolist(), [None if col is None else (str(col.type), col.to_pylist())
                                        for col in cols], other.tolist()))
    return results, fast_cols is not None


def test_split_regular_csv_fast_path_takes_only_clean_runs():
    rows = [f"2024-03-01\t00:00:{i % 60:02d}\tFRA2\t{i}\t/p/é{i}\t\"q\"" for i in range(100)]
    clean = "\n".join(rows).encode()
    (fast, slow), used = _split_both_ways(clean, 9, 6, forbid=(32,))
    assert used and fast == slow
    assert fast[1][3][1][:3] == ["0", "1", "2"] and fast[1][4][1][99] == "/p/é99"
    assert fast[1][5][1][0] == '"q"'  # quotes are literal where they are not forbidden
    for bad in (b"a\tb", b"a\t\tc\td\te\tf", b"\xff\tb\tc\td\te\tf", b"a\tb\tc\td\te\tf\r",
                b"a b\tb\tc\td\te\tf", b""):
        data = clean + b"\n" + bad + b"\n" + clean
        (fast, slow), used = _split_both_ways(data, 9, 6, forbid=(32,))
        assert not used and fast == slow, bad
    # an empty field in a column that is not built still sends the run to the numpy path
    data = clean + b"\na\t\tc\td\te\tf\n" + clean
    (fast, slow), used = _split_both_ways(data, 9, 6, forbid=(32,), want={0, 3})
    assert not used and fast == slow and fast[2] == [100] and fast[1][1] is None
    (fast, slow), used = _split_both_ways(clean, 9, 6, forbid=(32,), want={0, 3})
    assert used and fast == slow and [c is None for c in fast[1]] == [False, True, True, False, True, True]
    # wanting nearly every column returns just those wanted
    (fast, slow), used = _split_both_ways(clean, 9, 6, forbid=(32,), want={0, 1, 2, 3, 5})
    assert used and fast == slow and [c is None for c in fast[1]] == [False] * 4 + [True, False]
    # empty fields are fine when allowed; a gap in the selected lines is not a clean run
    data = clean + b"\na\t\tc\td\te\tf\n" + clean
    (fast, slow), used = _split_both_ways(data, 9, 6, forbid=(32,), allow_empty=True)
    assert used and fast == slow and fast[1][1][1][100] == ""
    (fast, slow), used = _split_both_ways(data, 9, 6, idx=[*range(100), *range(101, 201)], forbid=(32,))
    assert not used and fast == slow and len(fast[0]) == 200
    # chunks remember whether they hold a CR and whether they are ASCII; CRLF lines (the CR
    # is cut off each line's end) go the numpy way and give the same columns
    from logferry.lines import make_chunk

    crlf = clean.replace(b"\n", b"\r\n")
    assert not make_chunk(clean).has_cr and make_chunk(crlf).has_cr
    assert not make_chunk(clean).is_ascii and make_chunk(b"a\tb\n").is_ascii
    (fast, slow), used = _split_both_ways(crlf, 9, 6, forbid=(32,))
    assert not used and fast == slow and fast[1] == _split_both_ways(clean, 9, 6, forbid=(32,))[0][0][1]


_CLEAN = ["a", "bc", "é", '"', "x-y", "\x00", "\\", "\x0b", "#"]
_ANY = [*_CLEAN, "", " ", "\xff", "\r", "a\tb"]


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(2, 4), st.booleans(), st.booleans())
def test_split_regular_fast_and_slow_paths_agree(data, n, clean, allow_empty):
    """Same lines, same columns, whichever path; with ``want``, the wanted columns are
    those of a full split (the lines are still checked on every field)."""
    alphabet = _CLEAN if clean else _ANY
    lines = data.draw(st.lists(st.lists(st.sampled_from(alphabet), min_size=n, max_size=n),
                               min_size=64, max_size=90))
    raw = "\n".join("\t".join(parts) for parts in lines).encode().replace("\xff".encode(), b"\xff")
    (fast, slow), used = _split_both_ways(raw, 9, n, forbid=(32,), allow_empty=allow_empty)
    assert fast == slow
    if clean:
        assert used and len(fast[0]) == len(lines)
    want = data.draw(st.sets(st.integers(0, n - 1), max_size=n - 1))
    (lean, lean_slow), _ = _split_both_ways(raw, 9, n, forbid=(32,), allow_empty=allow_empty, want=want)
    assert lean == lean_slow
    assert lean[0] == fast[0] and lean[2] == fast[2]
    assert lean[1] == [col if k in want else None for k, col in enumerate(fast[1])]


_NUMBERISH = ["-", "0", "12", "+5", "-3", "007", "1.5", "2.482", "1e3", ".5", "abc", "nan", "inf",
              "99999999999999999999", "", "4 2"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_NUMBERISH), min_size=64, max_size=80), st.sampled_from(["int", "float"]))
def test_numbers_parsed_by_the_csv_fast_path_convert_like_text(values, kind):
    """A column split with ``types`` (numbers parsed by Arrow's CSV reader) converts to
    the same values, with the same failure count, as the text the slow path returns."""
    import numpy as np
    import pyarrow as pa

    from logferry.formats import _fields as F
    from logferry.formats._split import split_regular
    from logferry.lines import make_chunk

    raw = "\n".join(f"x\t{v}" for v in values).encode()
    chunk = make_chunk(raw)
    idx = np.arange(len(chunk))
    typ = pa.int64() if kind == "int" else pa.float64()
    conv = F.to_int if kind == "int" else F.to_float
    text = split_regular(chunk, idx, 9, 2, forbid=(32,))
    typed = split_regular(chunk, idx, 9, 2, forbid=(32,), types={1: typ})
    assert text[0].tolist() == typed[0].tolist() and text[2].tolist() == typed[2].tolist()
    a, b = text[1][1], typed[1][1]

    def plain(arr):  # NaN == NaN here (Arrow's equals says no)
        return [v if v == v else "nan" for v in arr.to_pylist()]

    assert plain(conv(a)) == plain(conv(b))
    assert F.count_failed(a, conv(a)) == F.count_failed(b, conv(b))


def test_clean_number_columns_come_back_as_numbers():
    import numpy as np
    import pyarrow as pa

    from logferry.formats._split import split_regular
    from logferry.lines import make_chunk

    chunk = make_chunk(("\n".join(["a\t12\t2.5", "b\t-\t-", "c\t007\t0.125"] * 30)).encode())
    good, cols, other = split_regular(chunk, np.arange(len(chunk)), 9, 3, forbid=(32,),
                                      types={1: pa.int64(), 2: pa.float64()})
    assert len(good) == 90 and not len(other)
    assert cols[0].type == pa.string() and cols[1].type == pa.int64() and cols[2].type == pa.float64()
    assert cols[1].to_pylist()[:3] == [12, None, 7] and cols[2].to_pylist()[:3] == [2.5, None, 0.125]


def lines_and_long(data: bytes, size: int, max_line: int):
    """Every line in order: (number, bytes) for normal ones, (number, LongLine) for long ones."""
    out: list = []
    longs: list = []
    for c in iter_chunks(io.BytesIO(data), size, max_line=max_line, on_long=longs.append):
        assert c.buf == data[c.offset : c.end_offset]
        out.extend((c.first_line + i, c.line(i)) for i in range(len(c)))
    out.extend((ll.line_number, ll) for ll in longs)
    return sorted(out, key=lambda x: x[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bcdefgh", b"x" * 40, b"\n", b"\r\n", b"\r"]), max_size=40),
       st.integers(1, 50), st.integers(1, 30))
def test_a_long_line_is_one_line_at_any_chunk_size(parts, size, max_line):
    import hashlib

    data = b"".join(parts)
    got = lines_and_long(data, size, max_line)
    want = reference(data)
    assert [n for n, _ in got] == [n for n, _ in want]  # one line each, numbers unchanged
    for (n, g), (_, w) in zip(got, want, strict=True):
        if len(w) > max_line:
            assert g.length == len(w) and g.sha256 == hashlib.sha256(w).hexdigest() and w.startswith(g.prefix)
            assert g.line_number == n
            assert g.prefix == w[: len(g.prefix)]
        else:
            assert g == w


def test_long_line_offsets_and_memory_bound():
    from logferry.lines import LONG_PREFIX

    head = b"first\r\n"
    long = b"\0" * (3 << 20)
    data = head + long + b"\r\nlast\n"
    got = []
    chunks = list(iter_chunks(io.BytesIO(data), 1 << 16, max_line=1 << 20, on_long=got.append))
    (ll,) = got
    assert (ll.line_number, ll.length, ll.offset, ll.end_offset) == (2, len(long), len(head), len(head) + len(long) + 2)
    assert ll.prefix == long[:LONG_PREFIX]
    assert [(c.first_line, len(c)) for c in chunks] == [(1, 1), (3, 1)]
    assert max(len(c.buf) for c in chunks) < (1 << 20)  # the long line was never a chunk


def test_long_line_without_a_callback_is_an_error():
    import pytest

    from logferry.errors import InputError

    with pytest.raises(InputError, match="line 2 is longer than 10 bytes"):
        list(iter_chunks(io.BytesIO(b"a\n" + b"b" * 20 + b"\nc\n"), 4, max_line=10))
