"""Opening a lake: its catalog (SQLite ``SqlCatalog`` beside the data by default, any SQLAlchemy
database, or AWS Glue), its tables and their schemas, and the version check (a lake written
by a newer logferry is refused, never half-read; one made elsewhere in a shared catalog too)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import ConfigError, InputError, first_line
from ..schema import CANONICAL
from ..sources import redact_url

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

#: the lake layout this logferry writes; a lake with a higher one is refused
LAKE_VERSION = 1
NAMESPACE = "logferry"
CATALOG_FILE = "catalog.db"
_VERSION_KEY = "logferry.lake-version"
#: the lake's data location, in its namespace's properties: a catalog shared by several lakes
#: (Glue, a SQL database) holds one lake, the others are refused rather than mixed into it
_LOCATION_KEY = "logferry.lake-location"

#: Iceberg has no 16-bit integer: these columns are stored as int32
_WIDEN = {pa.int16(): pa.int32()}
#: the requests table: the canonical columns, the line number, the read that stored the
#: row (the manifest says which reads count) and the partition site (site, else host)
REQUESTS = pa.schema(
    [(n, _WIDEN.get(t, t)) for n, t in CANONICAL.items()]
    + [("line_number", pa.int64()), ("read_id", pa.int64()), ("lake_site", pa.string())]
)
BAD_ROWS = pa.schema([("read_id", pa.int64()), ("line_number", pa.int64()), ("raw", pa.string()),
                      ("reason", pa.string()), ("ingested_at", pa.timestamp("us", tz="UTC"))])
_TS = pa.timestamp("us", tz="UTC")
READ = pa.struct([("read_id", pa.int64()), ("first_line", pa.int64()), ("last_line", pa.int64())])
#: the manifest: one row per source file, as the usage database's ``files`` plus ``reads``
#: (the rows of which reads, in which line range, are the file's)
FILES = pa.schema([
    ("file_id", pa.int64()), ("identity", pa.string()), ("head_bytes", pa.int32()), ("path", pa.string()),
    ("format", pa.string()), ("compression", pa.string()), ("size", pa.int64()), ("bytes", pa.int64()),
    ("lines", pa.int64()), ("directives", pa.int64()), ("blank", pa.int64()), ("records", pa.int64()),
    ("bad_rows", pa.int64()), ("conversion_errors", pa.int64()), ("partial_tail", pa.bool_()),
    ("first_timestamp", _TS), ("last_timestamp", _TS), ("ingested_at", _TS), ("updated_at", _TS),
    ("ingests", pa.int32()), ("dev", pa.int64()), ("ino", pa.int64()), ("fp", pa.string()),
    ("fp_len", pa.int32()), ("mtime", pa.float64()), ("anchor_line", pa.int64()),
    ("anchor_off", pa.int64()), ("header", pa.binary()), ("title", pa.binary()),
    ("truncated_at", pa.int64()), ("error", pa.string()), ("reads", pa.list_(READ)),
    ("head_fp", pa.string()),  # (sources.content_identity; None in a lake of before)
])
#: rollups (lake/rollups.py): visitors as a HyperLogLog of 2^HLL_PRECISION one-byte registers
HLL_PRECISION = 11
ROLLUP_CLASSES = ("s1xx", "s2xx", "s3xx", "s4xx", "s5xx", "s_other")
ROLLUPS = pa.schema(
    [("lake_site", pa.string()), ("hour", _TS), ("read_id", pa.int64()), ("requests", pa.int64()),
     *((c, pa.int64()) for c in ROLLUP_CLASSES), ("bytes_sent", pa.int64()),
     ("visitors", pa.binary(1 << HLL_PRECISION)), ("latency", pa.list_(pa.int64())),
     ("line_number", pa.int64()),  # (a read's last line: its own rows; None: the read's other lines)
     ("from_host", pa.bool_())]  # (lake_site is the host: the rows have no site; None: a rollup of before)
)
#: the columns that say whose a row is: the read that stored it, its request's partition site
_KEY = [("read_id", pa.int64()), ("lake_site", pa.string())]
_PRICE = pa.decimal128(18, 4)
#: the shop's orders and their items, as the usage database's (an item carries its order's
#: line, time and site: its rows count, and are partitioned, as the order's)
ORDERS = pa.schema([("order_id", pa.string()), ("line_number", pa.int64()), ("timestamp", _TS),
                    ("customer_id", pa.string()), ("total_price", _PRICE), ("payment", pa.string()),
                    ("shipping", pa.string()), *_KEY])
ORDER_ITEMS = pa.schema([("order_id", pa.string()), ("position", pa.int32()), ("product_id", pa.string()),
                         ("product_name", pa.string()), ("category", pa.string()), ("units", pa.int64()),
                         ("net_unit_price", _PRICE), ("net_purchase_price", _PRICE), ("line_number", pa.int64()),
                         ("timestamp", _TS), *_KEY])


def _events() -> pa.Schema:
    """Snowplow events as the usage database's ``events`` (logferry.snowplow), by read."""
    from ..snowplow import EVENTS_SCHEMA

    return pa.schema([*EVENTS_SCHEMA, *_KEY])


