"""The usage database: a DuckDB file whose tables are a documented interface.

See ``docs/usage-db.md`` for every table and column.  :func:`connect` opens (or creates)
the file and brings its schema up to date; :func:`find_registered` answers "have we seen
this content before?" from a file's head fingerprint.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: commands that never open the database skip it
    import duckdb

from ..schema import CANONICAL
from . import DEFAULT_DB

#: bumped whenever a migration is added to :data:`MIGRATIONS`
SCHEMA_VERSION = 1
#: bytes of decompressed content that make a file's identity
HEAD_FINGERPRINT = 64 << 10

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
]

#: the tables `requests`, `bad_rows`, `orders` and `order_items` have a file_id and a line
#: number (order_items through its order): what a partial-tail re-read deletes
LINE_TABLES = ("requests", "bad_rows", "orders")


def connect(path: str | os.PathLike = DEFAULT_DB, *, read_only: bool = False,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open the usage database (created and migrated when needed)."""
    p = os.fspath(path)
    if read_only and p != ":memory:" and not os.path.exists(p):
        from ..errors import InputError

        raise InputError(f"{p}: no usage database here (run `logferry ingest` first)")
    import duckdb

    con = duckdb.connect(p, read_only=read_only)
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if not read_only:
        migrate(con)
    return con


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    row = rows[0] if rows else None
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection) -> None:
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


def fingerprint(head: bytes) -> tuple[str, int]:
    """(identity, head_bytes): sha256 of the first 64 KiB of decompressed content."""
    h = head[:HEAD_FINGERPRINT]
    return hashlib.sha256(h).hexdigest(), len(h)


@dataclass
class Registered:
    file_id: int
    identity: str
    head_bytes: int
    path: str
    format: str | None
    size: int | None
    bytes: int
    lines: int
    records: int
    bad_rows: int
    partial_tail: bool

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Registered:
        return cls(*row)


_REG_COLS = "file_id, identity, head_bytes, path, format, size, bytes, lines, records, bad_rows, partial_tail"


def find_registered(con: duckdb.DuckDBPyConnection, head: bytes) -> Registered | None:
    """The registered file whose content starts like ``head`` does, if any.

    A file is known by the sha256 of its first ``head_bytes`` decompressed bytes (64 KiB,
    or the whole file when it was smaller when registered).  A small file that grew since
    is found by hashing the same number of bytes of the new head.
    """
    lengths = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT head_bytes FROM files WHERE head_bytes <= ? ORDER BY head_bytes DESC",
            [min(len(head), HEAD_FINGERPRINT)],
        ).fetchall()
    ]
    for n in lengths:
        ident = hashlib.sha256(head[:n]).hexdigest()
        row = con.execute(
            f"SELECT {_REG_COLS} FROM files WHERE identity = ? AND head_bytes = ? "
            "ORDER BY file_id LIMIT 1",
            [ident, n],
        ).fetchall()
        if row:
            return Registered.from_row(row[0])
    return None


def next_file_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(file_id), 0) + 1 FROM files").fetchall()[0][0])
