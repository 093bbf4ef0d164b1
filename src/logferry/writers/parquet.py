"""Parquet: the canonical columns + source_file + line_number.

The original fields are an analytics afterthought here and cost 4x the writing time as a
``map<string, string>`` column (their names vary from file to file, so they cannot be a
fixed struct), so they are written only on request (``include_fields=True``, CLI
``--keep-fields``)."""

from __future__ import annotations

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
    keys = pa.array(names, pa.string()).take(pa.array(np.tile(np.arange(k, dtype=np.int32), n)))
    cols = [s.field(i).cast(pa.string()) for i in range(k)]
    flat = pa.concat_arrays(cols)  # column-major
    order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()  # row-major
    items = flat.take(pa.array(order))
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, keys, items)


class ParquetWriter:
    extension = ".parquet"
    binary = True

    def __init__(
        self, out: BinaryIO, *, compression: str = "zstd", include_fields: bool = False, **_: object
    ):
        self.include_fields = include_fields
        #: whether batches must carry the original fields (else readers may skip them)
        self.needs_originals = include_fields
        self.schema = SCHEMA if include_fields else CANONICAL_SCHEMA
        self._w = pq.ParquetWriter(out, self.schema, compression=compression)

    def write(self, batch: pa.RecordBatch) -> None:
        cols = [batch.column(name) for name in CANONICAL_SCHEMA.names]
        if self.include_fields:
            if "fields" in batch.schema.names:
                cols.append(struct_to_map(batch.column("fields")))
            else:
                cols.append(pa.nulls(batch.num_rows, FIELDS_TYPE))
        self._w.write_batch(pa.RecordBatch.from_arrays(cols, schema=self.schema))

    def close(self) -> None:
        self._w.close()
