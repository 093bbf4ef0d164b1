"""The lake's manifest as the ingester asks it: which registered file a file found is, which
registered file holds the same content.

    driver: the manifest's columns as one Arrow table (:class:`Manifest`, read once a run)
      -> each task is sent the entries its files may be (:meth:`Manifest.for_files`: Arrow
         filters on path, fingerprint, inode and content group) and the run's content keys
         (:class:`ContentKeys`, 8 bytes a content group)
      -> the task indexes those few entries in Python (:class:`TaskManifest`) and answers as
         the whole manifest would, or says which content group it was not sent (:class:`NotSent`)

The same in one process and on Dask workers.  Only the entries a run's files may be become
Python objects: a lake of a year of CloudFront files registers millions, and building an
object (and its index keys) per entry for every run cost ~1.5 CPU s and ~300 MiB per
100,000 entries.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..sources import (
    IDENTITY_BYTES,
    PREFIX_BYTES,
    ContentIndex,
    KnownIndex,
    SourceFile,
    fingerprint,
    head_fingerprints,
    identities,
)
from ..usage.db import Registered


@dataclass
class LakeRegistered(Registered):
    """A manifest row: a registered file, the reads whose rows are its own, and what its
    last line stored (for a last line read before its end was written: record/bad/none)."""

    reads: list[dict[str, int]] = field(default_factory=list)
    last_line_rows: tuple[int, int] = (0, 0)  # (records, bad rows) at line ``lines``


#: the manifest's columns the ingester's planning reads (not its times, counts of ingests...)
PLAN_COLUMNS = [f.name for f in fields(LakeRegistered) if f.name != "last_line_rows"]
#: the manifest's digests (SHA-256, 64 hex digits): the driver holds them as their 32 bytes
#: (:func:`digests_as_bytes`: three digests were 204 of an entry's ~394 bytes in memory)
DIGESTS = ("identity", "fp", "head_fp")
DIGEST = pa.binary(32)


class Entries:
    """Manifest entries (a task's few, or all of a small lake's) indexed in Python for the
    ingester's questions: by place and head (:class:`~logferry.sources.KnownIndex`), by
    content (:class:`~logferry.sources.ContentIndex`)."""

    def __init__(self, rows: list[LakeRegistered], fp_lens: Iterable[int] = ()):
        self.rows = sorted(rows, key=lambda r: r.file_id)
        self.by_id = {r.file_id: r for r in self.rows}
        self.sources = KnownIndex(r for r in self.rows if r.fp is not None)
        if fp_lens:  # (a task's few: its compressed files' heads fingerprinted as over the whole)
            self.sources.fp_lens = sorted({*self.sources.fp_lens, *fp_lens})
        self.contents = ContentIndex()  # the entries by content
        for r in self.rows:
            self.contents.add(r, r.head_bytes, r.identity, r.head_fp)

    def same_content(self, head: bytes, exclude: int | None = None) -> LakeRegistered | None:
        """The registered file whose content ``head`` starts with over the most bytes (the
        lowest file_id of those)."""
        hits = [(-n, r.file_id, r) for n, r in self.contents.matches(head) if r.file_id != exclude]
        return min(hits, key=lambda h: h[:2])[2] if hits else None


@dataclass
class ContentKeys:
    """What a task's manifest needs to know of the whole one (job-wide: 8 bytes a content
    group): the head lengths its local files are fingerprinted at, the lengths registered
    without a prefix hash, and the first 8 bytes of every content group's key (the prefix
    hashes; the identities of the entries without one) -- a head whose group is not among
    the task's entries, and not here, holds no registered content."""

    fp_lens: list[int]
    loose: frozenset[int]
    prefixes: np.ndarray  # sorted uint64
    ids: np.ndarray  # sorted uint64

    def has_prefix(self, h: str) -> bool:
        return _among(self.prefixes, h)

    def has_id(self, h: str) -> bool:
        return _among(self.ids, h)


@dataclass
class TaskRows:
    """The manifest entries a task is sent: those its files may be, and the content groups
    sent whole (by prefix hash, and, for entries without one, by identity)."""

    rows: list[LakeRegistered]
    prefixes: frozenset[str]
    ids: frozenset[str]
    whole: bool = False  # (all of the manifest: every group)


class NotSent(Exception):
    """A head whose content group the task was not sent: the driver sends the file again
    with it (``prefix``: the head's prefix hash; ``ids``: its identities at the lengths
    registered without one)."""

    def __init__(self, prefix: str, ids: list[str]):
        super().__init__(prefix, ids)  # (as it is pickled back to the driver)
        self.prefix, self.ids = prefix, ids