def _bad_events() -> pa.Schema:
    """Snowplow's bad events, as the usage database's ``bad_events``."""
    from ..reader import BAD_ROW_SCHEMA

    return pa.schema([*BAD_ROW_SCHEMA, ("read_id", pa.int64()), ("ingested_at", _TS)])


_SITE_DAY = (("lake_site", "identity", "lake_site"), ("timestamp", "day", "day"))
_INGEST_DAY = (("ingested_at", "day", "day"),)
#: partition fields of each table, as (source column, transform name, field name)
PARTITIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "requests": _SITE_DAY, "bad_rows": _INGEST_DAY, "orders": _SITE_DAY, "order_items": _SITE_DAY,
    "events": (("lake_site", "identity", "lake_site"), ("collector_tstamp", "day", "day")),
    "bad_events": _INGEST_DAY, "files": (), "rollups": (),  # (rollups: small; hour and site bounds prune)
}


_SCHEMAS = {"requests": REQUESTS, "bad_rows": BAD_ROWS, "orders": ORDERS, "order_items": ORDER_ITEMS,
            "files": FILES, "rollups": ROLLUPS}


@functools.cache
def schema(table: str) -> pa.Schema:
    """A table's schema (Snowplow's two are made at first use: they import the readers,
    which a report does not need)."""
    made = {"events": _events, "bad_events": _bad_events}
    return made[table]() if table in made else _SCHEMAS[table]


#: the tables of rows a read stores (by read_id and line_number), but the rollups
ROW_TABLES = ("requests", "bad_rows", "orders", "order_items", "events", "bad_events")


def day_column(table: str) -> str | None:
    """The column a table's day partition is of (None: not partitioned by day)."""
    return next((col for col, transform, _f in PARTITIONS[table] if transform == "day"), None)


def manifest_arrow(lake: Lake, snapshot_id: int | None = None, columns: list[str] | None = None,
                   row_filter: Any = None, dictionary: tuple[str, ...] = (),
                   each: Callable[[pa.Table], pa.Table] | None = None) -> pa.Table:
    """The manifest (``files``) with this logferry's columns in order (``columns``: only
    those, read alone; ``row_filter``: a pyiceberg expression, the rows it keeps): a lake
    written before a column was added (``head_fp``) reads it as null until its next ingest
    adds it -- its readers, ``lake status`` and ``compact`` failed with a traceback.
    Without a filter, its data files are read by pyarrow itself (``dictionary``: these
    columns dictionary-encoded as read: a W3C header repeats over thousands of files;
    ``each``: applied to each file's rows as read, so that a smaller form of them is what
    is held): pyiceberg's reader held ~3 KB per entry at its peak for ~0.6 KB read."""
    from pyiceberg.expressions import AlwaysTrue

    each = each or _same
    table = lake.table("files")
    names = FILES.names if columns is None else columns
    there = {f.name for f in table.schema().fields}
    scan = table.scan(row_filter=AlwaysTrue() if row_filter is None else row_filter, snapshot_id=snapshot_id,
                      selected_fields=tuple(c for c in names if c in there))
    tasks = list(scan.plan_files()) if row_filter is None else []
    if tasks and not any(t.delete_files for t in tasks):
        want = pa.schema([pa.field(c, pa.dictionary(pa.int32(), FILES.field(c).type)) if c in dictionary
                          else FILES.field(c) for c in names])
        return pa.concat_tables([_manifest_file(table.io, t.file.file_path, want, each) for t in tasks])
    t = scan.to_arrow()
    for name in names:
        if name not in t.column_names:
            t = t.append_column(name, pa.nulls(t.num_rows, FILES.field(name).type))
    return each(t.select(names))


