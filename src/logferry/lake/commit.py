"""The driver's commit: a batch of reads made visible, every row once.

Iceberg commits one table at a time, so a read's rows and its manifest entry cannot share
one table commit.  The manifest is the commit point instead:

1. the reads' data files are added to ``requests`` and ``bad_rows`` (rows no reader counts
   yet: a reader takes a row only when the manifest lists its read, in its line range);
2. the reads' entries go into ``files`` in one transaction that fails on any concurrent
   manifest commit (the table's commit retries are off); the committer then reads the
   manifest again, drops the reads another run made redundant (their rows stay uncounted)
   and tries again.

A run killed between 1 and 2 left rows no manifest entry counts: the next run reads those
files again under new read ids, and ``logferry lake compact`` deletes the orphans.
"""

from __future__ import annotations

import functools
import random
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..usage.results import FileResult
from .manifest import PLAN_COLUMNS, LakeRegistered, Manifest, hex_list, with_digest_bytes
from .store import Pending
from .tables import FILES, PARTITIONS, Lake, manifest_arrow

_TS_COLS = ("first_timestamp", "last_timestamp", "ingested_at", "updated_at")
#: the manifest with its times as epoch microseconds (how rows are compared and built)
_FILES_US = pa.schema([pa.field(f.name, pa.int64()) if f.name in _TS_COLS else f for f in FILES])
_ATTEMPTS = 100


def manifest_rows(lake: Lake, snapshot_id: int | None = None) -> list[dict[str, Any]]:
    return manifest_arrow(lake, snapshot_id).cast(_FILES_US).to_pylist()


def load_manifest(lake: Lake) -> Manifest:
    """The manifest as the ingester's planning reads it (its columns only, as Arrow), with
    the rows a re-read last line stored, for files whose last line had no end yet."""
    known = Manifest(with_digest_bytes(functools.partial(
        manifest_arrow, lake, columns=PLAN_COLUMNS, dictionary=("format", "header", "title"))))
    t = known.table
    open_tail = pc.fill_null(pc.and_(t["partial_tail"], pc.greater(t["lines"], 0)), False)
    known.tails = _last_line_rows(lake, known.entries(open_tail))
    return known


def _last_line_rows(lake: Lake, regs: list[LakeRegistered]) -> dict[int, tuple[int, int]]:
    """Each file's reads' rows at its last line, in ``requests`` and ``bad_rows`` (file_id
    -> (records, bad rows); one scan of each table for all the files)."""
    from pyiceberg.expressions import And, In

    wanted = [{(r["read_id"], reg.lines) for r in reg.reads if r["first_line"] <= reg.lines <= r["last_line"]}
              for reg in regs]
    keys = set().union(*wanted)
    if not keys:
        return {}
    f = And(In("read_id", {k[0] for k in keys}), In("line_number", {k[1] for k in keys}))
    counts = []
    for t in ("requests", "bad_rows"):
        got = lake.table(t).scan(row_filter=f, selected_fields=("read_id", "line_number")).to_arrow()
        n = got.group_by(["read_id", "line_number"]).aggregate([([], "count_all")]).to_pylist()
        counts.append({(c["read_id"], c["line_number"]): c["count_all"] for c in n})
    out = {}
    for reg, want in zip(regs, wanted, strict=True):
        recs, bads = (sum(c.get(k, 0) for k in want) for c in counts)
        out[reg.file_id] = recs, bads
    return out


def commit(lake: Lake, reads: list[Pending], planned: pa.Array | None = None) -> None:
    """Make ``reads`` visible (each ``result`` gets its file_id, or says another run stored
    the file meanwhile).  ``planned``: the file ids of the manifest the reads were planned
    on -- a new file whose content one of those holds was read as new knowingly (a file
    truncated in place: new content), not stored by another run meanwhile."""
    reads = [p for p in reads if p.mark is not None]
    if not reads:
        return
    # (every read id, a ranged file's other ranges' too: compaction keeps their rows as young)
    ids = ",".join(str(r) for p in reads for r in [*(x["read_id"] for x in p.ranges), p.read_id])
    for name in PARTITIONS:
        # (reads of one task share data files: each added once)
        paths = list(dict.fromkeys(f for p in reads for f in p.data.get(name, ())))
        if paths:
            with lake.table(name).transaction() as tx:
                tx.add_files(paths, snapshot_properties={"logferry.read-ids": ids},
                             check_duplicate_files=False)
    _commit_manifest(lake, reads, planned)