class TaskManifest(Entries):
    """The entries a task was sent, answering as the whole manifest would: a file's place
    and head candidates are all there; a head whose content group may hold entries not
    sent raises :class:`NotSent` (the driver sends the file again with them)."""

    def __init__(self, sent: TaskRows, content: ContentKeys):
        super().__init__(sent.rows, content.fp_lens)
        self.sent, self.content = sent, content

    def same_content(self, head: bytes, exclude: int | None = None) -> LakeRegistered | None:
        if self.sent.whole:
            return super().same_content(head, exclude)
        prefix, loose, sent = fingerprint(head[:PREFIX_BYTES]), self.content.loose, self.sent
        lengths = set(loose)
        if prefix in sent.prefixes:
            lengths |= self.contents.lengths.get(prefix, set())
        elif self.content.has_prefix(prefix):
            raise NotSent(prefix, list(identities(head, [n for n in loose if n <= IDENTITY_BYTES]).values()))
        ids = identities(head, [n for n in lengths if n <= IDENTITY_BYTES])
        for n in sorted(ids, reverse=True):
            if n in loose and ids[n] not in sent.ids and self.content.has_id(ids[n]):
                raise NotSent(prefix, [ids[k] for k in ids if k in loose])
            hits = [r for r in self.contents.at.get((n, ids[n]), ()) if r.file_id != exclude]
            if hits:
                return hits[0]  # (the lowest file_id: the rows are in file_id order)
        return None


class Manifest:
    """A snapshot of the lake's manifest on the driver: its :data:`PLAN_COLUMNS` as one
    Arrow table (its :data:`DIGESTS` as their bytes, or as hex text where one of them is
    not a digest), asked with Arrow filters (:meth:`for_files`); only the
    entries picked become :class:`LakeRegistered`.  ``tails``: the rows stored at the last
    line of each file whose last line had no end yet (file_id -> (records, bad rows))."""

    def __init__(self, table: pa.Table, tails: dict[int, tuple[int, int]] | None = None):
        self.table = table
        self.tails = tails or {}
        t = self.table
        self._has_fp = pc.is_valid(t["fp"])
        # content groups (sources.content_group): the prefix hash of a head of PREFIX_BYTES
        # or more; the others (smaller, or registered before the hash was kept) by identity
        self._grouped = pc.fill_null(pc.and_(pc.greater_equal(t["head_bytes"], PREFIX_BYTES),
                                             pc.is_valid(t["head_fp"])), False)
        local = pc.and_(self._has_fp, pc.and_(pc.is_valid(t["dev"]), pc.is_valid(t["fp_len"])))
        self.fp_lens = sorted(pc.unique(t["fp_len"].filter(local)).to_pylist())
        self._content: ContentKeys | None = None

    def file_ids(self) -> pa.Array:
        return self.table["file_id"].combine_chunks()

    def entries(self, mask: Any = None) -> list[LakeRegistered]:
        """The entries where ``mask`` holds (None: all), as the ingester's objects."""
        t = self.table if mask is None else self.table.filter(mask)
        cols = t.to_pydict()
        for name in DIGESTS:
            cols[name] = hex_list(t[name])
        out = []
        for vals in zip(*cols.values(), strict=True):
            reg = LakeRegistered(**dict(zip(t.column_names, vals, strict=True)))
            reg.reads = reg.reads or []
            reg.header, reg.title = bytes(reg.header or b""), bytes(reg.title or b"")
            reg.last_line_rows = self.tails.get(reg.file_id, (0, 0))
            out.append(reg)
        return out

    def whole(self) -> TaskRows:
        """Every entry (a task's last resort: its heads' groups changed between two sends)."""
        return TaskRows(self.entries(), frozenset(), frozenset(), whole=True)

    def content_keys(self) -> ContentKeys:
        """What every task needs of the whole manifest to answer as it would (job-wide;
        made once a run)."""
        if self._content is None:
            t, grouped = self.table, self._grouped
            loose = pc.invert(grouped)
            self._content = ContentKeys(
                list(self.fp_lens), frozenset(pc.unique(t["head_bytes"].filter(loose)).to_pylist()),
                _hex_keys(t["head_fp"], grouped), _hex_keys(t["identity"], loose))
        return self._content

    def for_files(self, files: list[SourceFile], prefixes: Iterable[str] = (),
                  ids: Iterable[str] = ()) -> TaskRows:
        """The entries ``files`` may be (by place, by head: as
        :meth:`~logferry.sources.KnownIndex.near` looks them up; by inode alone, a few more)
        and every entry of the content groups their heads are likely to fall in (a plain
        file's first :data:`PREFIX_BYTES` are its source fingerprint), with ``prefixes``
        and ``ids``: the groups a task found missing."""
        prefixes, ids = set(prefixes), set(ids)
        paths, fps, inos = set(), set(), set()
        for sf in files:
            paths.add(sf.path)
            fps.add(sf.fp)
            fps.update(head_fingerprints(sf, self.fp_lens))
            if not sf.remote and sf.dev is not None:
                inos.add(sf.ino)
            if sf.fp_len >= PREFIX_BYTES:
                prefixes.add(sf.fp)
            ids.add(sf.fp)
        t = self.table
        place = _any(_in(t["path"], paths), _in(t["fp"], fps),
                     pc.and_(_in(t["ino"], inos), pc.is_valid(t["dev"])))
        group = _any(pc.and_(self._grouped, _in(t["head_fp"], prefixes)),
                     pc.and_(pc.invert(self._grouped), _in(t["identity"], ids)))
        mask = pc.fill_null(_any(pc.and_(self._has_fp, place), group), False)
        return TaskRows(self.entries(mask), frozenset(prefixes), frozenset(ids))


