"""The usage database: a DuckDB file whose tables are a documented interface.

See ``docs/usage-db.md`` for every table and column.  :func:`connect` opens (or creates)
the file and brings its schema up to date; :func:`known_files` lists the registered files
with what the shared source layer (``logferry.sources``) identifies them by, and
:func:`find_by_content` answers "have we seen this content before?" from a file's head.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: commands that never open the database skip it
    import duckdb

    from ..sources import SourceFile

from ..schema import CANONICAL
from .defaults import DEFAULT_DB

#: bumped whenever a migration is added to :data:`MIGRATIONS`
SCHEMA_VERSION = 3

_DUCK_TYPES = {
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
}


def _requests_ddl() -> str:
    cols = [f'    "{n}" {_DUCK_TYPES[str(t)]}' for n, t in CANONICAL.items()]
    cols += ["    file_id INTEGER NOT NULL", "    line_number BIGINT NOT NULL"]
    return "CREATE TABLE IF NOT EXISTS requests (\n" + ",\n".join(cols) + "\n)"


MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
        """CREATE TABLE IF NOT EXISTS files (
            file_id INTEGER PRIMARY KEY,
            identity VARCHAR NOT NULL,
            head_bytes INTEGER NOT NULL,
            path VARCHAR NOT NULL,
            format VARCHAR,
            compression VARCHAR,
            size BIGINT,
            bytes BIGINT NOT NULL DEFAULT 0,
            lines BIGINT NOT NULL DEFAULT 0,
            directives BIGINT NOT NULL DEFAULT 0,
            blank BIGINT NOT NULL DEFAULT 0,
            records BIGINT NOT NULL DEFAULT 0,
            bad_rows BIGINT NOT NULL DEFAULT 0,
            conversion_errors BIGINT NOT NULL DEFAULT 0,
            partial_tail BOOLEAN NOT NULL DEFAULT false,
            first_timestamp TIMESTAMPTZ,
            last_timestamp TIMESTAMPTZ,
            ingested_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            ingests INTEGER NOT NULL DEFAULT 1
        )""",
        _requests_ddl(),
        """CREATE TABLE IF NOT EXISTS bad_rows (
            file_id INTEGER NOT NULL,
            line_number BIGINT NOT NULL,
            raw VARCHAR,
            reason VARCHAR
        )""",
        """CREATE TABLE IF NOT EXISTS orders (
            file_id INTEGER NOT NULL,
            order_id VARCHAR NOT NULL,
            line_number BIGINT NOT NULL,
            "timestamp" TIMESTAMPTZ,
            customer_id VARCHAR,
            total_price DECIMAL(18, 4),
            payment VARCHAR,
            shipping VARCHAR
        )""",
        """CREATE TABLE IF NOT EXISTS order_items (
            file_id INTEGER NOT NULL,
            order_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            product_id VARCHAR,
            product_name VARCHAR,
            category VARCHAR,
            units BIGINT,
            net_unit_price DECIMAL(18, 4),
            net_purchase_price DECIMAL(18, 4)
        )""",
    ],
    # v2: files are identified and read on through the shared source layer: the file's
    # inode and raw head fingerprint, the resume anchor and the directives in force there,
    # and why a file stopped short (a truncated or corrupt compressed file)
    [
        "ALTER TABLE files ADD COLUMN dev UBIGINT",
        "ALTER TABLE files ADD COLUMN ino UBIGINT",
        "ALTER TABLE files ADD COLUMN fp VARCHAR",
        "ALTER TABLE files ADD COLUMN fp_len INTEGER",
        "ALTER TABLE files ADD COLUMN mtime DOUBLE",
        "ALTER TABLE files ADD COLUMN anchor_line BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE files ADD COLUMN anchor_off BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE files ADD COLUMN header BLOB",
        "ALTER TABLE files ADD COLUMN title BLOB",
        "ALTER TABLE files ADD COLUMN truncated_at BIGINT",
        "ALTER TABLE files ADD COLUMN error VARCHAR",
    ],
    # v3: the hash of the first PREFIX_BYTES of a file's content (rows of before: NULL, and
    # looked at by length as before)
    ["ALTER TABLE files ADD COLUMN head_fp VARCHAR"],
]

#: the tables `requests`, `bad_rows`, `orders` and `order_items` have a file_id and a line
#: number (order_items through its order): what a partial-tail re-read deletes
LINE_TABLES = ("requests", "bad_rows", "orders")


#: seconds a read-only open waits for a follower to let go of the database (it holds it
#: only while it stores and commits: one commit interval, 2 seconds by default)
LOCK_WAIT = 15.0
#: seconds between two tries while another process holds the database
LOCK_RETRY = 0.05


def connect(path: str | os.PathLike = DEFAULT_DB, *, read_only: bool = False,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the usage database (created and migrated when needed).  Read-only, it waits
    up to :data:`LOCK_WAIT` seconds while another process (a follower) is writing it."""
    p = os.fspath(path)
    if read_only and p != ":memory:" and not os.path.exists(p):
        from ..errors import InputError

        raise InputError(f"{p}: no usage database here (run `logferry ingest` first)")
    con = _open_waiting(p) if read_only else open_now(p, False)
    if read_only and p != ":memory:" and not schema_version(con):
        # another DuckDB file (no logferry tables): the reports' queries would fail on it
        con.close()
        from ..errors import InputError

        raise InputError(f"{p}: a DuckDB file but not a usage database (no logferry tables; "
                         "run `logferry ingest` first)")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if not read_only:
        migrate(con)
    return con


