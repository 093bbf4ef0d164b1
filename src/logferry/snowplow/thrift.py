"""Snowplow raw Thrift records: ``CollectorPayload`` and the legacy ``SnowplowRawEvent``.

The IDL files ship inside this package and are loaded with thriftpy2.  Records are
read from:

* a plain concatenation of TBinaryProtocol structs (self-delimiting), optionally each
  followed by ``\\n`` as the S3 loader's gzip serializer writes them (gzip itself is
  undone by :mod:`logferry.compression`);
* elephant-bird block framing (what the S3 loader's LZO format holds inside the lzop
  stream): ``marker, int32 LE length, SerializedBlock protobuf`` repeated;
* text with one Base64-encoded record per line.

Nothing raises on bad bytes: each record is either decoded or reported with a reason.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .hits import THRIFT, Hit

HERE = Path(__file__).resolve().parent
BLOCK_MARKER = bytes.fromhex("29d8d50658cd4c29b2bc57992171bdff")
COLLECTOR_PAYLOAD_SCHEMA = "iglu:com.snowplowanalytics.snowplow/CollectorPayload/thrift/1-0-0"


@functools.cache
def idl() -> tuple[Any, Any]:
    """(collector_payload module, snowplow_raw_event module) loaded from the shipped IDL."""
    import thriftpy2

    cp = thriftpy2.load(str(HERE / "collector-payload.thrift"), module_name="collector_payload_thrift")
    sre = thriftpy2.load(str(HERE / "snowplow-raw-event.thrift"), module_name="snowplow_raw_event_thrift")
    return cp, sre


@dataclass
class Record:
    """One decoded record: its raw fields (as text) and the collector hit they describe."""

    struct: str  # "CollectorPayload" or "SnowplowRawEvent"
    fields: dict[str, str | None]
    hit: Hit


def _s(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return str(v)


def _headers(v: Any) -> str | None:
    if not v:
        return None
    return "\n".join(_s(h) or "" for h in v)


def _kind(b: bytes) -> str | None:
    if len(b) >= 3:
        if b[0] == 11 and b[1:3] in (b"\x7a\x69", b"\x00\x64"):  # string 31337 / 100
            return "CollectorPayload"
        if b[0] == 10 and b[1:3] == b"\x00\x01":  # i64 1
            return "SnowplowRawEvent"
    return None


def _reader(buf: bytes) -> tuple[Any, Any]:
    import io

    from thriftpy2.protocol.binary import TBinaryProtocol

    trans = io.BytesIO(buf)  # the pure-Python protocol reads with .read(n)
    return trans, TBinaryProtocol(trans, decode_response=False)


# TBinaryProtocol wire types -> fixed width in bytes (None: variable)
_FIXED = {2: 1, 3: 1, 4: 8, 6: 2, 8: 4, 10: 8}
_STOP, _STRING, _STRUCT, _MAP, _SET, _LIST = 0, 11, 12, 13, 14, 15


def check_struct(buf: bytes, pos: int = 0, depth: int = 0) -> int:
    """Walk one TBinaryProtocol struct at ``pos`` without building it and return where it
    ends; raise ``ValueError`` on anything malformed (unknown types, lengths or element
    counts that run past the buffer).  Garbage then fails fast instead of sending the
    decoder into a loop over a corrupted 2**31-element container."""
    if depth > 16:
        raise ValueError("Thrift struct nested too deeply")
    n = len(buf)
    while True:
        if pos >= n:
            raise ValueError("Thrift struct runs past the end of the data")
        ftype = buf[pos]
        if ftype == _STOP:
            return pos + 1
        if pos + 3 > n:
            raise ValueError("truncated Thrift field header")
        pos = _check_value(buf, pos + 3, ftype, depth)


def _check_value(buf: bytes, pos: int, ttype: int, depth: int) -> int:
    n = len(buf)
    if ttype in _FIXED:
        pos += _FIXED[ttype]
    elif ttype == _STRING:
        if pos + 4 > n:
            raise ValueError("truncated Thrift string length")
        size = int.from_bytes(buf[pos : pos + 4], "big", signed=True)
        if size < 0 or pos + 4 + size > n:
            raise ValueError(f"Thrift string length {size} runs past the data")
        pos += 4 + size
    elif ttype == _STRUCT:
        pos = check_struct(buf, pos, depth + 1)
    elif ttype in (_LIST, _SET, _MAP):
        head = 6 if ttype == _MAP else 5
        if pos + head > n:
            raise ValueError("truncated Thrift container header")
        types = (buf[pos], buf[pos + 1]) if ttype == _MAP else (buf[pos],)
        size = int.from_bytes(buf[pos + head - 4 : pos + head], "big", signed=True)
        pos += head
        if size < 0 or size > n - pos:  # every element takes at least one byte
            raise ValueError(f"Thrift container of {size} elements runs past the data")
        for _ in range(size):
            for t in types:
                pos = _check_value(buf, pos, t, depth + 1)
    else:
        raise ValueError(f"unknown Thrift type {ttype}")
    if pos > n:
        raise ValueError("Thrift value runs past the end of the data")
    return pos


def _read_struct(trans: Any, proto: Any, pos: int, kind: str) -> tuple[Any, int]:
    """Decode one struct of ``kind`` at ``pos``; returns (object, next position)."""
    cp, sre = idl()
    obj = cp.CollectorPayload() if kind == "CollectorPayload" else sre.SnowplowRawEvent()
    check_struct(trans.getbuffer(), pos)
    trans.seek(pos)
    obj.read(proto)
    return obj, trans.tell()


#: the fields both structs carry, under the same names
_SHARED = ("ipAddress", "timestamp", "encoding", "collector", "userAgent", "refererUri", "hostname",
           "networkUserId")


def _record(kind: str, obj: Any) -> Record | str:
    if kind == "CollectorPayload":
        if obj.timestamp is None and obj.ipAddress is None:
            return "Thrift CollectorPayload without timestamp or IP address"
    elif obj.timestamp is None:
        return "Thrift SnowplowRawEvent without timestamp"
    f = {k: _s(getattr(obj, k)) for k in _SHARED}
    f["headers"] = _headers(obj.headers)
    if kind == "CollectorPayload":
        f.update(schema=_s(obj.schema), path=_s(obj.path), querystring=_s(obj.querystring),
                 body=_s(obj.body), contentType=_s(obj.contentType))
    else:
        p = obj.payload
        data = _s(p.data) if p is not None else None
        fmt = p.format if p is not None else None
        post = fmt in (10, 11)
        f.update(schema=None, path="/i", querystring=None if post else data, body=data if post else None,
                 contentType="application/x-www-form-urlencoded" if fmt == 10 else None)
    ts = obj.timestamp
    ts_us = ts * 1000 if isinstance(ts, int) and 0 <= ts < 32503680000000 else None
    hit = Hit(
        THRIFT,
        collector_tstamp=ts_us,
        ip=f["ipAddress"],
        method="POST" if f["body"] else "GET",
        path=f["path"],
        query=f["querystring"],
        referer=f["refererUri"],
        useragent=f["userAgent"],
        content_type=f["contentType"],
        body=f["body"],
        network_userid=f["networkUserId"],
        collector=f["collector"],
    )
    f["struct"] = kind
    return Record(kind, f, hit)


def decode_one(b: bytes) -> Record | str:
    """Exactly one serialized record -> Record, or the reason it cannot be decoded."""
    recs = list(iter_records(b))
    if len(recs) == 1:
        return recs[0][1]
    if not recs:
        return "empty Thrift record"
    return "more than one Thrift record where one was expected"


def iter_records(buf: bytes) -> Iterator[tuple[bytes, Record | str]]:
    """(raw bytes, Record or bad reason) for every record in ``buf`` (whatever the framing)."""
    if buf.startswith(BLOCK_MARKER):
        for blob in _blocks(buf):
            if isinstance(blob, str):
                yield b"", blob
            else:
                yield blob, _one(blob)
        return
    if _kind(buf) is None and _looks_base64_lines(buf):
        for line in buf.splitlines():
            if not line.strip():
                continue
            try:
                blob = base64.b64decode(line.strip(), validate=True)
            except (binascii.Error, ValueError):
                yield line, "invalid base64 Thrift record"
                continue
            yield line, _one(blob)
        return
    yield from _concatenated(buf)


def _one(blob: bytes) -> Record | str:
    kind = _kind(blob)
    if kind is None:
        return "not a Thrift CollectorPayload or SnowplowRawEvent"
    try:
        obj, end = _read_struct(*_reader(blob), 0, kind)
    except Exception as e:  # thriftpy2 raises many kinds on garbage
        return f"cannot decode Thrift {kind}: {type(e).__name__}"
    if blob[end:].strip(b"\n"):
        return f"{len(blob) - end} bytes after the Thrift {kind}"
    return _record(kind, obj)


def _concatenated(buf: bytes) -> Iterator[tuple[bytes, Record | str]]:
    pos = 0
    n = len(buf)
    trans, proto = _reader(buf)
    while pos < n:
        if buf[pos] == 0x0A and _kind(buf[pos + 1 : pos + 4]) is not None:
            pos += 1  # the S3 loader's record separator
            continue
        kind = _kind(buf[pos : pos + 3])
        if kind is None:
            yield buf[pos:], "not a Thrift CollectorPayload or SnowplowRawEvent"
            return
        try:
            obj, end = _read_struct(trans, proto, pos, kind)
        except Exception as e:
            yield buf[pos:], f"cannot decode Thrift {kind}: {type(e).__name__}"
            return
        if end > n or end <= pos:
            yield buf[pos:], f"truncated Thrift {kind}"
            return
        yield buf[pos:end], _record(kind, obj)
        pos = end
        if pos < n and buf[pos] == 0x0A and (pos + 1 == n or _kind(buf[pos + 1 : pos + 4])):
            pos += 1


_B64_LINE = re.compile(rb"^[A-Za-z0-9+/=_\-\s]*$")


def _looks_base64_lines(buf: bytes) -> bool:
    head = buf[:4096]
    if not head.strip() or not _B64_LINE.match(head):
        return False
    first = head.split(b"\n", 1)[0].strip()
    try:
        return _kind(base64.b64decode(first[:64] + b"=" * (-len(first[:64]) % 4))) is not None
    except (binascii.Error, ValueError):
        return False


def looks_like_thrift(head: bytes) -> bool:
    """Does ``head`` (decompressed) start like Snowplow raw Thrift data?"""
    if head.startswith(BLOCK_MARKER):
        return True
    if _kind(head) is not None:
        return True
    return _looks_base64_lines(head)


def _varint(b: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    val = 0
    while True:
        if pos >= len(b) or shift > 63:
            raise ValueError("bad varint")
        c = b[pos]
        pos += 1
        val |= (c & 0x7F) << shift
        if not c & 0x80:
            return val, pos
        shift += 7


def _blocks(buf: bytes) -> Iterator[bytes | str]:
    """Elephant-bird ``BinaryBlockWriter`` framing -> the records' bytes (or a reason)."""
    pos = 0
    n = len(buf)
    while pos < n:
        if buf[pos : pos + 16] != BLOCK_MARKER:
            yield f"elephant-bird block framing lost at byte {pos}"
            return
        if pos + 20 > n:
            yield "truncated elephant-bird block header"
            return
        size = int.from_bytes(buf[pos + 16 : pos + 20], "little")
        start, pos = pos + 20, pos + 20 + size
        if pos > n:
            yield "truncated elephant-bird block"
            return
        block = buf[start:pos]
        try:
            p = 0
            while p < len(block):
                tag, p = _varint(block, p)
                wire = tag & 7
                if wire == 0:
                    _, p = _varint(block, p)
                elif wire == 2:
                    ln, p = _varint(block, p)
                    if p + ln > len(block):
                        raise ValueError("truncated field")
                    if tag >> 3 == 3:
                        yield block[p : p + ln]
                    p += ln
                elif wire == 5:
                    p += 4
                elif wire == 1:
                    p += 8
                else:
                    raise ValueError(f"wire type {wire}")
        except ValueError as e:
            yield f"corrupt elephant-bird block: {e}"
