"""Snowplow tracker events from raw collector logs.

Sources: CloudFront collector logs (2012-2019 field sets), Clojure-collector Tomcat
logs (GET and POST ``tp2``, webhooks), and raw Thrift records (``CollectorPayload``,
legacy ``SnowplowRawEvent``; plain, S3-loader gzip, base64 lines, LZO with python-lzo).

>>> stream = read_events("collector.log.gz")      # doctest: +SKIP
>>> for batch in stream: ...                       # pyarrow.RecordBatch of events
>>> stream.stats.events, stream.stats.bad, stream.bad_events   # doctest: +SKIP

Columns follow Snowplow's canonical event model (``event``, ``app_id``, ``platform``,
``collector_tstamp``, ``page_url``, ``se_category``, ``tr_orderid``, ...); see
:data:`EVENTS_SCHEMA`.  Nothing is dropped: every line that yields no event is a bad
event with its raw text and a reason.  :func:`ingest_hook` adds events to a DuckDB
usage database from canonical batches of the ``cloudfront``, ``snowplow-tomcat`` and
``snowplow-thrift`` readers.
"""

from __future__ import annotations

from .events import (
    BAD_SCHEMA,
    EVENTS_SCHEMA,
    EventStats,
    EventStream,
    decode_batch,
    ingest_hook,
    read_events,
)
from .hits import Hit, decode_hit, path_kind
from .protocol import build_event, parse_query, pct_decode

__all__ = [
    "BAD_SCHEMA",
    "EVENTS_SCHEMA",
    "EventStats",
    "EventStream",
    "Hit",
    "build_event",
    "decode_batch",
    "decode_hit",
    "ingest_hook",
    "parse_query",
    "path_kind",
    "pct_decode",
    "read_events",
]
