"""Parquet: the canonical columns + source_file + line_number.

The original fields are an analytics afterthought here and cost 4x the writing time as a
``map<string, string>`` column (their names vary from file to file, so they cannot be a
fixed struct), so they are written only on request (``include_fields=True``, CLI
``--keep-fields``)."""

from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..schema import CANONICAL_SCHEMA

FIELDS_TYPE = pa.map_(pa.string(), pa.string())
SCHEMA = CANONICAL_SCHEMA.append(pa.field("fields", FIELDS_TYPE))


def struct_to_map(s: pa.StructArray) -> pa.MapArray:
    """Struct of string fields -> map array, vectorised (no per-row Python)."""
    n, names = len(s), [s.type.field(i).name for i in range(s.type.num_fields)]
    k = len(names)
    if k == 0:
        return pa.array([[]] * n, FIELDS_TYPE)
    cols = [s.field(i).cast(pa.string()) for i in range(k)]
    flat = pa.concat_arrays(cols)  # column-major
    order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()  # row-major
    # a null member is a field the line lacks (another line of the batch has it): no entry,
    # so the map does not depend on where batches begin
    have = np.column_stack([c.is_valid().to_numpy(zero_copy_only=False) for c in cols]).ravel()
    keys = pa.array(names, pa.string()).take(pa.array(np.tile(np.arange(k, dtype=np.int32), n)[have]))
    items = flat.take(pa.array(order[have]))
    offsets = pa.array(np.concatenate([[0], np.cumsum(have.reshape(n, k).sum(axis=1))]).astype(np.int32))
    return pa.MapArray.from_arrays(offsets, keys, items)


#: rows per row group: batches are gathered up to this many (readers prefer row groups of
#: 100k+ rows to one per reader batch; some 40 MB of canonical rows in memory) ...
ROW_GROUP_ROWS = 128 * 1024
#: ... or up to this many bytes of Arrow data, whichever comes first (long rows, or the
#: original fields kept, must not make the buffer grow with them)
ROW_GROUP_BYTES = 32 << 20
#: columns with few distinct values: dictionary-encoded (trying it on free text such as
#: paths or request ids costs time and gives nothing back).  User agents and referers
#: repeat heavily in real traffic: as a dictionary they cost a third less writing time
#: than as zstd-compressed text, and when a row group's values are all distinct the
#: writer falls back to plain encoding at about the same cost
DICTIONARY_COLUMNS = [
    "server_ip", "server_port", "site", "host", "method", "protocol", "status",
    "username", "cache_status", "edge_location", "visit_id", "user_id", "customer_id", "source_file",
    "user_agent", "referer",
]
#: numbers as deltas or split bytes rather than plain values: line numbers and times step
#: by little from row to row, sizes and client ports fit in a few bits each, and the bytes
#: of doubles compress far better one byte position at a time.  Both encodings are part of
#: the Parquet format (Arrow, DuckDB, Spark, Polars read them); they leave zstd less to do
#: and make files smaller (on CloudFront rows: a fifth fewer writing instructions, files a
#: sixth smaller)
COLUMN_ENCODING = {
    "timestamp": "DELTA_BINARY_PACKED", "line_number": "DELTA_BINARY_PACKED",
    "bytes_sent": "DELTA_BINARY_PACKED", "bytes_received": "DELTA_BINARY_PACKED",
    "client_port": "DELTA_BINARY_PACKED",
    "duration_ms": "BYTE_STREAM_SPLIT", "ttfb_ms": "BYTE_STREAM_SPLIT",
}
#: no min/max statistics for long free text and for identifiers with many values: a row
#: group (a stretch of time) holds such values from all over their range, so its min/max
#: rarely lets a query skip it, and computing them compares every value (string
#: statistics cost a fifth of the writing time)
NO_STATISTICS = {
    "path", "query", "user_agent", "referer", "request_id", "fields",
    "client_ip", "server_ip", "username", "visit_id", "user_id", "customer_id",
}


def selection_bytes(table: pa.Table) -> bytes:
    """A field selection (any columns, in their order) as one Parquet file, the original
    fields as a map column as the writer writes them (the writer proper writes the whole
    canonical schema)."""
    i = table.schema.get_field_index("fields")
    if i >= 0 and pa.types.is_struct(table.schema.field(i).type):
        table = table.set_column(i, "fields", struct_to_map(table.column(i).combine_chunks()))
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


class ParquetWriter:
    extension = ".parquet"
    binary = True
    #: how shipping writes a field selection (``fields`` of a job)
    selection = staticmethod(selection_bytes)

    def __init__(
        self, out: BinaryIO, *, compression: str = "zstd", include_fields: bool = False, **_: object
    ):
        self.include_fields = include_fields
        #: whether batches must carry the original fields (else readers may skip them)
        self.needs_originals = include_fields
        self.schema = SCHEMA if include_fields else CANONICAL_SCHEMA
        self._w = pq.ParquetWriter(
            out, self.schema, compression=compression, use_dictionary=DICTIONARY_COLUMNS,
            column_encoding=COLUMN_ENCODING,
            write_statistics=[n for n in self.schema.names if n not in NO_STATISTICS],
        )
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self._bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        cols = [batch.column(name) for name in CANONICAL_SCHEMA.names]
        if self.include_fields:
            if "fields" in batch.schema.names:
                cols.append(struct_to_map(batch.column("fields")))
            else:
                cols.append(pa.nulls(batch.num_rows, FIELDS_TYPE))
        out = pa.RecordBatch.from_arrays(cols, schema=self.schema)
        self._pending.append(out)
        self._rows += out.num_rows
        self._bytes += out.nbytes
        if self._rows >= ROW_GROUP_ROWS or self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._w.write_table(pa.Table.from_batches(self._pending, self.schema), row_group_size=self._rows)
        self._pending, self._rows, self._bytes = [], 0, 0

    def close(self) -> None:
        self._flush()
        self._w.close()