def _same(t: pa.Table) -> pa.Table:
    return t


def _manifest_file(io: Any, path: str, want: pa.Schema, each: Callable[[pa.Table], pa.Table]) -> pa.Table:
    """One data file of the manifest with the columns of ``want`` (those it lacks: null),
    ``each`` applied to every :data:`MANIFEST_BATCH` rows as read."""
    import pyarrow.parquet as pq

    with io.new_input(path).open() as f:
        pf = pq.ParquetFile(f, read_dictionary=[x.name for x in want if pa.types.is_dictionary(x.type)])
        has = set(pf.schema_arrow.names)
        cols = [c for c in want.names if c in has]
        parts = [each(_conformed(pa.Table.from_batches([b]), want))
                 for b in pf.iter_batches(MANIFEST_BATCH, columns=cols)]
    return pa.concat_tables(parts) if parts else each(want.empty_table())


#: rows of a manifest data file read at a time (a file written before the manifest was
#: compacted into files of 16,384 entries may hold millions)
MANIFEST_BATCH = 64 * 1024


def _conformed(got: pa.Table, want: pa.Schema) -> pa.Table:
    cols = [got[c] if c in got.column_names else pa.nulls(got.num_rows, want.field(c).type) for c in want.names]
    return pa.table(dict(zip(want.names, cols, strict=True))).cast(want)


