"""JSON parsing shared by the JSON-lines readers (nginx/Traefik/Caddy/Cloudflare JSON,
cdn-json, logferry's own jsonl) and the Snowplow tracker POST bodies.

JSON text may hold ``\\uXXXX`` escapes of lone UTF-16 surrogates (``"\\udfff"``, which
any visitor can put in a user agent or a tracker payload).  ``json.loads`` accepts them
and returns strings that cannot be encoded as UTF-8, so Arrow, DuckDB and every writer
would fail on them.  :func:`loads` replaces each lone surrogate with U+FFFD and says how
many it replaced, so the reader keeps the row and counts the values as conversion
errors.  Only text holding such an escape is walked (a regular-expression check first).
"""

from __future__ import annotations

import json
import re
from typing import Any

#: ``\\uD800``-``\\uDFFF`` escapes (the only way JSON text can hold a surrogate)
_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def loads(text: str | bytes) -> tuple[Any, int]:
    """``json.loads(text)`` with lone surrogates replaced: ``(value, replaced)``.

    Raises what ``json.loads`` raises (``ValueError``, ``RecursionError``)."""
    obj = json.loads(text)
    probe = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if "\\u" not in probe or not _ESCAPE.search(probe):
        return obj, 0
    return clean(obj)


def clean(v: Any) -> tuple[Any, int]:
    """``v`` (a parsed JSON value) with every lone surrogate in its strings and keys
    replaced by U+FFFD, and the number of values (strings or keys) that held one."""
    if isinstance(v, str):
        if _SURROGATE.search(v) is None:
            return v, 0
        return _SURROGATE.sub(REPLACEMENT, v), 1
    if isinstance(v, list):
        n = 0
        out = []
        for x in v:
            x, k = clean(x)
            out.append(x)
            n += k
        return out, n
    if isinstance(v, dict):
        n = 0
        d = {}
        for key, x in v.items():
            key, k1 = clean(key)
            x, k2 = clean(x)
            d[key] = x
            n += k1 + k2
        return d, n
    return v, 0
