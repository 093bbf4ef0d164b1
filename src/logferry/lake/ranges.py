"""One large file, many workers: an uncompressed file, local or in object storage, read
in byte ranges.

    driver: the file's line-aligned range starts (``logferry.parallel``'s cuts)
    -> workers: each range's lines and directive lines counted (``scan_range``)
    -> driver: each range's first line number and every directive line before it
    -> workers: each range read as a read of its own (``read_range``: the ingester resuming
       at the range's start, as for a grown file, and stopping at its end)
    -> driver: the ranges checked to meet line for line and merged into ONE manifest entry
       whose ``reads`` lists every range's read (``merge``), committed as one read would be

A range's rows count only once the file's manifest entry lists its read, so a file's rows
become visible together, and a run killed before leaves the file unregistered: the next run
reads it again under new read ids (exactly as for a file read whole).  Ranges that do not
meet exactly (a line counted differently, a range that failed) are not committed at all:
their data files are deleted and the file is read whole by one task.

On a cluster of two worker threads or more, files at least :data:`RANGE_BYTES` long are
split (``LOGFERRY_LAKE_RANGE_BYTES`` or the ``range_bytes`` argument), one range per
:data:`RANGE_BYTES`: a new file, or one the manifest knows that grew by that much since
(:func:`resumed`: range 0 is the read on from its checkpoint, the others replay its header
and every directive since, and number lines as that read does); a file known otherwise
(moved, the same content, grown by less) is read on in one task, as before.

An object in storage (any fsspec URL of the source layer: ``s3://``, ``gs://``...) is
never fetched whole by a range: the driver reads the ends of the blocks it cuts at, and
each task one ranged request per read of its own range (:func:`open_at`: no read-ahead).
Its version -- (size, modification time, ETag or generation) -- is taken once, by the
driver when it plans the file (:func:`version_of`; one that no longer matches the listing
is read whole).  Every task checks it when it opens the object and again after its read
(:func:`check_version`); on S3, s3fs also sends it as If-Match with every ranged GET, so a
read of a replaced object fails at once.  A version that changed makes the range fail, and
the file is read whole by one task (as it is by then).  A local file is read as the file
listed (its device and inode): one whose name another file took since is read whole too.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import InputError
from ..sources import (
    SourceFile,
    _collect_directives,
    _remote_fs,
    count_newlines,
    object_version,
    open_regular,
    replayed_title,
    stat_file,
)
from ..usage.results import FileResult
from ..values import whole
from .manifest import LakeRegistered, Manifest, NotSent, TaskManifest, TaskRows
from .store import LakeWriter, Pending
from .tables import NAMESPACE

#: a reader's reason naming a directive's line (W3C: "... the #Fields directive at line N ...",
#: CloudFront: "... (#Fields at line N names ...)")
_DIRECTIVE_AT = re.compile(r"(?:directive|#Fields) at line (\d+)")
#: the most bytes of directive lines replayed at a range's start (more: the file is read whole)
_MAX_HEADER = 1 << 20
#: bytes per range of a large file (and the least size split): a range is a Dask task
#: that reads and writes for some seconds, and the driver's per-range work (one read in
#: the manifest entry) stays small even for a file of tens of GB
RANGE_BYTES = 64 << 20


def range_bytes(value: int | None = None) -> int:
    """The range size: ``value``, else ``LOGFERRY_LAKE_RANGE_BYTES`` (ConfigError: not a whole
    number of bytes above 0), else the default."""
    if value is None:
        value = whole(os.environ.get("LOGFERRY_LAKE_RANGE_BYTES") or RANGE_BYTES, "LOGFERRY_LAKE_RANGE_BYTES", 1)
    return max(1, value)


@dataclass
class Span:
    """A range of a file: bytes ``start`` to ``end`` (None: to the end), lines after
    ``line``, read with the directive ``header`` and the file's ``title`` replayed.

    A reader numbers lines from the first it is given; the one read the ranges stand for
    numbers them as the file does (a new file), or as a read resuming after line ``L`` with
    ``P`` lines replayed does (a grown file: file line ``n`` is its ``n - L + P``, ``shift``):
    ``header_lines`` are the header's lines in that numbering.  ``resume``: range 0 of a
    grown file, (its manifest entry, how the file matched it): read on as one read would."""

    start: int
    end: int | None
    line: int = 0
    header: bytes = b""
    title: bytes = b""
    header_lines: list[int] = dataclasses.field(default_factory=list)
    shift: int = 0
    resume: tuple[LakeRegistered, str] | None = None

    def relabel(self, reason: str) -> str:
        """A bad row's reason with the directive line it names numbered as the one read
        would (this range's reader numbers the replayed title and header first, then the
        range's lines)."""
        replayed = ([1] if replayed_title(self.title) else []) + self.header_lines

        def real(m: re.Match) -> str:
            n = int(m.group(1))
            return m.group(0)[: -len(m.group(1))] + str(
                replayed[n - 1] if n <= len(replayed) else n - len(replayed) + self.line + self.shift)

        return _DIRECTIVE_AT.sub(real, reason)


class _Bounded(io.RawIOBase):
    """The open file ``f`` from byte ``start`` on, as if it ended at byte ``end``
    (seekable; no ``fileno``, so the reader does not read past ``end`` by its own means;
    the reader's first look, for a codec's magic, is at ``start``: an object's range is
    all that is fetched)."""

    def __init__(self, f: BinaryIO, start: int, end: int | None):
        self._f = f
        self._end = end
        f.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, b) -> int:
        n = len(b)
        if self._end is not None:
            n = max(0, min(n, self._end - self._f.tell()))
        return self._f.readinto(memoryview(b)[:n]) if n else 0

    def close(self) -> None:
        self._f.close()
        super().close()