def connect_shared(path: str | os.PathLike, **kw: Any) -> duckdb.DuckDBPyConnection:
    """Read-write (created and migrated when needed), or read-only while another
    process (a follower) is writing the file."""
    import duckdb

    try:
        return connect(path, **kw)
    except (duckdb.IOException, duckdb.ConnectionException) as e:
        # (or this process reads it already: the alert rules between two commits)
        if not is_held(e):
            raise
    return connect(path, read_only=True, **kw)


def is_locked(e: BaseException) -> bool:
    """``e`` says another process holds the database file."""
    return "Could not set lock" in str(e)


def is_held(e: BaseException) -> bool:
    """``e`` says the file is held: by another process (its lock), or by this one opened
    the other way (read-only against read-write)."""
    return is_locked(e) or "different configuration" in str(e)


def duck(database: str = ":memory:", *, read_only: bool = False,
         config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection as logferry opens every one: DuckDB's progress bar, which it
    draws on standard output during a statement of over two seconds, stays off, so
    stdout carries only the command's own output (``--json``, ``sql`` CSV)."""
    import duckdb

    con = duckdb.connect(database, read_only=read_only, config=config or {})
    con.execute("SET enable_progress_bar = false")
    return con


def open_now(p: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``p``, no waiting (DuckDB's lock error when it is held)."""
    import duckdb

    try:
        return duck(p, read_only=read_only)
    except duckdb.ConnectionException as e:
        if not (read_only and "different configuration" in str(e)):
            raise
        # this process already has the file open for writing (a follower in the console's
        # process): a connection to that same database instance is how to read it
        return duck(p)


def _open_waiting(p: str) -> duckdb.DuckDBPyConnection:
    import time

    import duckdb

    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            return open_now(p, True)
        except duckdb.IOException as e:
            if not is_locked(e):
                raise
            if time.monotonic() >= deadline:
                from ..errors import InputError

                raise InputError(f"{p}: another process has held the usage database for writing for "
                                 f"{LOCK_WAIT:g}s (a follower holds it only while it commits)") from None
        time.sleep(LOCK_RETRY)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    row = rows[0] if rows else None
    return int(row[0]) if row else 0


#: connections of one process share a database instance: one migrates at a time
_MIGRATING = threading.Lock()


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    with _MIGRATING:
        _migrate(con)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    v = schema_version(con)
    if v > SCHEMA_VERSION:
        from ..errors import ConfigError

        raise ConfigError(
            f"usage database schema v{v} is newer than this logferry (v{SCHEMA_VERSION}); upgrade logferry"
        )
    for i in range(v, SCHEMA_VERSION):
        con.execute("BEGIN")
        for stmt in MIGRATIONS[i]:
            con.execute(stmt)
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(i + 1)]
        )
        con.execute("COMMIT")


@dataclass
class Registered:
    """A row of ``files`` as the ingester and the follower use it (``id`` is the file_id,
    the attributes :func:`logferry.sources.match_files` reads are all here)."""

    file_id: int
    identity: str
    head_bytes: int
    path: str
    format: str | None
    size: int | None
    bytes: int
    lines: int
    directives: int
    blank: int
    records: int
    bad_rows: int
    partial_tail: bool
    dev: int | None
    ino: int | None
    fp: str | None
    fp_len: int | None
    mtime: float | None
    anchor_line: int
    anchor_off: int
    header: bytes
    title: bytes
    truncated_at: int | None
    head_fp: str | None = None

    @property
    def id(self) -> int:
        return self.file_id

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Registered:
        r = cls(*row)
        r.header = bytes(r.header or b"")
        r.title = bytes(r.title or b"")
        return r


_REG_COLS = ("file_id, identity, head_bytes, path, format, size, bytes, lines, directives, blank, "
             "records, bad_rows, partial_tail, dev, ino, fp, fp_len, mtime, anchor_line, anchor_off, "
             "header, title, truncated_at, head_fp")


def known_files(con: duckdb.DuckDBPyConnection, *, local: bool | None = None,
                near: SourceFile | None = None) -> list[Registered]:
    """Registered files that carry a source identity (rows of databases older than v2
    get theirs the next time their content is met: :func:`find_by_content`).
    ``local``: only local files (True) or only remote objects (False); ``near``: only
    those a rule of ``match_files`` could match this file with (same place or same head:
    ``sources.KnownIndex.near``), not every file of a large database for each file."""
    from ..sources import head_fingerprints

    cond, params = "fp IS NOT NULL", []
    if local is True:
        cond += " AND dev IS NOT NULL"
    elif local is False:
        cond += " AND dev IS NULL"
    if near is not None:
        lens = [r[0] for r in con.execute(
            "SELECT DISTINCT fp_len FROM files WHERE dev IS NOT NULL AND fp IS NOT NULL").fetchall()
        ] if near.compressed and not near.remote else []
        cond += " AND (path = ? OR list_contains(?, fp) OR (dev = ? AND ino = ?))"
        params = [near.path, [near.fp, *head_fingerprints(near, lens)], near.dev, near.ino]
        # (the few rows' ids first: a scan of every column of a large table cost more)
        return by_ids(con, [r[0] for r in con.execute(f"SELECT file_id FROM files WHERE {cond}", params).fetchall()])
    return [Registered.from_row(r) for r in con.execute(
        f"SELECT {_REG_COLS} FROM files WHERE {cond} ORDER BY file_id", params).fetchall()]


def by_ids(con: duckdb.DuckDBPyConnection, ids: list[int]) -> list[Registered]:
    if not ids:
        return []
    return [Registered.from_row(r) for r in con.execute(
        f"SELECT {_REG_COLS} FROM files WHERE file_id IN ({', '.join('?' * len(ids))}) ORDER BY file_id",
        ids).fetchall()]


def registered(con: duckdb.DuckDBPyConnection, file_id: int) -> Registered:
    row = con.execute(f"SELECT {_REG_COLS} FROM files WHERE file_id = ?", [file_id]).fetchall()
    return Registered.from_row(row[0])


def find_by_content(con: duckdb.DuckDBPyConnection, head: bytes,
                    exclude: int | None = None) -> Registered | None:
    """The registered file whose content starts like ``head`` does, if any.

    A file is known by its content identity (``logferry.sources.content_identity``: the
    sha256 of its first ``head_bytes`` decompressed bytes, 64 KiB or the whole file when
    it was smaller when registered).  A small file that grew since is found by hashing
    the same number of bytes of the new head.
    """
    from ..sources import IDENTITY_BYTES, PREFIX_BYTES, fingerprint, identities

    lengths = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT head_bytes FROM files WHERE head_bytes <= ? "
            "AND (head_bytes < ? OR head_fp IS NULL OR head_fp = ?)",
            [min(len(head), IDENTITY_BYTES), PREFIX_BYTES, fingerprint(head[:PREFIX_BYTES])],
        ).fetchall()
    ]
    # the files of one of those identities (the longest match first, then the first file)
    ids = identities(head, lengths)
    if not ids:
        return None
    hits = [(-n, file_id) for file_id, n, ident in con.execute(
        f"SELECT file_id, head_bytes, identity FROM files WHERE identity IN ({', '.join('?' * len(ids))}) "
        "AND file_id IS DISTINCT FROM ?", [*ids.values(), exclude]).fetchall() if ids.get(n) == ident]
    row = by_ids(con, [min(hits)[1]]) if hits else []
    return row[0] if row else None
