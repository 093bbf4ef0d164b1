"""Inputs of a shipping job: expand paths/globs/URLs, identify files, read on from a checkpoint.

A file's identity is (device, inode, head fingerprint) locally and (path, head
fingerprint) on object stores: a renamed/rotated file keeps its identity (and its
checkpoint), a file whose head changed (truncated and rewritten, inode reused) is new.
The fingerprint is the SHA-256 of the first ``FP_BYTES`` bytes (fewer while the file is
smaller; it is recomputed over the stored length to compare).

Checkpoints are line numbers in the decompressed file plus an *anchor* (a byte offset
known to start a line, with its line number) so a growing plain file is read on with a
seek rather than from the start, and the directive lines (W3C ``#Fields`` ...) in force
at the checkpoint, which are put in front of the remainder so the reader can parse it.

This is the one source layer of shipping (``ship/engine``), ``ingest`` and following
(``usage/follow``): :func:`expand` finds files (refusing credentials in URLs),
:func:`match_files` recognises known files and their rotation (rename, copytruncate,
compression of the rotated file, an object store's copy + delete), :func:`find_moved`
finds where a followed file was rotated to, :func:`content_identity` says whether two
files hold the same log (the usage database's ``files.identity``), and :func:`open_from`
reads on after a checkpoint.
"""

from __future__ import annotations

import bisect
import glob
import hashlib
import io
import os
import re
import stat
import time
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .errors import InputError

FP_BYTES = 1024
#: decompressed bytes whose hash is a file's content identity (the usage database's
#: ``files.identity``): the same log under another name, path or compression
IDENTITY_BYTES = 64 << 10
#: decompressed bytes whose hash (``files.head_fp``) narrows which registered files a head
#: may hold the same content as: only those with the same first bytes (or registered
#: smaller than this) are hashed at their length (a bucket of small logs has registered
#: thousands of lengths)
PREFIX_BYTES = 1024
#: formats whose first line is a title line that applies to the whole file
TITLE_FORMATS = frozenset({"csv-usage", "csv"})


@dataclass
class SourceFile:
    path: str  # local path or URL
    size: int
    mtime: float
    dev: int | None
    ino: int | None
    fp: str
    fp_len: int
    remote: bool = False
    compressed: bool = False  # gzip/zstd/bz2/xz magic: possibly a rotated-then-compressed log


def fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


def content_fingerprint(path: str, length: int) -> str | None:
    """Fingerprint of the first ``length`` *decompressed* bytes of a local compressed file
    (None when that many bytes cannot be read): how ``access.log`` is recognised after
    logrotate renamed and compressed it to ``access.log.1.gz`` (new inode, new bytes)."""
    head = decompressed_head(path, length)
    return fingerprint(head) if head is not None and len(head) == length else None


def decompressed_head(path: str, length: int) -> bytes | None:
    """Up to ``length`` decompressed bytes of a local compressed file (None when it is
    not compressed or cannot be read)."""
    from .compression import open_decompressed

    try:
        with open_regular(path) as raw:
            stream, codec = open_decompressed(raw)
            return stream.read(length) if codec else None
    except Exception:  # noqa: BLE001 - every codec has its own error (IsalError, LZMAError, ZstdError): not readable
        return None


def refresh(sf: SourceFile, f: BinaryIO) -> SourceFile:
    """``sf`` as the open local file ``f`` is now (size, time, head fingerprint, whether
    compressed): a file listed a moment ago may have grown since (or been written whole, a
    compressor's output listed empty), and its identity is what was read."""
    import dataclasses

    from .compression import sniff

    st = os.fstat(f.fileno())
    head = os.pread(f.fileno(), FP_BYTES, 0)
    return dataclasses.replace(sf, size=st.st_size, mtime=st.st_mtime, dev=st.st_dev, ino=st.st_ino,
                               fp=fingerprint(head), fp_len=len(head), compressed=sniff(head) is not None)