#: an object's (size, modification time, version tag) as the driver saw it
#: (:func:`~logferry.sources.object_version`); None for a local file
Version = tuple[int, float, str | None] | None


def version_of(sf: SourceFile) -> Version:
    """``sf``'s version now: asked of its store (no listing cache) for an object, None
    for a local file."""
    if not sf.remote:
        return None
    fs, p, _ = _remote_fs(sf.path)
    return object_version(fs.info(p))


def check_version(sf: SourceFile, version: Version, info: dict[str, Any] | None = None) -> None:
    """Raise OSError unless ``sf`` (described by ``info`` when given) is still ``version``."""
    if sf.remote and (version_of(sf) if info is None else object_version(info)) != version:
        raise OSError(f"{sf.path}: the object changed while it was read in ranges")


def open_at(sf: SourceFile, version: Version) -> BinaryIO:
    """``sf`` opened for reads anywhere in it, unbuffered: a local file -- the one listed
    (refused, OSError, if another file took its name since: its head was read as the
    listed one's) --, or an object whose every read is one ranged request (no read-ahead
    past what is asked) of ``version`` (refused, OSError, if it is no longer that version;
    on S3, s3fs then asks every read for that ETag -- If-Match --, so a later write fails
    the read)."""
    if not sf.remote:
        f = open_regular(sf.path).detach()  # (the raw file: no read-ahead)
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) != (sf.dev, sf.ino):
            f.close()
            raise OSError(f"{sf.path}: another file took its name while it was read in ranges")
        return f
    fs, p, _ = _remote_fs(sf.path)
    f = fs.open(p, "rb", cache_type="none")
    try:
        check_version(sf, version, getattr(f, "details", None))
    except BaseException:
        f.close()
        raise
    return f


def now(sf: SourceFile) -> SourceFile:
    """``sf`` for the one task that reads it whole when its ranges could not be: a local
    file as it is now (another file may have taken its name: then it is that file that is
    read, as a file of its own), an object as listed (its read takes its head again)."""
    if sf.remote:
        return sf
    try:
        return stat_file(sf.path) or sf
    except InputError:  # (no regular file now, no permission: the read says so)
        return sf


def threads_of(client: Any) -> int:
    """The worker threads of the Dask ``client``'s cluster (ranges need two or more)."""
    return sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())


def worker_cores() -> int | None:
    """The threads of the Dask worker running this task (None: not on a worker): the
    cores its ingester may use, so that N one-thread workers keep to N cores."""
    if "distributed" not in sys.modules:  # (not on a worker: nor import Dask to find out)
        return None
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError):  # (not on a worker)
        return None


def plan(job: Any, known: Manifest, sf: SourceFile, size: int) -> tuple[str, bytes, Version, Span] | None:
    """(format, head, version, range 0) when ``sf`` is to be read in ranges: an
    uncompressed file (local or an object) of at least ``size`` bytes the manifest does not
    know (by path or by content), or one it knows that grew by ``size`` bytes or more
    (:func:`resumed`).  An object's version is taken here, once: every range reads it."""
    from ..reader import detect_head, open_input
    from ..usage.ingester import Ingester

    if sf.compressed or sf.size is None or sf.size < size:
        return None
    writer = _asking(known, known.for_files([sf]))  # (the driver's: the entries sf may be)
    try:
        reg, how = Ingester(writer).identify(sf)
        first = Span(0, None) if reg is None else resumed(reg, how, sf, size)
        if first is None:
            return None
        version = version_of(sf)  # (a listing may give a time finer than the object's own)
        if version is not None and (version[0], int(version[1])) != (sf.size, int(sf.mtime)):
            return None  # (changed since it was listed: read whole, as listed)
        if reg is not None:
            return (reg.format, b"", version, first) if reg.format else None
        stream, head, codec = open_input(open_at(sf, version))
        stream.close()
        if codec is not None:
            return None
        try:
            same = writer.find_by_content(head)
        except NotSent as e:  # (a small registered file's content group: it may start with one)
            same = _asking(known, known.for_files([sf], {e.prefix}, e.ids)).find_by_content(head)
        if same is not None:
            return None
        return job.format or detect_head(head, sf.path, codec).format, head, version, first
    except Exception:  # noqa: BLE001 - (read whole: the file's error, if any, is its result as before)
        return None