def io_properties() -> dict[str, str]:
    """FileIO settings from the environment (S3 endpoint, region, keys) -- as the s3://
    sources and destinations read them; nothing is written anywhere."""
    env = os.environ
    props = {}
    for key, names in (("s3.endpoint", ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")),
                       ("s3.region", ("AWS_REGION", "AWS_DEFAULT_REGION")),
                       ("s3.access-key-id", ("AWS_ACCESS_KEY_ID",)),
                       ("s3.secret-access-key", ("AWS_SECRET_ACCESS_KEY",)),
                       ("s3.session-token", ("AWS_SESSION_TOKEN",))):
        v = next((env[n] for n in names if env.get(n)), None)
        if v:
            props[key] = v
    return props


def default_catalog(warehouse: str) -> str:
    """The SQLite catalog of a lake in object storage when none is given: a file on this
    machine (SQLite cannot live in a bucket), one per lake URL, under the user's data folder
    (``$XDG_DATA_HOME/logferry/lakes/``, else ``~/.local/share/logferry/lakes/``): so
    ``ingest``, ``report`` and ``serve`` on this machine find it by the URL alone."""
    import hashlib
    import re

    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", warehouse)[:80]
    digest = hashlib.sha256(warehouse.encode()).hexdigest()[:12]
    return os.path.join(base, "logferry", "lakes", f"{slug}-{digest}.db")


def _tables_there(warehouse: str) -> bool:
    """Whether the bucket already holds this lake's tables (their metadata): a second
    catalog made for them on another machine would fork the lake."""
    from ..sources import _remote_fs

    fs, path, _ = _remote_fs(f"{warehouse}/{NAMESPACE}/files/metadata")
    return bool(fs.exists(path))


@dataclass(frozen=True)
class Where:
    """Where a lake is: its data (``warehouse``, a URI) and its catalog (a SQLAlchemy URI, or
    ``glue://[ACCOUNT_ID]`` for AWS Glue)."""

    location: str
    warehouse: str
    catalog_uri: str
    catalog_file: str | None  # the SQLite file, when the catalog is one
    on_this_machine: bool = False  # (the default catalog of a lake in object storage)

    @classmethod
    def of(cls, location: str, catalog: str | None = None) -> Where:
        if not location:
            raise InputError("--lake needs a folder or URL")
        remote = "://" in location and not location.startswith("file://")
        if remote:
            if redact_url(location) != location:  # (it would be in every path the catalog stores)
                raise InputError(f"{redact_url(location)}: a password in a lake URL is not allowed; use "
                                 "the AWS or Google environment for s3:// and gs://")
            if any(p == ".." for p in location.split("://", 1)[1].split("/")):
                raise InputError(f"{location}: '..' is not allowed in a lake URL")
            warehouse = location.rstrip("/")
        else:
            warehouse = "file://" + os.path.abspath(location.removeprefix("file://"))
        if catalog is None and remote:
            path = default_catalog(warehouse)
            return cls(location, warehouse, "sqlite:///" + path, path, on_this_machine=True)
        if catalog is None:
            catalog = os.path.join(warehouse.removeprefix("file://"), CATALOG_FILE)
        if catalog.startswith("glue://"):  # AWS Glue (glue://CATALOG_ID: another account's)
            cid = catalog.removeprefix("glue://").strip("/")
            if cid and not cid.isdigit():
                raise InputError(f"{catalog}: a Glue catalog is glue:// or glue://ACCOUNT_ID (12 digits)")
            return cls(location, warehouse, "glue://" + cid, None)
        if "://" in catalog:
            path = catalog.removeprefix("sqlite:///") if catalog.startswith("sqlite:///") else None
            return cls(location, warehouse, catalog, path)
        path = os.path.abspath(catalog)
        return cls(location, warehouse, "sqlite:///" + path, path)


class Lake:
    """An open lake: ``table(name)`` loads a table's current metadata (each call anew; a
    :meth:`reader`'s once)."""

    def __init__(self, where: Where, *, create: bool = False):
        self.where = where
        self._fresh = False  # (no namespace in the catalog yet: this run makes the lake)
        self._unplaced = False  # (the namespace has no logferry.lake-location)
        self._tables: dict[str, Table | None] | None = None  # (a reader's loaded tables)
        f = where.catalog_file
        new = f is not None and not os.path.exists(f)
        if new:
            if not create:
                raise InputError(f"{where.location}: no lake here (no catalog {f}; run "
                                 "`logferry ingest PATHS --lake ...` first, or give its --catalog)")
            if where.on_this_machine and _tables_there(where.warehouse):
                raise InputError(f"{where.location}: a lake is already there, its catalog on another machine "
                                 f"(none here: {f}): give its --catalog")
            os.makedirs(os.path.dirname(f) or ".", exist_ok=True)
        self.props = {"uri": where.catalog_uri, "warehouse": where.warehouse, **io_properties()}
        self.catalog = _catalog(self.props, where)
        try:
            ok = self._check_version(new_ok=create)
        except catalog_errors() as e:  # (Glue: unreachable, no credentials, access denied)
            raise InputError(f"{where.location}: catalog {_redact(where.catalog_uri)} unreachable: "
                             f"{first_line(e)}") from None
        if ok and create:  # (a newer lake is refused untouched)
            try:
                self._create()
            except BaseException:
                # (a lake this run began and could not make, e.g. its bucket missing: no catalog
                # left behind, in a shared one no half-made namespace; one another run made
                # meanwhile is not this run's to remove)
                if self._fresh and new:
                    self.catalog.engine.dispose()
                    os.remove(f)
                elif self._fresh and f is None:
                    self._drop_half_made()
                raise

    def table(self, name: str) -> Table:
        t = self.find(name) if self._tables is not None else self._load(name)
        if t is None:  # (an ingest that failed between creating the namespace and this table)
            raise InputError(f"{self.where.location}: the lake has no table {NAMESPACE}.{name} (an ingest "
                             "failed while creating the lake? run the ingest again)")
        return t

    def find(self, name: str) -> Table | None:
        """The table, None where the lake lacks it (one from before the table was added)."""
        if self._tables is not None and name in self._tables:
            return self._tables[name]
        t = self._load(name)
        if self._tables is not None:
            self._tables[name] = t
        return t

    def _load(self, name: str) -> Table | None:
        """The table's current metadata, None where the lake lacks it (InputError: metadata
        that is no table's, e.g. a damaged file)."""
        from pyiceberg.exceptions import NoSuchTableError, ValidationError

        try:
            return self.catalog.load_table((NAMESPACE, name))
        except NoSuchTableError:
            return None
        except ValidationError as e:
            raise InputError(f"{self.where.location}: the metadata of table {NAMESPACE}.{name} cannot be "
                             f"read: {first_line(e)}") from None

    def reader(self) -> Lake:
        """This lake for one reader (a connection): each table loaded at its first use and
        kept, so the reader's tables stay at the snapshots it first saw and none is loaded
        twice.  (The console opens one per request: each sees the last commit.)"""
        import copy

        r = copy.copy(self)
        r._tables = {}
        return r

    def _create(self) -> None:
        from pyiceberg.exceptions import (
            CommitFailedException,
            NamespaceAlreadyExistsError,
            TableAlreadyExistsError,
        )

        raced = self._fresh  # (no namespace when the lake was opened: another run may make it now)
        try:
            self.catalog.create_namespace(NAMESPACE, {_VERSION_KEY: str(LAKE_VERSION),
                                                      _LOCATION_KEY: self.where.warehouse})
        except NamespaceAlreadyExistsError:
            self._fresh = False  # (another run made it meanwhile: not ours to drop, maybe not our lake)
        except Exception:  # noqa: BLE001 - a SQL catalog's own UNIQUE error when another ingester won the race
            if not self.catalog.namespace_exists(NAMESPACE):
                raise
            self._fresh = False
        if raced and not self._fresh:
            self._check_version(new_ok=False)  # (whose lake it is: another location is refused)
        if not self._fresh and self._unplaced:
            self.catalog.update_namespace_properties(NAMESPACE, updates={_LOCATION_KEY: self.where.warehouse})
        for name, parts in PARTITIONS.items():
            if self._load(name) is not None:  # (InputError: its metadata cannot be read)
                self._add_columns(name, schema(name))
                continue
            try:  # the table and its partitioning in one commit
                with self.catalog.create_table_transaction(
                        (NAMESPACE, name), schema=schema(name), properties=_table_properties(name)) as tx:
                    if parts:
                        with tx.update_spec() as spec:
                            for col, transform, field in parts:
                                spec.add_field(col, _transform(transform), field)
            except (TableAlreadyExistsError, CommitFailedException):  # another ingester created it
                continue
            except Exception:  # noqa: BLE001 - likewise, seen as the SQL catalog's UNIQUE error
                if not self.catalog.table_exists((NAMESPACE, name)):
                    raise

    def _drop_half_made(self) -> None:
        """The namespace this run began and could not finish, with the tables it made."""
        import contextlib

        with contextlib.suppress(Exception):
            for name in PARTITIONS:
                if self.catalog.table_exists((NAMESPACE, name)):
                    self.catalog.drop_table((NAMESPACE, name))
            self.catalog.drop_namespace(NAMESPACE)

    def _add_columns(self, name: str, want: pa.Schema) -> None:
        """Add the columns a table of an older lake lacks (nullable: its rows have none)."""
        from pyiceberg.exceptions import CommitFailedException

        t = self.table(name)
        if set(want.names) <= {f.name for f in t.schema().fields}:
            return
        try:
            with t.update_schema() as update:
                update.union_by_name(want)
        except CommitFailedException:  # another ingester added them meanwhile
            if not set(want.names) <= {f.name for f in self.table(name).schema().fields}:
                raise

    def _check_version(self, new_ok: bool) -> bool:
        """True when the lake is this logferry's (or none yet and ``new_ok``)."""
        from pyiceberg.exceptions import NoSuchNamespaceError

        try:
            props = self.catalog.load_namespace_properties(NAMESPACE)
        except NoSuchNamespaceError:
            if new_ok:
                self._fresh = True
                return True
            raise InputError(f"{self.where.location}: no lake here (the catalog has no "
                             f"'{NAMESPACE}' namespace)") from None
        raw = props.get(_VERSION_KEY) or "0"
        try:
            v = int(raw)
        except ValueError:
            raise ConfigError(f"{self.where.location}: the catalog's lake version {raw!r} is not a number "
                              "(a damaged catalog?)") from None
        if v > LAKE_VERSION:
            raise ConfigError(f"{self.where.location}: lake layout v{v} is newer than this "
                              f"logferry (v{LAKE_VERSION}); upgrade logferry")
        there = props.get(_LOCATION_KEY)
        self._unplaced = not there  # (a lake made before the property: its next ingest records it)
        if there and not _same_location(there, self.where.warehouse):  # (lakes made before it: not checked)
            raise InputError(f"{self.where.location}: catalog {_redact(self.where.catalog_uri)} holds the lake "
                             f"at {there}; a catalog holds one lake: give this one its own --catalog")
        return True


def _table_properties(name: str) -> dict[str, str]:
    props = {"write.parquet.compression-codec": "zstd"}
    if name == "files":
        # the manifest is the commit point: a concurrent commit must fail, not be rebased,
        # so the committer checks its entries again (logferry.lake.commit)
        props["commit.retry.num-retries"] = "0"
    return props


def _same_location(a: str, b: str) -> bool:
    """Whether two lake locations are one: a folder by its real path (a symlink to it, another
    spelling of it, is the same lake), a URL as written."""
    if a.startswith("file://") and b.startswith("file://"):
        return os.path.realpath(a.removeprefix("file://")) == os.path.realpath(b.removeprefix("file://"))
    return a == b


def _transform(name: str) -> Any:
    from pyiceberg.transforms import DayTransform, IdentityTransform

    return {"identity": IdentityTransform(), "day": DayTransform()}[name]


def _catalog(props: dict[str, str], where: Where) -> Catalog:
    if where.catalog_uri.startswith("glue://"):
        return _glue(props, where)
    from pyiceberg.catalog.sql import SqlCatalog

    try:
        return SqlCatalog("logferry", **props)
    except Exception as e:  # sqlalchemy's errors: unreachable database, wrong driver, bad URI
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{where.location}: catalog {_redact(where.catalog_uri)} unreachable: "
                         f"{_redact(first)}") from None