class NotRegularError(InputError):
    """A local path that is no regular file (a FIFO, a device, a socket): reading it could
    wait forever (a FIFO's open waits for a writer, its reads for data), so it is skipped."""


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _check_regular(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise NotRegularError(f"{path}: not a regular file ({kind}), skipped")


def open_regular(path: str) -> BinaryIO:
    """A local file opened for reading; anything but a regular file is refused
    (:class:`NotRegularError`) without blocking, even when the path is replaced by a FIFO
    between a listing and the open.  OS errors (missing, permission) are raised as they are."""
    _check_regular(path, os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _check_regular(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def fingerprint_of(path: str, length: int, remote: bool = False) -> str:
    with _open_raw(path, remote) as f:
        return fingerprint(f.read(length))


def _open_raw(path: str, remote: bool) -> BinaryIO:
    if remote:
        fs, p, _ = _remote_fs(path)
        return fs.open(p, "rb")
    return open_regular(path)


class NoMatchError(InputError):
    """A glob that had to match something matched nothing."""


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


def redact_url(url: str) -> str:
    """``url`` with the password of its user part (if any) replaced by ``***``."""
    m = _USERINFO.match(url)
    if not m or ":" not in m.group(2):
        return url
    user = m.group(2).split(":", 1)[0]
    return f"{m.group(1)}{user}:***@{url[m.end():]}"


def check_source(url: str, *, folders: bool = True) -> str:
    """Refuse a source URL that carries a password (it would end up stored and printed:
    ``files.path``, summaries, reports), and with ``folders`` False a local folder named
    as such (what reads it takes files and globs: it would read nothing, and say
    nothing).  Returns ``url``."""
    if not folders:
        _check_not_folder(url)
    m = _USERINFO.match(url)
    if m and ":" in m.group(2):
        raise InputError(
            f"source {redact_url(url)}: a password in a source URL is not allowed (it would be "
            f"stored and printed); use an SSH key or agent for sftp://, the AWS or Google "
            f"environment for s3:// and gs://"
        )
    return url


def _check_not_folder(pat: str) -> None:
    path = os.path.expanduser(pat.removeprefix("file://"))
    if "://" not in path and not glob.has_magic(path) and os.path.isdir(path):
        raise InputError(f"{pat}: is a folder; name its files or a glob, e.g. "
                         f"'{os.path.join(pat, '*.log')}'")


def expand(patterns: Iterable[str], known: dict[str, tuple[int, float, str, int]] | None = None,
           *, folders: bool = False, must_match: bool = False, sort: bool = True,
           errors: list[tuple[str, str]] | None = None,
           cache: dict[str, tuple[SourceFile, int, float]] | None = None) -> list[SourceFile]:
    """Every file matching ``patterns`` (local globs, ``file://``, or fsspec URLs with
    globs: ``s3://bucket/logs/*.gz``), sorted by (mtime, path) (with ``sort=False``: in
    the order of the patterns, each one's matches by name).

    ``known`` maps a remote object's URL to the (size, mtime, fingerprint, fingerprint
    length) recorded for it: an object listed with the same size and modification time
    is not read again (object stores replace objects whole, so it is unchanged).

    ``folders``: a folder stands for every file under it (recursively, hidden ones
    left out); otherwise folders are skipped.  ``must_match``: a glob that matches
    nothing is an error.  ``errors``: when given, a pattern that cannot be expanded (a
    missing file, permission denied) is recorded there as (pattern, message) and the
    others go on; otherwise it raises :class:`InputError`.  A local path that is no
    regular file (a FIFO, a device, a socket: reading it could block forever) is skipped:
    named alone it is such an error, matched by a glob or found in a folder it is recorded
    in ``errors`` (when given) and left out.  A URL with a password is always refused
    (:func:`check_source`).  ``cache``: the local files these patterns listed before (by
    path, kept up to date here: the files gone are dropped), not opened again while they stay
    as they were (:func:`stat_cached`)."""
    out: dict[str, SourceFile] = {}
    for pat in patterns:
        pat = os.fspath(pat)
        check_source(pat)
        skipped: list[tuple[str, str]] = []
        try:
            found = _expand_one(pat, known or {}, folders, must_match, skipped, cache)
        except InputError as e:
            if errors is None or isinstance(e, NoMatchError):
                raise
            errors.append((pat, str(e)))
            continue
        if errors is not None:
            errors.extend(skipped)
        for sf in found:
            out.setdefault(sf.path, sf)
    if cache is not None:
        for gone in [p for p in cache if p not in out]:
            del cache[gone]
    if sort:
        return sorted(out.values(), key=lambda s: (s.mtime, s.path))
    return list(out.values())


def _expand_one(pat: str, known, folders: bool, must_match: bool,
                skipped: list[tuple[str, str]], cache: dict[str, tuple[SourceFile, int, float]] | None = None
                ) -> list[SourceFile]:
    if pat.startswith("file://"):
        pat = pat[len("file://"):]
    if "://" in pat:
        return _expand_remote(pat, known, folders, must_match)
    pat = os.path.expanduser(pat)
    if glob.has_magic(pat):
        matches = sorted(glob.glob(pat, recursive=True))
        if must_match and not any(os.path.isfile(m) for m in matches):
            raise NoMatchError(f"{pat}: no file matches")
    elif os.path.isdir(pat):
        if not folders:
            _check_not_folder(pat)
        matches = []  # (os.walk lists FIFOs, devices and sockets with the files)
        for root, dirs, files in os.walk(pat):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            matches += [os.path.join(root, f) for f in sorted(files) if not f.startswith(".")]
    else:
        matches = [pat]
    res = []
    for m in matches:
        try:
            st: os.stat_result | None = os.stat(m)
        except OSError:
            st = None  # (stat_file says what)
        if st is not None and stat.S_ISDIR(st.st_mode):
            continue
        try:
            sf = stat_file(m) if cache is None else stat_cached(m, cache, st)
        except NotRegularError as e:
            if m == pat:
                raise
            skipped.append((m, str(e)))
            continue
        if sf is None:
            if not glob.has_magic(pat):
                raise InputError(f"{m}: no such file")
            continue
        res.append(sf)
    return res


def stat_file(path: str) -> SourceFile | None:
    """The :class:`SourceFile` of a local file as it is now (None when it is gone;
    :class:`NotRegularError` when it is no regular file)."""
    try:
        with open_regular(path) as f:
            st = os.fstat(f.fileno())
            head = f.read(min(st.st_size, FP_BYTES))
    except PermissionError as e:
        raise InputError(f"{path}: permission denied") from e
    except FileNotFoundError:
        return None
    from .compression import sniff

    p = os.path.abspath(path)
    return SourceFile(p, st.st_size, st.st_mtime, st.st_dev, st.st_ino, fingerprint(head),
                      len(head), compressed=sniff(head) is not None)


#: a file whose inode changed (ctime) less than this long ago is opened again, whatever its
#: size and time say: a file rewritten in place within a coarse clock tick keeps both
SETTLED_SECS = 3.0


def stat_cached(path: str, cache: dict[str, tuple[SourceFile, int, float]], st: os.stat_result | None = None
                ) -> SourceFile | None:
    """:func:`stat_file`, unless ``cache`` holds ``path`` as it still is (the same inode,
    size, modification and change times as when it was read, its change settled for
    :data:`SETTLED_SECS` by then): a follower of a folder of thousands of logs would
    otherwise open and hash every one of them at every poll.
    ``st``: the path's ``os.stat`` just taken."""
    key = os.path.abspath(path)  # (as the SourceFile names it: expand drops the keys it did not list)
    hit = cache.get(key)
    if hit is not None and st is not None:
        # (the same ctime as when it was read, then settled already: a rewrite since, its time
        # put back, has a later one however long ago it was made)
        old, ctime, read_at = hit
        if (stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino, st.st_size, st.st_mtime, st.st_ctime_ns)
                == (old.dev, old.ino, old.size, old.mtime, ctime) and read_at - st.st_ctime >= SETTLED_SECS):
            return old
    read_at = time.time()
    sf = stat_file(path)
    if sf is None or st is None:
        cache.pop(key, None)
    else:
        cache[key] = (sf, st.st_ctime_ns, read_at)
    return sf


def _remote_fs(url: str):
    """The fsspec filesystem of ``url``; S3 honours the AWS environment (endpoint included)
    as the s3:// destination does.  Listings are never served from a cache."""
    import fsspec

    proto = url.split("://", 1)[0].lower()
    if proto == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        kw = {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
        fs, path = fsspec.core.url_to_fs(url, **kw)
    else:
        fs, path = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    return fs, path, proto


def _expand_remote(pat: str, known: dict[str, tuple[int, float, str, int]], folders: bool = False,
                   must_match: bool = False) -> list[SourceFile]:
    try:
        fs, path, proto = _remote_fs(pat)
    except (ImportError, ValueError) as e:
        raise InputError(f"{pat}: {e}") from e
    if glob.has_magic(path):
        found = fs.glob(path, detail=True)
        if must_match and not any(i.get("type") != "directory" for i in found.values()):
            raise NoMatchError(f"{pat}: no file matches")
    else:
        try:
            found = {path: fs.info(path)}
        except FileNotFoundError:
            raise InputError(f"{pat}: no such object") from None
        if folders and found[path].get("type") == "directory":
            found = fs.find(path, detail=True)
    res = []
    for p, info in sorted(found.items()):
        if info.get("type") == "directory":
            continue
        url = p if "://" in p else f"{proto}://{p}"
        size, mt, _tag = object_version(info)
        k = known.get(url)
        if k is not None and k[0] == size and k[1] == mt:
            fp, fp_len = k[2], k[3]
        else:  # (one ranged read: an open file's read-ahead would fetch its first block, 50 MB on S3)
            head = fs.cat_file(p, start=0, end=min(size, FP_BYTES)) if size else b""
            fp, fp_len = fingerprint(head), len(head)
        res.append(SourceFile(url, size, mt, None, None, fp, fp_len, True))
    return res


def object_version(info: dict[str, Any]) -> tuple[int, float, str | None]:
    """(size, modification time, version tag) of an object from its fsspec ``info``: the
    tag is what the store changes with every write of the object (S3's ETag, GCS's
    generation), None where there is none (SFTP)."""
    from datetime import datetime

    size = int(info.get("size") or 0)
    mt = info.get("mtime") or info.get("LastModified") or info.get("updated") or 0
    if hasattr(mt, "timestamp"):
        mt = mt.timestamp()
    elif isinstance(mt, str):
        try:
            mt = datetime.fromisoformat(mt.replace("Z", "+00:00")).timestamp()
        except ValueError:
            mt = 0
    tag = info.get("ETag") or info.get("generation") or info.get("etag")
    return size, float(mt), None if tag is None else str(tag)


def same_file(sf: SourceFile, dev, ino, path: str, fp: str, fp_len: int) -> bool:
    """Does ``sf`` (seen now) hold the file recorded as (dev, ino, path, fp/fp_len)?"""
    if sf.remote or dev is None:
        if sf.path != path:
            return False
    elif (sf.dev, sf.ino) != (dev, ino):
        return False
    if sf.size < fp_len:
        return False  # truncated: a new file in the same place
    if sf.fp_len == fp_len:
        return sf.fp == fp
    return fingerprint_of(sf.path, fp_len, sf.remote) == fp


@dataclass
class Match:
    """What a file found now is: ``known`` (the record it matched, or None) and ``how``:
    ``same`` (the known file, perhaps renamed or grown), ``moved`` (an object store's
    copy + delete of it), ``compressed`` (it was rotated and compressed: same content,
    new file -- read on at the same line), ``truncated`` (the known file's place, but it
    shrank: copytruncate, new content) or ``new``."""

    sf: SourceFile
    known: Any | None
    how: str


class KnownIndex:
    """Known files (objects with ``id``, ``path``, ``dev``, ``ino``, ``fp``, ``fp_len``,
    ``size``) indexed by what :func:`match_files` compares, so a file found is matched
    against the few known ones that can be it rather than all of them (a bucket of
    CloudFront logs holds hundreds of thousands: comparing each with all was quadratic)."""

    def __init__(self, known: Iterable[Any]):
        self.known: list[Any] = []
        self._at: dict[tuple[Any, ...], list[int]] = {}
        #: head lengths the local files' fingerprints cover (a compressed copy's decompressed
        #: head is fingerprinted at each: a rotated and compressed log)
        self.fp_lens: list[int] = []
        for f in known:
            self.add(f)

    def add(self, f: Any) -> None:
        """Index one more known file."""
        i = len(self.known)
        self.known.append(f)
        for key in _keys(f.path, f.fp, f.dev, f.ino):
            self._at.setdefault(key, []).append(i)
        if f.dev is not None and f.fp_len is not None and f.fp_len not in self.fp_lens:
            bisect.insort(self.fp_lens, f.fp_len)

    def near(self, sf: SourceFile) -> list[Any]:
        """The known files a rule of :func:`match_files` could match ``sf`` with, in order:
        same place (path, or device and inode), same head (``sf``'s own fingerprint, or for a
        local compressed file its decompressed head's)."""
        keys = list(_keys(sf.path, sf.fp, None if sf.remote else sf.dev, sf.ino))
        keys += [("fp", fp) for fp in head_fingerprints(sf, self.fp_lens)]
        at = sorted({i for key in keys for i in self._at.get(key, ())})
        return [self.known[i] for i in at]


def _keys(path: str, fp: str | None, dev: int | None, ino: int | None) -> Iterator[tuple[Any, ...]]:
    yield ("path", path)
    if fp is not None:
        yield ("fp", fp)
    if dev is not None:
        yield ("ino", dev, ino)


def head_fingerprints(sf: SourceFile, lengths: Iterable[int]) -> list[str]:
    """For a local compressed file: the fingerprints of its decompressed head over each of
    ``lengths`` it is long enough for (what it was when it was a plain log); else none."""
    lengths = list(lengths)
    if not sf.compressed or sf.remote or not lengths:
        return []
    head = decompressed_head(sf.path, FP_BYTES)
    return list(identities(head, lengths).values()) if head else []


def match_files(found: Iterable[SourceFile], known: Iterable[Any] | KnownIndex,
                present: Iterable[SourceFile] | None = None) -> list[Match]:
    """Match the files found now against the known ones (objects with ``id``, ``path``,
    ``dev``, ``ino``, ``fp``, ``fp_len``, ``size``; ``dev`` None for remote objects; or a
    :class:`KnownIndex` of them): the one rule set shipping, ingest and following share.
    ``present``: every file there now, when ``found`` is only some of them (a compressed
    file is the rotation of a known one only when that one is gone: ``gzip -k`` makes a copy)."""
    found = list(found)
    index = known if isinstance(known, KnownIndex) else KnownIndex(known)
    there = found if present is None else list(present)
    listed = {s.path for s in there}
    used: set[Any] = set()
    out = []
    for sf in found:
        near = index.near(sf)  # (a known file no rule below can match is not among them)
        match, how = None, "new"
        # (newest first: a file truncated in place is registered again under its inode or
        # path, and the older record, whose head it may still share, holds what is gone)
        for f in sorted(near, key=lambda f: f.id, reverse=True):
            if f.id not in used and same_file(sf, f.dev, f.ino, f.path, f.fp, f.fp_len):
                match, how = f, "same"
                break
        if match is None and sf.remote:
            # an object store "renames" by copy + delete: an object that appeared while a
            # known one of the same size and head disappeared is that object, moved
            for f in near:
                if (f.id not in used and f.dev is None and f.path not in listed
                        and f.size == sf.size and f.fp_len == sf.fp_len and f.fp == sf.fp):
                    match, how = f, "moved"
                    break
        if match is None and sf.compressed and not sf.remote:
            match = _compressed_rotation(sf, near, used, there)
            how = "compressed" if match is not None else how
        if match is not None and how != "compressed" and match.size is not None and sf.size < match.size:
            match, how = None, "truncated"  # shrank (copytruncate): new content
        elif match is None and not sf.remote and any(
                f.dev is not None and (f.dev, f.ino) == (sf.dev, sf.ino) and (f.size or 0) > sf.size
                for f in near):
            how = "truncated"  # shrank below its fingerprint: new content in the same place
        if match is not None:
            used.add(match.id)
        out.append(Match(sf, match, how))
    return out


def _compressed_rotation(sf: SourceFile, known: list[Any], used: set[Any], found: list[SourceFile]):
    """A local file that was renamed and compressed by log rotation has a new inode and
    new bytes; it is the known file that no longer exists as such and whose content starts
    the same (fingerprint over the decompressed head)."""
    head = decompressed_head(sf.path, FP_BYTES)
    if head is None:
        return None
    here = {(s.dev, s.ino): s for s in found if not s.remote}
    for f in known:
        if f.id in used or f.dev is None or len(head) < f.fp_len or fingerprint(head[: f.fp_len]) != f.fp:
            continue
        s = here.get((f.dev, f.ino))
        if s is not None and same_file(s, f.dev, f.ino, f.path, f.fp, f.fp_len):
            continue  # the file is still there (its inode may even have been reused)
        return f
    return None


def find_moved(path: str, dev: int, ino: int, fp: str, fp_len: int, *,
               min_size: int | None = None) -> SourceFile | None:
    """Where the local file once at ``path`` (``dev``/``ino``, head ``fp``) is now, when
    rotation moved it out of the followed names: a file of the same folder with the same
    inode (renamed), or a compressed one whose content starts the same (renamed and
    compressed).  With ``min_size``, also a plain file of another inode that starts the
    same and holds at least that many bytes (the copy ``copytruncate`` made before it
    truncated the file).  None when none is there."""
    folder = os.path.dirname(path) or "."
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return None
    others = []
    for e in entries:
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (dev, ino):
            sf = stat_file(e.path)
            if sf is not None and same_file(sf, dev, ino, sf.path, fp, fp_len):
                return sf
        elif os.path.abspath(e.path) != os.path.abspath(path):
            others.append(e.path)
    stats = [sf for sf in map(stat_file, others) if sf is not None]
    if min_size is not None:
        for sf in stats:
            if not sf.compressed and sf.size >= min_size and same_file(sf, sf.dev, sf.ino, sf.path, fp, fp_len):
                return sf
    for sf in stats:
        if sf.compressed and content_fingerprint(sf.path, fp_len) == fp:
            return sf
    return None


def content_identity(head: bytes) -> tuple[str, int, str]:
    """(SHA-256 hex, bytes hashed, SHA-256 hex of the first :data:`PREFIX_BYTES` of them) of
    a file's first :data:`IDENTITY_BYTES` decompressed bytes: two files with the same
    identity hold the same log (one may have grown); the prefix's hash is how a store finds
    the few files a head can be the same content as (``files.head_fp``)."""
    h = head[:IDENTITY_BYTES]
    return fingerprint(h), len(h), fingerprint(h[:PREFIX_BYTES])


def identities(head: bytes, lengths: Iterable[int]) -> dict[int, str]:
    """The content identity of ``head`` over each of ``lengths`` it is long enough for,
    hashed in one pass (a store of many small files has registered many lengths: hashing
    each prefix anew was quadratic in their number)."""
    view, h, at, out = memoryview(head), hashlib.sha256(), 0, {}
    for n in sorted(set(lengths)):
        if n > len(head):
            break
        h.update(view[at:n])
        at = n
        out[n] = h.copy().hexdigest()
    return out


def content_group(head_bytes: int, head_fp: str | None) -> str | None:
    """The group of a registered content: the hash of its first :data:`PREFIX_BYTES`
    (None: registered smaller than that, or before the hash was kept: any head may be it)."""
    return head_fp if head_bytes >= PREFIX_BYTES else None


class ContentIndex:
    """Registered contents (an identity over the bytes it hashed, ``files.identity`` and
    ``head_bytes``), indexed so that a head is hashed only at the lengths registered in its
    own group (:func:`content_group`) or without one: which of them the head starts with."""

    def __init__(self) -> None:
        #: (head_bytes, identity) -> the items registered with that content
        self.at: dict[tuple[int, str], list[Any]] = {}
        #: the lengths registered, by content group
        self.lengths: dict[str | None, set[int]] = {}

    def add(self, item: Any, head_bytes: int, identity: str, head_fp: str | None) -> None:
        self.at.setdefault((head_bytes, identity), []).append(item)
        self.lengths.setdefault(content_group(head_bytes, head_fp), set()).add(head_bytes)

    def matches(self, head: bytes) -> list[tuple[int, Any]]:
        """(bytes, item) of every registered content ``head`` starts with, over those bytes."""
        lengths = self.lengths.get(None, set()) | self.lengths.get(fingerprint(head[:PREFIX_BYTES]), set())
        ids = identities(head, [n for n in lengths if n <= IDENTITY_BYTES])
        return [(n, x) for n, ident in ids.items() for x in self.at.get((n, ident), ())]


def count_newlines(data: bytes) -> int:
    """The line feeds in ``data``.  ``bytes.count`` looks at one byte at a time (0.4 s of
    CPU for an 856 MB log); numpy compares and counts a block at memory speed."""
    if len(data) < 1 << 16:
        return data.count(b"\n")
    arr = np.frombuffer(data, np.uint8)
    step = 4 << 20  # (the comparison's temporary array stays small and cached)
    return sum(int(np.count_nonzero(arr[i : i + step] == 10)) for i in range(0, len(arr), step))


class Tracker(io.RawIOBase):
    """Wraps the decompressed stream handed to a reader: counts lines, remembers line
    anchors (offset of a line start + its number) and directive lines (``#...``)."""

    def __init__(self, stream: BinaryIO, prefix: bytes, first_line: int, first_off: int,
                 directives: list[tuple[int, bytes]]):
        self._s = stream
        self._prefix = prefix
        self.prefix_lines = prefix.count(b"\n")
        self.line = first_line - 1  # lines completed so far (file numbering)
        self.off = first_off  # file offset of the next byte from the stream
        self.anchors: list[tuple[int, int]] = [(first_line - 1, first_off)]
        self.directives = list(directives)
        self._at_line_start = True
        self.saw_lone_cr = False
        self.title: bytes | None = None
        self.base = first_line - 1
        self.hold_partial = False
        self.held = b""
        #: with ``stop_on_error``, a decompression/read error ends the stream as if the
        #: file ended there: ``error`` says why and ``error_at`` at which decompressed byte
        self.stop_on_error = False
        #: line numbers of the directive lines (``#...``) read, in order
        self.directive_lines = array("q")
        self.error: str | None = None
        self.error_at: int | None = None
        #: whole lines scanned and not yet handed on (bytes, or a memoryview of them
        #: once partly read): a read of the reader's chunk size takes them as they are
        self._out: bytes | memoryview = b""
        self._carry = bytearray()  # the unfinished last line of what was read so far
        #: the stream has ended once: it stays ended (a file still being written would
        #: otherwise hand on the rest of the line held back, as a line of its own)
        self._ended = False

    def readable(self) -> bool:
        return True

    def peek(self, n: int = 0) -> bytes:
        """The next bytes, not consumed (the reader sniffs the stream without wrapping it
        in a BufferedReader, which would copy every read through readinto)."""
        if not self._out:
            self._fill(max(n, 1))
        return bytes(self._out[: max(n, 1)])

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes, ending at a line end where they can: each read hands on the
        lines of one read of the stream without copying them again."""
        if n is None or n < 0:
            parts = []
            while part := self.read(1 << 20):
                parts.append(part)
            return b"".join(parts)
        if not self._out:
            self._fill(n)
        out = self._out
        if len(out) <= n:
            self._out = b""
            return out if isinstance(out, bytes) else bytes(out)
        view = memoryview(out)
        self._out = view[n:]
        return bytes(view[:n])

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def _fill(self, want: int) -> None:
        if self._prefix:
            self._out, self._prefix = self._prefix, b""
            return
        while not self._ended:
            try:
                # (with the line carried over, what is handed on stays within ``want``)
                data = self._s.read(max(want - len(self._carry), 1 << 16))
            except Exception as e:  # zlib/bz2/lzma/zstd errors, EOFError, OSError, ...
                if not self.stop_on_error:
                    raise
                self.error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                self.error_at = self.off + len(self._carry)
                data = b""
            if not data:
                self._ended = True
                if self._carry:
                    if self.hold_partial:
                        self.held = bytes(self._carry)  # an unfinished last line: next run
                    else:
                        self._out = bytes(self._carry)
                        self._scan(self._out)
                    self._carry = bytearray()
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                self._carry += data  # (appended: a long line is not copied again per read)
                continue
            if self._carry:  # the one copy: the carried line and the whole lines read
                lines = b"".join((self._carry, memoryview(data)[: cut + 1]))
                self._carry = bytearray(memoryview(data)[cut + 1 :])
            elif cut + 1 < len(data):
                lines = data[: cut + 1]
                self._carry = bytearray(memoryview(data)[cut + 1 :])
            else:
                lines = data
            self._scan(lines)
            self._out = lines
            return

    def _scan(self, data: bytes) -> None:
        if self.title is None and self.off == 0:
            nl = data.find(b"\n")
            self.title = data[: nl + 1] if nl >= 0 else data
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            self.saw_lone_cr = True
        # directive lines starting in this block
        pos = 0 if self._at_line_start else -1
        line_before = self.line
        if pos == 0 and data[:1] == b"#":
            self._directive(data, 0, line_before + 1)
        # (a block without any '#' is the common case: one memchr finds that out, where
        # looking for the two bytes "\n#" costs several times more)
        first = data.find(b"#", 1)
        start = first - 1 if first > 0 else len(data)
        while True:
            k = data.find(b"\n#", start)
            if k < 0:
                break
            ln = line_before + data.count(b"\n", 0, k + 1) + 1
            self._directive(data, k + 1, ln)
            start = k + 1
        nls = count_newlines(data)
        self.line += nls
        last = data.rfind(b"\n")
        if last >= 0:
            self.anchors.append((self.line, self.off + last + 1))
            if len(self.anchors) > 4096:
                self.anchors = self.anchors[::2]
        self._at_line_start = data.endswith(b"\n")
        self.off += len(data)

    def _directive(self, data: bytes, at: int, line_no: int) -> None:
        end = data.find(b"\n", at)
        text = data[at:] if end < 0 else data[at : end + 1]
        if end < 0:
            text += b"\n"  # a directive cut by the block end: keep what we have
        self.directives.append((line_no, text))
        self.directive_lines.append(line_no)
        if len(self.directives) > 2048:
            self.directives = _compact(self.directives, self.directives[-1][0])

    def directives_between(self, after: int, upto: int) -> int:
        """Directive lines read with a line number in (``after``, ``upto``]."""
        d = self.directive_lines
        return bisect.bisect_right(d, upto) - bisect.bisect_right(d, after)

    @property
    def ends_in_line(self) -> bool:
        """The bytes handed to the reader end with a line terminator (or there were none)."""
        return self._at_line_start

    @property
    def shift(self) -> int:
        """What to add to a reader's line number (which counts the replayed header) to
        get the file's."""
        return self.base - self.prefix_lines

    def file_lines(self, batch):
        """``batch`` with its ``line_number`` column in the file's numbering."""
        if self.shift == 0:
            return batch
        import pyarrow as pa
        import pyarrow.compute as pc

        i = batch.schema.get_field_index("line_number")
        return batch.set_column(i, "line_number", pc.add(batch.column(i), pa.scalar(self.shift, pa.int64())))

    def state_at(self, line: int) -> tuple[int, int, bytes]:
        """(anchor line, anchor offset, directive header) for a checkpoint after ``line``."""
        best = (0, 0)
        for a in self.anchors:
            if a[0] <= line and a[0] >= best[0]:
                best = a
        hdr = b"".join(t for _, t in _compact(self.directives, line))
        return best[0], best[1], hdr

    def close(self) -> None:
        try:
            self._s.close()
        finally:
            super().close()


def _compact(directives: list[tuple[int, bytes]], upto: int) -> list[tuple[int, bytes]]:
    """The directive lines in force at line ``upto``: the last of each kind (``#Fields:``,
    ``#Software:``...), in file order."""
    last: dict[bytes, tuple[int, bytes]] = {}
    for ln, text in directives:
        if ln <= upto:
            kind = text.split(b":", 1)[0].strip()
            last.pop(kind, None)
            last[kind] = (ln, text)
    return sorted(last.values(), key=lambda d: d[0])  # (a replayed header: all at line 0, in order)


def open_from(path: str, remote: bool, line: int, anchor_line: int, anchor_off: int,
              header: bytes, title: bytes | None, hold_partial: bool = False,
              raw: BinaryIO | None = None, stop_on_error: bool = False) -> Tracker:
    """A stream for the reader that resumes after ``line``: the directive header (and a
    title line) first, then the file from line ``line + 1``.  The tracker numbers lines as
    the file does; reader line numbers are mapped back with :meth:`Tracker.file_lines`.
    ``raw``: the file, already open (a followed file held open across its rotation)."""
    from .compression import Prefixed, open_decompressed

    reopen = raw is None
    raw = _open_raw(path, remote) if raw is None else raw
    stream, codec = open_decompressed(raw)
    off, ln = 0, 0
    if codec is None and anchor_off and anchor_line <= line:
        # seek on the stream we were given back: it may be a buffer around ``raw`` (remote
        # files have no peek), and dropping that buffer would close ``raw``
        try:
            if not stream.seekable():
                raise OSError("not seekable")
            stream.seek(anchor_off)
            off, ln = anchor_off, anchor_line
        except (OSError, ValueError):
            if not reopen:
                raw.seek(0)
            else:
                stream.close()
                raw = _open_raw(path, remote)
            stream, codec = open_decompressed(raw)
    # skip to after `line`, collecting directives on the way
    directives: list[tuple[int, bytes]] = [(0, h + b"\n") for h in header.split(b"\n") if h]
    n_given = len(directives)
    rest = b""
    need = line - ln
    buf = b""
    skip_error = None
    while need > 0:
        try:
            block = stream.read(1 << 20)
        except Exception as e:  # a corrupt or truncated compressed file
            if not stop_on_error:
                raise
            skip_error, block = f"{type(e).__name__}: {e}", b""
        if not block:
            break
        cnt = count_newlines(block)
        if cnt < need:
            _collect_directives(block, ln, directives, rest)
            rest = block[block.rfind(b"\n") + 1 :] if cnt else rest + block
            need -= cnt
            ln += cnt
            off += len(block)
            continue
        # find the position after the need-th newline
        pos = -1
        for _ in range(need):
            pos = block.find(b"\n", pos + 1)
        _collect_directives(block[: pos + 1], ln, directives, rest)
        buf = block[pos + 1 :]
        off += pos + 1
        ln += need
        need = 0
    # (a header given whole, no directive met on the way: replayed as it is -- a range of a
    # file read on its own replays every directive before it, ``logferry.lake.ranges``)
    hdr = header if len(directives) == n_given and header.endswith(b"\n") else \
        b"".join(t for _, t in _compact(directives, ln))
    prefix = replayed_title(title) + hdr if line > 0 else b""
    t = Tracker(Prefixed(buf, stream), prefix, ln + 1, off, _compact(directives, ln))
    t.hold_partial = hold_partial
    t.stop_on_error = stop_on_error
    if skip_error is not None:
        t.error, t.error_at = skip_error, off
        t._s = Prefixed(b"", io.BytesIO())
        stream.close()
    if line > 0 and title:
        t.title = title
    return t


def replayed_title(title: bytes | None) -> bytes:
    """The title line a read resuming after line 1 replays before its header (a CSV's
    field names): the file's first line, unless it is a directive (the header has it) or
    blank (a reader takes nothing from it, and would count it as one of the read's blank
    lines: ``lines.LineChunk.blank_mask``)."""
    text = (title or b"").removesuffix(b"\n").removesuffix(b"\r")
    if not text or text.startswith(b"#") or (text[:1] in (b" ", b"\t") and not text.strip()):
        return b""
    return title if title.endswith(b"\n") else title + b"\n"


def _collect_directives(block: bytes, line_before: int, out: list, rest: bytes) -> None:
    if not rest and block[:1] == b"#":
        end = block.find(b"\n")
        out.append((line_before + 1, block[: end + 1]))
    start = 0
    while True:
        k = block.find(b"\n#", start)
        if k < 0:
            break
        end = block.find(b"\n", k + 1)
        if end < 0:
            break
        out.append((line_before + block.count(b"\n", 0, k + 1) + 1, block[k + 1 : end + 1]))
        start = k + 1


def iter_blocks(f: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while True:
        b = f.read(size)
        if not b:
            return
        yield b
