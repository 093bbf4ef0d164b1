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