def _in(col: pa.ChunkedArray, values: set[Any]) -> pa.ChunkedArray:
    """Where ``col`` holds one of ``values`` (a digest column held as bytes: asked by the
    bytes of the values that are digests -- no other value can be there)."""
    values = sorted(v for v in values if v is not None)
    if col.type == DIGEST:
        values = [bytes.fromhex(v) for v in values if _HEX64.fullmatch(v)]
    return pc.fill_null(pc.is_in(col, value_set=pa.array(values, col.type)), False)


def _any(*masks: Any) -> Any:
    out = masks[0]
    for m in masks[1:]:
        out = pc.or_(out, m)
    return out


#: a lowercase hex digit's value, by its ASCII code
_NIBBLE = np.zeros(256, np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
_HEX64 = re.compile("[0-9a-f]{64}")


class NotDigests(ValueError):
    """A digest column holds a value that is not 64 lowercase hex digits (not logferry's)."""


def with_digest_bytes(read: Callable[..., pa.Table]) -> pa.Table:
    """The manifest's rows as ``read`` (:func:`~logferry.lake.tables.manifest_arrow` with
    its arguments) reads them, the digests as their bytes -- or as text, where one is not
    a digest."""
    try:
        return read(each=digests_as_bytes)
    except NotDigests:
        return read()


def hex_list(col: pa.ChunkedArray | pa.Array) -> list[str | None]:
    """A digest column's values as hex text (held as bytes or as text)."""
    if col.type == DIGEST:
        return [None if v is None else v.hex() for v in col.to_pylist()]
    return col.to_pylist()


def digests_as_bytes(t: pa.Table) -> pa.Table:
    """``t`` (a data file of the manifest) with its :data:`DIGESTS` columns as their 32
    bytes (each column's digits checked and decoded at once); :class:`NotDigests` where a
    value is not 64 lowercase hex digits."""
    for name in DIGESTS:
        i = t.schema.get_field_index(name)
        if i >= 0 and t.schema.field(i).type != DIGEST:
            t = t.set_column(i, name, pa.chunked_array([_bytes_of(c) for c in t.column(i).chunks], DIGEST))
    return t


def _bytes_of(col: pa.Array) -> pa.Array:
    valid = col.is_valid()
    text = col.filter(valid).cast(pa.large_binary())
    offsets = np.frombuffer(text.buffers()[1], np.int64, len(text) + 1, 8 * text.offset)
    digits = text.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]] if len(text) else b""
    if np.any(np.diff(offsets) != 64) or digits.translate(None, b"0123456789abcdef"):
        raise NotDigests(col.type)
    got = pa.FixedSizeBinaryArray.from_buffers(DIGEST, len(text), [None, pa.py_buffer(binascii.unhexlify(digits))])
    if len(text) == len(col):
        return got
    at = pc.subtract(pc.cumulative_sum(pc.cast(valid, pa.int64())), 1)  # (each value's place among the valid)
    return got.take(pc.if_else(valid, at, pa.scalar(None, pa.int64())))


def _hex_keys(col: pa.ChunkedArray, where: Any = None) -> np.ndarray:
    """The sorted distinct first 8 bytes (16 hex digits: :func:`_key`) of the digests in
    ``col`` (where ``where`` holds; as bytes, or hex digits: each pair a byte), each 8
    bytes a big-endian integer, a chunk at a time (a million digests: 8 MB of keys; the
    digests themselves are not copied)."""
    valid = pc.is_valid(col) if where is None else pc.and_(where, pc.is_valid(col))
    parts = [np.empty(0, np.uint64)]
    at = 0
    for chunk in col.chunks:
        part = chunk.filter(valid.slice(at, len(chunk)).combine_chunks())
        at += len(chunk)
        if len(part) == 0:
            continue
        if col.type == DIGEST:
            raw = np.frombuffer(part.buffers()[1], np.uint8, 32 * len(part), 32 * part.offset).reshape(-1, 32)[:, :8]
        else:
            head = pc.utf8_slice_codeunits(part, 0, 16).cast(pa.binary()).cast(pa.binary(16))
            nib = _NIBBLE[np.frombuffer(head.buffers()[1], np.uint8, 16 * len(head), 16 * head.offset).reshape(-1, 16)]
            raw = (nib[:, 0::2] << 4) | nib[:, 1::2]
        parts.append(np.ascontiguousarray(raw).view(">u8").ravel().astype(np.uint64))
    keys = np.concatenate(parts)
    if len(keys) == 0:
        return keys
    keys.sort()  # (then the distinct ones: np.unique took 40 times the sort's time on a million)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))]


def _key(h: str) -> int:
    """A hex digest's first 8 bytes."""
    return int(h[:16], 16)


def _among(keys: np.ndarray, h: str) -> bool:
    k = np.uint64(_key(h))
    i = int(np.searchsorted(keys, k))
    return i < len(keys) and keys[i] == k