def _commit_manifest(lake: Lake, reads: list[Pending], planned: pa.Array | None = None) -> None:
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.expressions import In

    for attempt in range(_ATTEMPTS):
        table = lake.table("files")
        current, seen, next_id = _current(lake, _snapshot(table), reads, planned)
        accepted, rows = _entries(current, seen, next_id, reads)
        if not rows:
            break
        try:
            tx = table.transaction()
            replaced = [r["file_id"] for r in rows if r["file_id"] in current]
            if replaced:
                tx.delete(In("file_id", replaced))
            tx.append(pa.Table.from_pylist(rows, _FILES_US).cast(FILES))
            tx.commit_transaction()
            break
        except CommitFailedException:
            time.sleep(random.uniform(0.01, 0.05 * (attempt + 1)))
    else:
        raise RuntimeError("the manifest stayed busy: gave up committing")  # pragma: no cover
    for p in reads:
        if p not in accepted:
            _redundant(p)


def _snapshot(table: Any) -> int | None:
    s = table.current_snapshot()
    return s.snapshot_id if s is not None else None


def _current(lake: Lake, snapshot_id: int | None, reads: list[Pending], planned: pa.Array | None
             ) -> tuple[dict[int, dict[str, Any]], set[tuple[str, int]], int]:
    """What the manifest (as committed now: ``snapshot_id``) says of ``reads``: the rows of
    the entries they read on from, the contents registered since ``planned`` (the file ids
    of the manifest they were planned on; None: all of them) and the next file id -- read
    as the few columns and rows they concern, not the whole manifest."""
    from pyiceberg.expressions import In

    t = with_digest_bytes(functools.partial(manifest_arrow, lake, snapshot_id, ["file_id", "identity", "head_bytes"]))
    ids = t["file_id"]
    since = t if planned is None else t.filter(pc.invert(pc.is_in(ids, value_set=planned)))
    seen = set(zip(hex_list(since["identity"]), since["head_bytes"].to_pylist(), strict=True))
    bases = {p.base.file_id for p in reads if p.base is not None}
    current = {}
    if bases:
        got = manifest_arrow(lake, snapshot_id, row_filter=In("file_id", bases)).cast(_FILES_US)
        current = {r["file_id"]: r for r in got.to_pylist()}
    return current, seen, (pc.max(ids).as_py() or 0) + 1


def _entries(current: dict[int, dict[str, Any]], seen: set[tuple[str, int]], next_id: int, reads: list[Pending]
             ) -> tuple[list[Pending], list[dict[str, Any]]]:
    """The reads still valid against the manifest (``current``: the rows of the entries
    they read on from; ``seen``: the contents registered since they were planned), and
    their new rows."""
    seen = set(seen)
    accepted, rows, taken = [], [], set()
    now = int(time.time() * 1e6)
    for p in reads:
        base = p.base
        if base is None:
            key = (p.entry["identity"], p.entry["head_bytes"])
            if key in seen:
                continue
            seen.add(key)
            fid, cur = next_id, None
            next_id += 1
        else:
            cur = current.get(base.file_id)
            if (cur is None or base.file_id in taken or cur["lines"] != base.lines
                    or (cur["reads"] or []) != base.reads):
                continue
            fid = base.file_id
        taken.add(fid)
        accepted.append(p)
        rows.append(_row(p, fid, cur, now))
    return accepted, rows


def _row(p: Pending, fid: int, cur: dict[str, Any] | None, now: int) -> dict[str, Any]:
    m = p.mark
    assert m is not None
    row = dict(cur) if cur is not None else {"ingested_at": now, "ingests": 1, "conversion_errors": 0,
                                               "reads": [], "first_timestamp": None, "last_timestamp": None}
    row.update(p.entry)
    reads = [dict(r) for r in row["reads"] or []]
    for r in reads:
        if p.clip_line is not None and r["first_line"] <= p.clip_line <= r["last_line"]:
            r["last_line"] = p.clip_line - 1
    reads.extend(dict(r) for r in p.ranges)
    reads.append({"read_id": p.read_id, "first_line": p.first_line, "last_line": m.lines})
    lo, hi = row["first_timestamp"], row["last_timestamp"]
    row.update(
        file_id=fid, size=m.size, bytes=m.bytes, lines=m.lines, directives=m.directives, blank=m.blank,
        records=m.records, bad_rows=m.bad_rows, conversion_errors=row["conversion_errors"] + m.conversion_errors,
        partial_tail=m.partial_tail, anchor_line=m.anchor_line, anchor_off=m.anchor_off, header=m.header,
        title=m.title, truncated_at=m.truncated_at, error=m.error, updated_at=now, reads=reads,
        first_timestamp=_pick(min, lo, m.first_ts), last_timestamp=_pick(max, hi, m.last_ts),
        ingests=row["ingests"] + (1 if cur is not None and m.grown else 0),
    )
    if isinstance(p.result, FileResult):
        p.result.file_id = fid
    return row


def _pick(f: Any, a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else f(a, b)


def _redundant(p: Pending) -> None:
    r = p.result
    if isinstance(r, FileResult):
        r.status, r.records, r.bad_rows, r.lines = "duplicate", 0, 0, 0
        r.message = "already ingested by another run meanwhile; nothing added"
