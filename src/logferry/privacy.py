"""Client-IP privacy before anything leaves the machine: mask to a subnet (/24 for IPv4,
/48 for IPv6 by default) or replace by a keyed hash (HMAC-SHA256, first 16 hex digits).

Work is done on the distinct values of the column only (a log has far fewer distinct
client IPs than lines), then mapped back with a vectorised ``take``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError


def mask_ip(value: str, v4_prefix: int = 24, v6_prefix: int = 48) -> str | None:
    """``203.0.113.77`` -> ``203.0.113.0``; ``2001:db8:1:2::5`` -> ``2001:db8:1::``.
    A value that is not an IP address is dropped (None): it might identify someone."""
    s = value.strip()
    if s.startswith("[") and "]" in s:
        s = s[1 : s.index("]")]
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:
        # "ip:port"
        host = s.rsplit(":", 1)[0] if s.count(":") == 1 else s
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = v4_prefix if ip.version == 4 else v6_prefix
    net = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    return str(net.network_address)


def hash_ip(value: str, key: bytes) -> str:
    return hmac.new(key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def _map_distinct(arr: pa.Array, fn) -> pa.Array:
    if len(arr) == 0:
        return arr
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    values = [None if v is None else fn(v) for v in enc.dictionary.to_pylist()]
    return pa.array(values, pa.string()).take(enc.indices)


class Privacy:
    """``mode``: ``mask`` or ``hash`` (needs ``key``) or ``none``."""

    def __init__(self, mode: str = "none", *, v4_prefix: int = 24, v6_prefix: int = 48,
                 key: bytes | None = None, columns: tuple[str, ...] = ("client_ip",)):
        if mode not in ("none", "mask", "hash"):
            raise ConfigError(f"privacy.ip: unknown mode {mode!r}; choose mask, hash or none")
        if not 0 <= v4_prefix <= 32 or not 0 <= v6_prefix <= 128:
            raise ConfigError("privacy: prefixes must be 0..32 (IPv4) and 0..128 (IPv6)")
        if mode == "hash" and not key:
            raise ConfigError("privacy.ip = 'hash' needs a key (key_env or key_secret)")
        self.mode, self.v4, self.v6, self.key, self.columns = mode, v4_prefix, v6_prefix, key, columns

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.mode == "none":
            return batch
        if self.mode == "mask":
            def fn(v):
                return mask_ip(v, self.v4, self.v6)
        else:
            key = self.key

            def fn(v):
                return hash_ip(v, key)  # type: ignore[arg-type]

        names = batch.schema.names
        cols = list(batch.columns)
        for c in self.columns:
            if c in names:
                i = names.index(c)
                cols[i] = _map_distinct(cols[i], fn)
        # the raw fields would leak the address: scrub the original c-ip style fields too
        if "fields" in names:
            i = names.index("fields")
            cols[i] = self._scrub_fields(cols[i], fn)
        return pa.RecordBatch.from_arrays(cols, schema=batch.schema)

    @staticmethod
    def _scrub_fields(s: pa.StructArray, fn) -> pa.StructArray:
        t = s.type
        if t.num_fields == 0:
            return s
        arrays, names = [], []
        for k in range(t.num_fields):
            name = t.field(k).name
            a = s.field(k)
            low = name.lower()
            if low in ("c-ip", "c_ip", "clientip", "client_ip", "remote_addr", "x-forwarded-for",
                       "remote_host", "remotehost", "ip"):
                a = _map_distinct(a.cast(pa.string()), lambda v: "-" if v in ("-", "") else fn(v))
            arrays.append(a)
            names.append(name)
        return pa.StructArray.from_arrays(arrays, names=names, mask=s.is_null() if s.null_count else None)
