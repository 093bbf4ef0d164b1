"""Many files at once, on local processes or a Dask cluster (extra ``logferry[dask]``).

One task per file: a log file is read front to back (compressed streams, ``#Fields``
headers that change mid-file, line numbers), while a folder or bucket holds many of them::

    from distributed import Client
    from logferry.cluster import convert_files, read_dataframe

    client = Client("tcp://scheduler:8786")          # or none: local processes
    results = convert_files(["s3://logs/2024/*.gz"], "s3://lake/requests/", client=client)
    ddf = read_dataframe(["logs/*.log"])             # dask DataFrame of canonical records

Paths are expanded as ``logferry ingest`` expands them (files, globs, folders, fsspec
URLs); each worker opens its file itself, so remote inputs are read where the work runs.
Nothing is lost: :func:`convert_files` writes the bad rows of each file to a quarantine
file beside its output and says per file what was read, and :func:`bad_rows_dataframe`
holds the bad rows that :func:`read_dataframe` leaves out of the records.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, LogferryError

#: compression suffixes dropped from an input's name to make its output's name
_COMPRESSED = (".gz", ".bz2", ".zst", ".zstd", ".lzo", ".xz")


@dataclass
class FileResult:
    """What converting one file did; on failure ``error`` says why and nothing is left
    behind (``output`` is None)."""

    source: str
    output: str | None
    format: str | None = None
    lines: int = 0
    records: int = 0
    bad_rows: int = 0
    bad_rows_file: str | None = None
    error: str | None = None


def _dask():
    try:
        import dask
    except ImportError as e:  # pragma: no cover - the extra is installed where tested
        raise ConfigError("Dask is not installed: pip install 'logferry[dask]'") from e
    return dask


def files(paths: Iterable[str] | str) -> list[str]:
    """Every file named by ``paths`` (files, globs, folders, fsspec URLs)."""
    from .usage.ingester import expand_inputs as expand  # as ingest expands: in the order given

    found = expand([paths] if isinstance(paths, str | os.PathLike) else paths)
    return [getattr(f, "path", f) for f in found]  # (ingest's expand gives SourceFiles)


def output_names(sources: list[str], extension: str) -> list[str]:
    """One output name per input: its base name without a compression suffix, plus
    ``extension``; inputs whose names would collide (``a/access.log``, ``b/access.log``)
    get a short hash of their full path, so no output overwrites another."""

    def base(source: str) -> str:
        b = posixpath.basename(str(source).replace("\\", "/").rstrip("/"))
        for suffix in _COMPRESSED:
            if b.endswith(suffix):
                return b[: -len(suffix)]
        return b

    bases = [base(s) for s in sources]
    seen = Counter(bases)
    out = []
    for s, b in zip(sources, bases, strict=True):
        if seen[b] > 1:
            b += "-" + hashlib.sha1(str(s).encode()).hexdigest()[:8]
        out.append(b + extension)
    return out


def convert_file(source: str, output_dir: str, to: str = "parquet", *, name: str | None = None,
                 format: str | None = None, options: dict[str, Any] | None = None) -> FileResult:
    """Convert one file into ``output_dir`` (a folder or an fsspec URL) as ``name``
    (default: see :func:`output_names`); its bad rows go to ``<name>.bad.jsonl`` beside it.
    An unreadable input is returned as an error, not raised, so it does not stop the
    other files."""
    import fsspec

    from .convert import bad_rows_writer, convert, prepare

    prepared = prepare(to)
    fs, root = fsspec.core.url_to_fs(str(output_dir))
    fs.makedirs(root, exist_ok=True)
    name = name or output_names([source], prepared.factory.extension)[0]
    out_path = posixpath.join(root, name)
    bad_path = out_path + ".bad.jsonl"
    local = "file" in fs.protocol
    result = FileResult(source=str(source), output=out_path if local else fs.unstrip_protocol(out_path))
    bad_file: Any = None

    def on_bad(row) -> None:
        nonlocal bad_file
        if bad_file is None:
            bad_file = fs.open(bad_path, "wb")
        bad_rows_writer(bad_file)(row)

    try:
        try:
            with fs.open(out_path, "wb") as out:
                summary = convert([source], out, to, format=format, options=options, on_bad=on_bad)
        finally:
            if bad_file is not None:
                bad_file.close()
    except LogferryError as e:
        for p in (out_path, bad_path):
            if fs.exists(p):
                fs.rm(p)
        result.output, result.error = None, str(e)
        return result
    if bad_file is not None:
        result.bad_rows_file = bad_path if local else fs.unstrip_protocol(bad_path)
    result.format = next(iter(summary.formats), format)
    result.lines, result.records, result.bad_rows = summary.stats.lines, summary.stats.records, summary.stats.bad
    return result


def convert_files(paths: Iterable[str] | str, output_dir: str, to: str = "parquet", *, client: Any = None,
                  format: str | None = None, options: dict[str, Any] | None = None,
                  scheduler: str = "processes") -> list[FileResult]:
    """Convert every file named by ``paths`` into ``output_dir``, one task per file, on
    ``client`` (a ``distributed.Client``) or else with dask's local ``scheduler``.
    Results come back in input order."""
    from .convert import prepare

    dask = _dask()
    extension = prepare(to).factory.extension  # a bad `to` fails here, before any task
    sources = files(paths)
    names = output_names(sources, extension)
    tasks = [dask.delayed(convert_file, pure=False)(s, output_dir, to, name=n, format=format, options=options)
             for s, n in zip(sources, names, strict=True)]
    if client is not None:
        return list(client.gather(client.compute(tasks)))
    return list(dask.compute(*tasks, scheduler=scheduler))


# --- dataframes ---------------------------------------------------------------------------


def _read(source: str, format: str | None, options: dict[str, Any] | None, on_bad=None):
    from .reader import read

    return read(source, format, options={"originals": False, **(options or {})}, on_bad=on_bad)


def _records(source: str, format: str | None, options: dict[str, Any] | None):
    from .schema import CANONICAL_SCHEMA

    return _read(source, format, options).to_table().select(CANONICAL_SCHEMA.names)


def _bad_rows(source: str, format: str | None, options: dict[str, Any] | None):
    import pyarrow as pa

    from .reader import BAD_ROW_SCHEMA

    rows: list[dict[str, Any]] = []
    for _ in _read(source, format, options, on_bad=lambda b: rows.append(b.as_dict())):
        pass
    return pa.Table.from_pylist(rows, schema=BAD_ROW_SCHEMA)


def _dataframe(part, schema, paths: Iterable[str] | str, format: str | None, options: dict[str, Any] | None):
    """One partition per file: ``part(file, format, options)`` gives its Arrow table of
    ``schema``, turned into Arrow-backed pandas columns."""
    _dask()
    import dask.dataframe as dd
    import pandas as pd

    def partition(source: str, format: str | None, options: dict[str, Any] | None):
        return part(source, format, options).to_pandas(types_mapper=pd.ArrowDtype)

    meta = schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
    return dd.from_map(partition, files(paths), format=format, options=options, meta=meta,
                       enforce_metadata=False)


def read_dataframe(paths: Iterable[str] | str, format: str | None = None,
                   options: dict[str, Any] | None = None):
    """A dask DataFrame of the canonical records of every file named by ``paths``, one
    partition per file, columns as in :data:`logferry.CANONICAL_SCHEMA` (Arrow-backed)."""
    from .schema import CANONICAL_SCHEMA

    return _dataframe(_records, CANONICAL_SCHEMA, paths, format, options)


def bad_rows_dataframe(paths: Iterable[str] | str, format: str | None = None,
                       options: dict[str, Any] | None = None):
    """A dask DataFrame of the bad rows of every file named by ``paths`` (``source_file``,
    ``line_number``, ``raw``, ``reason``): what :func:`read_dataframe` leaves out."""
    from .reader import BAD_ROW_SCHEMA

    return _dataframe(_bad_rows, BAD_ROW_SCHEMA, paths, format, options)
