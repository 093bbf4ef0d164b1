"""CSV usage log writer (``--to csv-usage``): the usage-DB transfer files.

A title line (the field names, unquoted, comma-separated), then one data line per
request with **every value quoted** (a ``"`` inside a value is doubled) and ``-`` for
missing values.  Two kinds: the usage log (``dbYYYYMMDD_NNN.csv``, 19 fields) and the
extended log for response reports (``eYYYYMMDD_NNN.csv``; as documented, its title line
names six fields while data lines carry seven -- ``c-ip`` is not in the title).
Dates ``yyyy/mm/dd``, times ``hh:mm:ss``, ``s-elaps``/``c-response`` in milliseconds.
CSV usage input keeps its raw (quoted) values byte for byte.
"""

from __future__ import annotations

from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from . import _text as T

DB_FIELDS = (
    "server", "s-date", "s-time", "c-host", "c-ip", "s-method", "s-protocol", "s-host", "s-ip",
    "s-path", "s-status", "r-status", "s-byte", "r-byte", "l-url", "c-agent", "s-elaps",
    "c-cookie-id", "c-user",
)  # fmt: skip
E_FIELDS = ("server", "s-date", "s-time", "c-host", "c-ip", "s-url", "c-response")
E_TITLE = ("server", "s-date", "s-time", "c-host", "s-url", "c-response")

CSV_ENCODERS: dict[str, T.Encoder] = {
    "server": T.text("site"),
    "s-date": T.strftime("%Y/%m/%d"),
    "s-time": T.strftime("%H:%M:%S"),
    "c-ip": T.text("client_ip"),
    "s-method": T.text("method"),
    "s-protocol": T.text("protocol"),
    "s-host": T.text("host"),
    "s-ip": T.text("server_ip"),
    "s-path": T.text("path"),
    "s-status": T.integer("status"),
    "s-byte": T.integer("bytes_sent"),
    "r-byte": T.integer("bytes_received"),
    "l-url": T.text("referer"),
    "c-agent": T.text("user_agent"),
    "s-elaps": T.rounded_int("duration_ms"),
    "c-cookie-id": T.text("visit_id"),
    "c-user": T.text("username"),
    "s-url": T.text("path"),
    "c-response": T.rounded_int("duration_ms"),
}


class CsvUsageWriter(T.FieldWriter):
    name = "csv-usage"
    same_sources = frozenset({"csv-usage", "csv_usage"})
    default_fields = DB_FIELDS
    encoders = CSV_ENCODERS
    sep = ","
    extension = ".csv"

    def __init__(self, out: BinaryIO, *, kind: str = "db", **kw):
        super().__init__(out, **kw)
        self.kind = kind
        if kind == "e" and not self.fields:
            self.fields = list(E_FIELDS)

    @classmethod
    def field_names(cls) -> list[str]:
        return list(dict.fromkeys([*DB_FIELDS, *E_FIELDS]))

    def value(self, name, batch, raw):
        if raw is not None and name in raw:
            v = raw[name].cast(pa.string())
            return pc.fill_null(v, '"-"') if v.null_count else v
        v = T.replace_chars(super().value(name, batch, None), [('"', '""'), ("\r", " "), ("\n", " ")])
        return f'"{v}"' if isinstance(v, str) else pc.binary_join_element_wise('"', v, '"', "")

    def header(self, fields: list[str]) -> str:
        names = [f.split("#", 1)[0] for f in fields]
        if tuple(names) == E_FIELDS:
            names = list(E_TITLE)
        return ",".join(names) + "\n"
