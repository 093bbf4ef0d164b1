"""The DuckDB store: what the ingester appends to the usage database file, and how it
records in ``files`` how far each file was read (see ``docs/usage-db.md``).

The ingester (``usage/ingester.py``) plans and reads; a store answers what the manifest
knows (:meth:`DuckStore.known_files`, :meth:`~DuckStore.find_by_content`), and appends a
file's rows and its manifest entry in one transaction (:meth:`~DuckStore.begin` ..
:meth:`~DuckStore.commit`), with checkpoints in between for long files.  The lake
(``logferry.lake``) is the other store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..reader import BadRow
from ..schema import CANONICAL_NAMES
from ..sources import SourceFile, content_identity
from . import db as dbm
from .bundle import BUNDLE_FILE_BYTES, INDEX_FILES, Bundle
from .reading import STREAM_SCHEMA, CommitGroups, ingest_threads

if TYPE_CHECKING:  # imported where used (see db.py)
    import duckdb

_BATCH_VIEW = "_lf_batch"
_REQ_COLS = ", ".join(f'"{c}"' for c in CANONICAL_NAMES)
_INSERT_REQUESTS = (
    f"INSERT INTO requests ({_REQ_COLS}, file_id, line_number) "
    f"SELECT {_REQ_COLS}, $1::INTEGER, line_number FROM {_BATCH_VIEW}"
)
#: SQL for a parameter of epoch microseconds as TIMESTAMPTZ (whatever the session time zone)
_US_TO_TS = "timezone('UTC', make_timestamp(?::BIGINT))"
#: a read's first and last row times widen the file's (parameters: first, first, last, last)
_SPAN = f"""first_timestamp = CASE WHEN first_timestamp IS NULL OR {_US_TO_TS} < first_timestamp
                                  THEN {_US_TO_TS} ELSE first_timestamp END,
           last_timestamp = CASE WHEN last_timestamp IS NULL OR {_US_TO_TS} > last_timestamp
                                 THEN {_US_TO_TS} ELSE last_timestamp END"""


@dataclass
class FileMark:
    """How far a file is read and what its lines were up to there: what a store records
    in its manifest at a checkpoint (the first fields, and the times of the rows so far) and
    when the read ends (all)."""

    lines: int
    bytes: int
    records: int
    bad_rows: int
    directives: int
    blank: int
    anchor_line: int
    anchor_off: int
    header: bytes
    title: bytes | None
    # when the read ends
    size: int | None = None
    conversion_errors: int = 0
    partial_tail: bool = False
    first_ts: int | None = None  # epoch microseconds of this read's rows
    last_ts: int | None = None
    truncated_at: int | None = None
    error: str | None = None
    grown: bool = False  # rows were added to a file read before (one more ingest)


def _snowplow_hook() -> Callable[..., Any] | None:
    try:
        from ..snowplow import ingest_hook  # type: ignore[attr-defined]
    except ImportError:
        return None
    return ingest_hook


class DuckStore:
    """Appends ingested files to one open usage database."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.snowplow_hook = _snowplow_hook()
        # DuckDB converts and compresses the batches it pulls; insertion order within a
        # file is line order anyway with one thread, and reports never rely on it
        # and DuckDB's own progress bar (printed on stdout for a long statement) stays off
        self.settings = {"threads": ingest_threads()[1], "preserve_insertion_order": False,
                         "enable_progress_bar": False}
        #: new small files held to be written together (while :meth:`bundling`)
        self.bundle: Bundle | None = None
        self._cur: int | None = None  # the file being read, when it is held
        self._in_tx = False  # (while bundling: a file's transaction is open)
        self._in_file = False  # between begin and commit (or rollback)
        #: held files a failed write lost: why, by file_id
        self.lost: dict[int, str] = {}

    def start_bundle(self) -> None:
        """Hold new small files from now on, to write them together (``usage/bundle.py``);
        not for a database of more files than its index may hold in memory."""
        self.lost = {}
        if self.con.execute("SELECT count(*) FROM files").fetchall()[0][0] <= INDEX_FILES:
            self.bundle = Bundle(self.con)

    def end_bundle(self, write: bool = True) -> None:
        """Write what is held (``write``; an error: in :attr:`lost`) and stop holding."""
        try:
            if write:
                self.write_held()
        except Exception:
            pass  # (the files are in :attr:`lost`)
        finally:
            self.bundle = None

    def holding(self) -> bool:
        """Files are held, not yet written."""
        return bool(self.bundle is not None and self.bundle.held)

    def write_held(self) -> None:
        """Write the held files in one transaction; when that fails, each in its own, so
        that one file's failure is that file's (:attr:`lost` names those not written)."""
        b = self.bundle
        if b is None or not b.held:
            return
        held = b.take()
        try:
            self._write(b, held)
        except Exception:
            for fid, h in held.items() if len(held) > 1 else ():
                try:
                    self._write(b, {fid: h})
                except Exception as e:
                    self.lost[fid] = self.error_message(e) or f"{type(e).__name__}: {e}"
            if len(held) == 1:
                raise

    def _write(self, b: Bundle, held: dict[int, Any]) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            b.write(held, self.snowplow_hook)
            self.con.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise

    # the manifest ------------------------------------------------------------------------
    def known_files(self, *, local: bool | None = None, near: SourceFile | None = None) -> list[dbm.Registered]:
        b = self.bundle
        if b is None or near is None:
            return dbm.known_files(self.con, local=local, near=near)
        rows = self._fresh(b.near(near))
        return [r for r in rows if r.fp is not None and (local is None or (r.dev is not None) == local)]

    def find_by_content(self, head: bytes, exclude: int | None = None) -> dbm.Registered | None:
        b = self.bundle
        if b is None:
            return dbm.find_by_content(self.con, head, exclude)
        # (the longest match first, then the first file)
        hits = sorted((-n, fid) for n, fid in b.same_content(head) if fid != exclude)
        rows = self._fresh([hits[0][1]] if hits else [])
        return rows[0] if rows else None

    def _fresh(self, ids: list[int]) -> list[dbm.Registered]:
        """The rows of ``ids`` as the database has them (held ones written first)."""
        if any(i in self.bundle.held for i in ids):  # type: ignore[union-attr]
            self.write_held()
        return dbm.by_ids(self.con, ids)

    def registered(self, file_id: int) -> dbm.Registered:
        if self.bundle is not None and file_id in self.bundle.held:
            self.write_held()
        return dbm.registered(self.con, file_id)

    def adopt(self, file_id: int, sf: SourceFile, path: str | None = None) -> None:
        """Record ``sf``'s source identity (and new ``path``) for a registered file."""
        self._writing()
        if self.bundle is not None:
            self.bundle.moved(file_id, sf, path)
        if path is None:
            self.con.execute("UPDATE files SET dev = ?, ino = ?, fp = ?, fp_len = ?, mtime = ? "
                             "WHERE file_id = ?", [sf.dev, sf.ino, sf.fp, sf.fp_len, sf.mtime, file_id])
        else:
            self.con.execute(
                "UPDATE files SET path = ?, dev = ?, ino = ?, fp = ?, fp_len = ?, mtime = ? "
                "WHERE file_id = ?", [path, sf.dev, sf.ino, sf.fp, sf.fp_len, sf.mtime, file_id])

    # transactions --------------------------------------------------------------------------
    def begin(self) -> None:
        """A file's transaction begins (while bundling: when it first writes)."""
        self._cur, self._in_file = None, True
        if self.bundle is None:
            self.con.execute("BEGIN TRANSACTION")

    def _writing(self) -> None:
        """While bundling: a file's transaction begins with its first write (outside a
        file's read, a statement commits by itself)."""
        if self.bundle is not None and self._in_file and not self._in_tx:
            self.con.execute("BEGIN TRANSACTION")
            self._in_tx = True

    def commit(self) -> None:
        self._in_file = False
        if self.bundle is None:
            self.con.execute("COMMIT")
            return
        if self._in_tx:
            self._in_tx = False
            self.con.execute("COMMIT")
        if self.bundle.full():
            self.write_held()

    def rollback(self) -> None:
        import duckdb

        if self.bundle is not None and self._cur is not None:
            self.bundle.drop(self._cur)
        self._in_tx = self._in_file = False
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def apply_settings(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """Apply ``settings`` (default: the ingest settings); returns the previous values."""
        return _apply_settings(self.con, self.settings if settings is None else settings)

    def error_message(self, e: BaseException) -> str | None:
        """A one-line message for a DuckDB error (None: not one)."""
        import duckdb

        if isinstance(e, duckdb.Error):
            return f"database: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        return None

    # a file's entry ------------------------------------------------------------------------
    def new_file(self, sf: SourceFile, fmt: str, codec: str | None, head: bytes | None) -> int:
        """Register a new file; returns its file_id (the next one, in the same statement;
        while bundling, the run's next one, and a small file is held)."""
        ident, hb, prefix = content_identity(head if head is not None else b"")
        b = self.bundle
        if b is not None:
            reg = b.register(sf, fmt, (ident, hb, prefix))
            if (sf.size or 0) <= BUNDLE_FILE_BYTES and fmt != "shop":
                b.hold(reg, codec)
                self._cur = reg.file_id
                return reg.file_id
            self._writing()
        # (its file_id the run's when bundling, else the next one, in the same statement)
        return self.con.execute(
            "INSERT INTO files (file_id, identity, head_bytes, head_fp, path, format, compression, size, "
            "dev, ino, fp, fp_len, mtime, ingested_at, updated_at) "
            "SELECT coalesce(?, max(file_id) + 1, 1), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), now() FROM files "
            "RETURNING file_id",
            [None if b is None else reg.file_id, ident, hb, prefix, sf.path, fmt, codec, sf.size, sf.dev,
             sf.ino, sf.fp, sf.fp_len, sf.mtime],
        ).fetchall()[0][0]

    def delete_line(self, file_id: int, line: int) -> int:
        """Delete what line ``line`` of a file stored (a last line read before its end was
        written); returns 1 when it stored nothing (a directive or a blank line), else 0."""
        self._writing()
        con = self.con
        n_req = con.execute(
            "SELECT count(*) FROM requests WHERE file_id = ? AND line_number = ?", [file_id, line]
        ).fetchall()[0][0]
        n_bad = con.execute(
            "SELECT count(*) FROM bad_rows WHERE file_id = ? AND line_number = ?", [file_id, line]
        ).fetchall()[0][0]
        con.execute(
            "DELETE FROM order_items WHERE file_id = ? AND order_id IN "
            "(SELECT order_id FROM orders WHERE file_id = ? AND line_number = ?)",
            [file_id, file_id, line],
        )
        for t in dbm.LINE_TABLES:
            con.execute(f"DELETE FROM {t} WHERE file_id = ? AND line_number = ?", [file_id, line])
        con.execute(
            "UPDATE files SET records = records - ?, bad_rows = bad_rows - ? WHERE file_id = ?",
            [n_req, n_bad, file_id],
        )
        return 0 if n_req or n_bad else 1

    def checkpoint(self, file_id: int, m: FileMark) -> None:
        """Record how far the file is stored and commit (the next transaction begins; a
        held file is written with the others held, and its read goes on in the database)."""
        if self._held(file_id, m):
            self.write_held()
            self._cur = None
            if file_id in self.lost:  # (the rest of it must not be stored without its entry)
                from ..errors import LogferryError

                raise LogferryError(self.lost.pop(file_id))
            return
        self._writing()
        self.con.execute(
            "UPDATE files SET lines = ?, bytes = ?, records = ?, bad_rows = ?, directives = ?, "
            f"blank = ?, partial_tail = false, {_SPAN}, anchor_line = ?, anchor_off = ?, header = ?, "
            "title = ?, updated_at = now() WHERE file_id = ?",
            [m.lines, m.bytes, m.records, m.bad_rows, m.directives, m.blank, m.first_ts, m.first_ts,
             m.last_ts, m.last_ts, m.anchor_line, m.anchor_off, m.header, m.title, file_id],
        )
        self.commit()
        self.begin()

    def _held(self, file_id: int, mark: FileMark | None = None) -> bool:
        """Whether the file is held (and then it is marked ``mark``)."""
        h = None if self.bundle is None else self.bundle.held.get(file_id)
        if h is not None and mark is not None:
            h.mark = mark
        return h is not None

    def finish(self, file_id: int, m: FileMark) -> None:
        """Record the end of a read (the caller commits)."""
        if self._held(file_id, m):
            return
        self._writing()
        self.con.execute(
            f"""UPDATE files SET size = ?, bytes = ?, lines = ?, directives = ?, blank = ?,
                   records = ?, bad_rows = ?,
                   conversion_errors = conversion_errors + ?, partial_tail = ?, {_SPAN},
                   anchor_line = ?, anchor_off = ?, header = ?, title = ?, truncated_at = ?, error = ?,
                   updated_at = now(), ingests = ingests + CASE WHEN ? THEN 1 ELSE 0 END
               WHERE file_id = ?""",
            [m.size, m.bytes, m.lines, m.directives, m.blank, m.records, m.bad_rows,
             m.conversion_errors, m.partial_tail, m.first_ts, m.first_ts, m.last_ts, m.last_ts,
             m.anchor_line, m.anchor_off, m.header, m.title, m.truncated_at, m.error, m.grown,
             file_id],
        )

    # rows ----------------------------------------------------------------------------------
    def append_requests(self, run: CommitGroups, file_id: int) -> None:
        """Insert the next commit group of ``run`` with one streaming INSERT ... SELECT
        (a held file's rows are kept with it)."""
        if self._held(file_id):
            batches = list(run.group())
            if run.error is not None:
                raise run.error
            self.bundle.add_rows(file_id, batches)  # type: ignore[union-attr]
            return
        self._writing()
        reader = pa.RecordBatchReader.from_batches(STREAM_SCHEMA, run.group())
        self.con.register(_BATCH_VIEW, reader)
        try:
            self.con.execute(_INSERT_REQUESTS, [file_id])
        except Exception:
            if run.error is not None:
                raise run.error from None  # the reader's own error (bad input, I/O), not DuckDB's wrapper
            raise
        finally:
            _unregister(self.con)
        if run.error is not None:
            raise run.error

    def append_bad(self, file_id: int, rows: list[BadRow]) -> None:
        if not rows:
            return
        if self._held(file_id):
            self.bundle.held[file_id].bad.extend(rows)  # type: ignore[union-attr]
            return
        t = pa.table(
            {
                "line_number": pa.array([b.line_number for b in rows], pa.int64()),
                "raw": pa.array([b.raw for b in rows], pa.string()),
                "reason": pa.array([b.reason for b in rows], pa.string()),
            }
        )
        self._insert(
            f"INSERT INTO bad_rows SELECT $1::INTEGER, line_number, raw, reason FROM {_BATCH_VIEW}",
            t, file_id,
        )

    def append_tracker(self, batch: pa.RecordBatch, file_id: int) -> None:
        """Hand a batch's tracker hits to the Snowplow hook (a held file's: when it is written)."""
        if self._held(file_id):
            self.bundle.held[file_id].tracker.append(batch)  # type: ignore[union-attr]
            return
        self._writing()
        self.snowplow_hook(self.con, batch, file_id)  # type: ignore[misc]

    def _insert(self, sql: str, data: pa.RecordBatch | pa.Table, file_id: int) -> None:
        self._writing()
        self.con.register(_BATCH_VIEW, data)
        try:
            self.con.execute(sql, [file_id])
        finally:
            _unregister(self.con)

    def append_orders(self, batch: pa.RecordBatch, file_id: int) -> int:
        """Store the shop orders of a batch of ORDER lines (``CommitGroups`` puts them
        aside, none other); returns how many."""
        from ..shop import decode_shop

        dec = decode_shop(batch)
        if dec.orders.num_rows:
            self._insert(
                "INSERT INTO orders SELECT $1::INTEGER, CAST(order_id AS VARCHAR), line_number, "
                '"timestamp", CAST(customer_id AS VARCHAR), CAST(total_price AS DECIMAL(18, 4)), '
                f"CAST(payment AS VARCHAR), CAST(shipping AS VARCHAR) FROM {_BATCH_VIEW}",
                dec.orders, file_id,
            )
        if dec.order_items.num_rows:
            self._insert(
                "INSERT INTO order_items SELECT $1::INTEGER, CAST(order_id AS VARCHAR), "
                "CAST(position AS INTEGER), CAST(product_id AS VARCHAR), CAST(product_name AS VARCHAR), "
                "CAST(category AS VARCHAR), CAST(units AS BIGINT), "
                "CAST(net_unit_price AS DECIMAL(18, 4)), CAST(net_purchase_price AS DECIMAL(18, 4)) "
                f"FROM {_BATCH_VIEW}",
                dec.order_items, file_id,
            )
        return dec.orders.num_rows


def _unregister(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the batch view; in an aborted transaction that fails, and the error that
    aborted it is the one to report (the view is replaced by the next register)."""
    import duckdb

    try:
        con.unregister(_BATCH_VIEW)
    except duckdb.Error:
        pass


def _apply_settings(con: duckdb.DuckDBPyConnection, settings: dict[str, Any]) -> dict[str, Any]:
    """Set DuckDB settings; returns their previous values (to put them back)."""
    old: dict[str, Any] = {}
    for name, value in settings.items():
        old[name] = con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0]
        v = ("true" if value else "false") if isinstance(value, bool) else int(value)
        con.execute(f"SET {name} = {v}")
    return old