#: attempts of a Glue call (the first and its retries, botocore's standard mode: backing off
#: up to ~7 s in all), unless AWS_MAX_ATTEMPTS says otherwise
GLUE_ATTEMPTS = 4


def _glue(props: dict[str, str], where: Where) -> Catalog:
    """AWS Glue as the catalog: boto3 takes the account, region and endpoint from the AWS
    environment (``AWS_REGION``, ``AWS_ENDPOINT_URL_GLUE`` or ``AWS_ENDPOINT_URL``...), as
    the data files' S3 does."""
    try:
        from pyiceberg.catalog.glue import GlueCatalog
    except ImportError:  # pragma: no cover - boto3 comes with the extra `lake`
        raise ConfigError("the Glue catalog needs boto3: pip install 'logferry[lake]'") from None
    from botocore.exceptions import BotoCoreError

    glue: dict[str, Any] = {k: v for k, v in props.items() if k != "uri"}
    # (pyiceberg's 10 attempts spend 80 s on an endpoint that refuses; AWS_MAX_ATTEMPTS is honoured)
    attempts = os.environ.get("AWS_MAX_ATTEMPTS", "")
    glue["glue.max-retries"] = int(attempts) if attempts.isdigit() and int(attempts) > 0 else GLUE_ATTEMPTS
    if cid := where.catalog_uri.removeprefix("glue://"):
        glue["glue.id"] = cid
    try:
        return GlueCatalog("logferry", **glue)
    except BotoCoreError as e:  # no region, no credentials
        raise InputError(f"{where.location}: catalog {where.catalog_uri}: {first_line(e)}") from None


def catalog_errors() -> tuple[type[BaseException], ...]:
    """What a catalog's client raises when it cannot be reached or refuses (Glue: botocore's
    errors; a SQL catalog's are raised when it is made, :func:`_catalog`)."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover
        return ()
    return (BotoCoreError, ClientError)


def _redact(uri: str) -> str:
    """A URI without its password (user:secret@host -> user:***@host)."""
    import re

    return re.sub(r"(://[^/:@\s]+:)[^@/\s]+@", r"\1***@", uri)