def _asking(known: Manifest, sent: TaskRows) -> LakeWriter:
    """A writer that only answers questions, on the entries ``sent``."""
    return LakeWriter(TaskManifest(sent, known.content_keys()), None, "")


def resumed(reg: LakeRegistered, how: str, sf: SourceFile, size: int) -> Span | None:
    """Range 0 of ``sf``, which the manifest knows as ``reg`` and which grew by ``size``
    bytes or more since: from its checkpoint (its anchor, where the read on starts), with
    the header and title that read replays; None when it is read on in one task (renamed
    or copied, or its anchor is not at its last line)."""
    start = reg.lines - 1 if reg.partial_tail and reg.lines else reg.lines
    if (how != "same" or not start or reg.anchor_line != start or reg.truncated_at is not None
            or sf.size - reg.anchor_off < size or (reg.header and not reg.header.endswith(b"\n"))):
        return None
    title = reg.title or b""
    before = 1 if replayed_title(title) else 0
    shown = before + reg.header.count(b"\n")  # (the lines that read replays: title, header)
    return Span(reg.anchor_off, None, start, reg.header, title, list(range(before + 1, shown + 1)),
                shown - start, (reg, how))


def starts(sf: SourceFile, version: Version, origin: int, block: int) -> list[int]:
    """The first bytes of the ranges from byte ``origin`` on: the single reader's cuts
    (``logferry.parallel``; an object's block ends fetched by ranged reads), empty ranges
    (no line ends in their block) dropped."""
    from ..parallel import _range_start

    with open_at(sf, version) as f:

        def pread(n: int, off: int) -> bytes:
            f.seek(off)
            return f.read(n)

        cuts = [_range_start(pread, origin, k, block)
                for k in range(max(1, -(-(sf.size - origin) // block)))]
    return sorted(set(cuts))


def scan_range(sf: SourceFile, version: Version, start: int, end: int
               ) -> tuple[int, list[tuple[int, bytes]], bytes] | None:
    """A worker's task: the line feeds in bytes ``start``..``end`` (whole lines, one
    ranged read of an object), its directive lines (numbered from 1 in the range) and
    its first line; None when they cannot be read as ``version`` (the file is read whole)."""
    try:
        with open_at(sf, version) as f:
            f.seek(start)
            data = f.read(end - start)
        check_version(sf, version)
    except Exception:  # noqa: BLE001 - (gone, changed, unreadable: read whole, its error its result)
        return None
    if len(data) != end - start:
        return None
    found: list[tuple[int, bytes]] = []
    _collect_directives(data, 0, found, b"")
    return count_newlines(data), found, data[: data.find(b"\n") + 1]


def spans(cuts: list[int], scans: list[tuple[int, list[tuple[int, bytes]], bytes]],
          first: Span) -> list[Span]:
    """Each range with its first line number and every directive line before it (since
    range 0's start, after what range 0 replays), replayed as its header: the reader then
    knows all earlier ``#Fields`` (which W3C lines that no longer match the current one are
    matched against) with the dates in force at each, as the one read would (``scans``:
    :func:`scan_range` of every range but the last; ``first``: range 0 as planned)."""
    title = first.title if first.resume is not None else scans[0][2] if scans else b""
    out = [dataclasses.replace(first, start=cuts[0], end=cuts[1] if len(cuts) > 1 else None)]
    line, seen = first.line, []
    for k, (count, found, _first) in enumerate(scans, 1):
        seen.extend((line + n, text) for n, text in found)
        line += count
        out.append(Span(cuts[k], cuts[k + 1] if k + 1 < len(cuts) else None, line,
                        first.header + b"".join(t for _, t in seen), title,
                        first.header_lines + [n + first.shift for n, _ in seen], first.shift))
    return out


def read_range(job: Any, sf: SourceFile, fmt: str, head: bytes, version: Version,
               span: Span) -> Pending | FileResult:
    """A worker's task: range ``span`` of ``sf`` (``version`` of an object, read by ranged
    reads up to the span's end) into data files, as a read of its own."""
    from pyiceberg.io import load_file_io

    from ..errors import LogferryError
    from ..usage.ingester import Ingester

    reg, how = span.resume or (None, "new")  # (range 0: a new file's read, or a grown one's)
    if reg is None and span.line:  # (the others resume as a grown file's read, at their start)
        reg = LakeRegistered(0, "", 0, sf.path, fmt, sf.size, span.start, span.line, 0, 0, 0, 0, False,
                             sf.dev, sf.ino, None, None, None, span.line, span.start, span.header,
                             span.title, None)
    io_ = load_file_io(job.io_props, job.warehouse)
    writer = LakeWriter([reg] if reg else [], io_, f"{job.warehouse}/{NAMESPACE}")
    if reg is not None and span.resume is None:
        writer.relabel = span.relabel
    ing = Ingester(writer, format=fmt, options=job.options, cores=worker_cores())
    try:
        res = ing._load(sf, fmt, None, reg, head=head, how=how,
                        raw=_Bounded(open_at(sf, version), span.start, span.end))
        check_version(sf, version)  # (read as one version: else the file is read whole)
    except Exception as e:
        msg = str(e) if isinstance(e, LogferryError) else f"{type(e).__name__}: {e}"
        return FileResult(sf.path, "error", format=fmt, message=msg)
    if not writer.done:
        return FileResult(sf.path, "error", format=fmt, message=f"bytes {span.start}-: {res.message}")
    writer.done[-1].result = res
    return writer.done[-1]


def merge(sf: SourceFile, fmt: str, parts: list[Pending | FileResult], at: list[Span]) -> Pending | FileResult:
    """The ranges' reads as one read to commit: one manifest entry listing each range's
    read; a FileResult (an error, nothing to commit) unless they meet line for line."""
    bad = next((p for p in parts if not isinstance(p, Pending)), None)
    if bad is not None:
        return bad
    for k, p in enumerate(parts):
        m, nxt = p.mark, at[k + 1].line if k + 1 < len(at) else None
        if (m is None or p.first_line != at[k].line + 1 or m.error is not None
                or (nxt is not None and (m.lines != nxt or m.partial_tail))):
            return FileResult(sf.path, "error", format=fmt,
                              message=f"the range at byte {at[k].start} did not end where the next begins")
    marks = [p.mark for p in parts]
    first_ts = [m.first_ts for m in marks if m.first_ts is not None]
    last_ts = [m.last_ts for m in marks if m.last_ts is not None]
    m = dataclasses.replace(
        marks[-1], grown=marks[0].grown, first_ts=min(first_ts, default=None), last_ts=max(last_ts, default=None),
        **{f: sum(getattr(x, f) for x in marks)
           for f in ("records", "bad_rows", "directives", "blank", "conversion_errors")})
    data: dict[str, list[str]] = {}
    for p in parts:
        for table, paths in p.data.items():
            data.setdefault(table, []).extend(paths)
    first, last = parts[0], parts[-1]
    res = FileResult(sf.path, first.result.status, None, fmt,  # (new, or grown: its new lines)
                     **{f: sum(getattr(p.result, f) for p in parts)
                        for f in ("lines", "records", "bad_rows", "orders")})
    return Pending(sf.path, last.read_id, last.first_line, first.base, first.entry, m, data,
                   clip_line=first.clip_line, result=res,
                   ranges=[{"read_id": p.read_id, "first_line": p.first_line, "last_line": p.mark.lines}
                           for p in parts[:-1]])


def submit(client: Any, job: Any, sf: SourceFile, fmt: str, head: bytes, version: Version,
           first: Span, block: int) -> Any:
    """Scan and read ``sf`` in ranges on the cluster; the futures of its range reads and
    the spans (the scans are waited for: they give each range its line numbers), or None
    when it is to be read whole after all."""
    try:
        cuts = starts(sf, version, first.start, block)
    except Exception:  # noqa: BLE001 - (gone or changed since planned: read whole)
        return None
    scans = client.gather([client.submit(scan_range, sf, version, a, b, pure=False)
                           for a, b in itertools.pairwise(cuts)])
    if any(s is None for s in scans) or len(first.header) + sum(
            len(t) for _n, found, _f in scans for _l, t in found) > _MAX_HEADER:
        return None  # (a range unreadable as planned, or directives everywhere: read whole)
    at = spans(cuts, scans, first)
    return [client.submit(read_range, job, sf, fmt, head, version, s, pure=False) for s in at], at
