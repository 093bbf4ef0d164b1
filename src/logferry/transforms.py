"""Row filters (``--where``) and field selection (``--fields``) on canonical batches.

Filter grammar
--------------

An expression is one or more *conditions* joined by ``and`` (case-insensitive)::

    expr       := condition ( "and" condition )*
    condition  := COLUMN OP VALUE
                | COLUMN "in" LOW ".." HIGH          (inclusive range)
                | COLUMN "in" "(" VALUE ("," VALUE)* ")"    (one of)
    OP         := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "^=" (starts with)
                | "~=" (contains)

``COLUMN`` is any canonical column (``status``, ``site``, ``host``, ``path``,
``timestamp``, ``method``, ``client_ip``, ``bytes_sent``, ``duration_ms``, ...).
Values may be bare words or quoted with ``'`` or ``"`` (needed when they contain spaces).
Special values:

* ``status=5xx`` / ``status!=4xx``: a status *class* (``1xx`` .. ``5xx``);
  ``status in 400..499`` an inclusive range.
* timestamps are ISO 8601 (``2024-03-01``, ``2024-03-01T10:00:00Z``,
  ``2024-03-01T10:00:00+02:00``); without an offset they are UTC.
* ``-`` or ``null`` compares with the missing value: ``username=-`` keeps rows without a
  user, ``username!=-`` rows with one.

Rows where the compared column is null never match an ordering or equality condition
(except ``=-``).  Examples::

    status=5xx
    status>=500 and path^=/api
    site=W3SVC1 and timestamp>=2024-03-01T00:00:00Z and timestamp<2024-03-02
    status in 400..499 and method in (GET, HEAD)

Everything is evaluated with ``pyarrow.compute`` on whole batches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC

import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConversionError
from .schema import CANONICAL, META

FILTERABLE: dict[str, pa.DataType] = {**CANONICAL, **META}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>\.\.|==|!=|<=|>=|\^=|~=|=|<|>|\(|\)|,)
      | (?P<word>[^\s=!<>^~(),"']+?(?=\.\.|[\s=!<>^~(),]|$)|[^\s=!<>^~(),"']+)
    )""",
    re.VERBOSE,
)

_CMP_OPS = {"=", "==", "!=", "<", "<=", ">", ">=", "^=", "~="}
_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)


def _tokenize(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    s = expr.strip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ConversionError(f"--where: cannot parse {expr!r} at position {pos}: {s[pos:]!r}")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            out.append(("str", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        elif m.group("word") is not None:
            out.append(("word", m.group("word")))
        # trailing whitespace only
        while pos < len(s) and s[pos].isspace():
            pos += 1
    return out


def _parse_ts(text: str, expr: str) -> pa.Scalar:
    from .errors import ConfigError
    from .values import parse_time

    try:
        dt = parse_time(text, "")
    except ConfigError:
        raise ConversionError(
            f"--where {expr!r}: {text!r} is not an ISO 8601 time (e.g. 2024-03-01T00:00:00Z)"
        ) from None
    return pa.scalar(dt.astimezone(UTC), pa.timestamp("us", tz="UTC"))


def _value(col: str, text: str, expr: str) -> pa.Scalar:
    typ = FILTERABLE[col]
    if pa.types.is_timestamp(typ):
        return _parse_ts(text, expr)
    if pa.types.is_integer(typ):
        try:
            return pa.scalar(int(text), typ)
        except (ValueError, OverflowError, pa.ArrowInvalid):
            raise ConversionError(f"--where {expr!r}: {col} needs an integer, got {text!r}") from None
    if pa.types.is_floating(typ):
        try:
            return pa.scalar(float(text), typ)
        except ValueError:
            raise ConversionError(f"--where {expr!r}: {col} needs a number, got {text!r}") from None
    return pa.scalar(text, pa.string())


def _is_null_word(tok: tuple[str, str]) -> bool:
    return tok[0] == "word" and tok[1].lower() in ("-", "null")


Pred = Callable[[pa.RecordBatch], pa.Array]


def _condition(col: str, op: str, tok: tuple[str, str], expr: str) -> Pred:
    typ = FILTERABLE[col]
    text = tok[1]
    if _is_null_word(tok):
        if op in ("=", "=="):
            return lambda b: pc.is_null(b.column(col))
        if op == "!=":
            return lambda b: pc.is_valid(b.column(col))
        raise ConversionError(f"--where {expr!r}: only = and != can compare with '-' (missing)")
    if col == "status" and tok[0] == "word" and (m := _STATUS_CLASS.match(text)):
        lo, hi = int(m.group(1)) * 100, int(m.group(1)) * 100 + 99
        if op in ("=", "=="):
            return lambda b: _between(b.column(col), pa.scalar(lo, typ), pa.scalar(hi, typ))
        if op == "!=":
            return lambda b: pc.invert(_between(b.column(col), pa.scalar(lo, typ), pa.scalar(hi, typ)))
        raise ConversionError(f"--where {expr!r}: a status class like {text} works only with = or !=")
    if op in ("^=", "~="):
        if not pa.types.is_string(typ):
            raise ConversionError(f"--where {expr!r}: {op} needs a text column, {col} is {typ}")
        if op == "^=":
            return lambda b: pc.starts_with(b.column(col), pattern=text)
        return lambda b: pc.match_substring(b.column(col), pattern=text)
    val = _value(col, text, expr)
    fn = {"=": pc.equal, "==": pc.equal, "!=": pc.not_equal, "<": pc.less,
          "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal}[op]
    return lambda b: fn(b.column(col), val)


def _between(arr: pa.Array, lo: pa.Scalar, hi: pa.Scalar) -> pa.Array:
    return pc.and_(pc.greater_equal(arr, lo), pc.less_equal(arr, hi))


def _parse(expr: str) -> list[Pred]:
    toks = _tokenize(expr)
    if not toks:
        raise ConversionError("--where: empty expression")
    preds: list[Pred] = []
    i = 0

    def need(kind: str | None = None) -> tuple[str, str]:
        nonlocal i
        if i >= len(toks):
            raise ConversionError(f"--where {expr!r}: unexpected end of expression")
        t = toks[i]
        if kind and t[0] != kind:
            raise ConversionError(f"--where {expr!r}: expected a {kind}, got {t[1]!r}")
        i += 1
        return t

    while True:
        kind, col = need()
        if kind != "word":
            raise ConversionError(f"--where {expr!r}: expected a column name, got {col!r}")
        if col not in FILTERABLE:
            raise ConversionError(
                f"--where {expr!r}: unknown column {col!r}; valid columns: {', '.join(FILTERABLE)}"
            )
        op_tok = need()
        op = op_tok[1]
        if op_tok[0] == "word" and op.lower() == "in":
            first = need()
            if first == ("op", "("):
                vals: list[tuple[str, str]] = []
                while True:
                    v = need()
                    if v[0] == "op":
                        raise ConversionError(f"--where {expr!r}: expected a value, got {v[1]!r}")
                    vals.append(v)
                    sep = need("op")
                    if sep[1] == ")":
                        break
                    if sep[1] != ",":
                        raise ConversionError(f"--where {expr!r}: expected ',' or ')', got {sep[1]!r}")
                subs = [_condition(col, "=", v, expr) for v in vals]

                def any_of(b: pa.RecordBatch, subs: list[Pred] = subs) -> pa.Array:
                    m = subs[0](b)
                    for s in subs[1:]:
                        m = pc.or_kleene(m, s(b))
                    return m

                preds.append(any_of)
            else:
                if first[0] == "op":
                    raise ConversionError(f"--where {expr!r}: expected a range LOW..HIGH after 'in'")
                dots = need("op")
                if dots[1] != "..":
                    raise ConversionError(f"--where {expr!r}: expected '..' in range, got {dots[1]!r}")
                last = need()
                lo, hi = _value(col, first[1], expr), _value(col, last[1], expr)
                preds.append(lambda b, c=col, lo=lo, hi=hi: _between(b.column(c), lo, hi))
        elif op_tok[0] == "op" and op in _CMP_OPS:
            val_tok = need()
            if val_tok[0] == "op":
                raise ConversionError(f"--where {expr!r}: expected a value after {op}, got {val_tok[1]!r}")
            preds.append(_condition(col, op, val_tok, expr))
        else:
            raise ConversionError(
                f"--where {expr!r}: expected an operator (=, !=, <, <=, >, >=, ^=, ~=, in) "
                f"after {col!r}, got {op!r}"
            )
        if i >= len(toks):
            break
        conj = need()
        if not (conj[0] == "word" and conj[1].lower() == "and"):
            raise ConversionError(f"--where {expr!r}: expected 'and' between conditions, got {conj[1]!r}")
    return preds


def compile_where(expr: str) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """Compile a ``--where`` expression (see the module doc) into a batch filter.

    Raises :class:`~logferry.errors.ConversionError` for a bad expression, at compile
    time -- before any data is read or written.
    """
    preds = _parse(expr)

    def apply(batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.num_rows == 0:
            return batch
        mask = preds[0](batch)
        for p in preds[1:]:
            mask = pc.and_kleene(mask, p(batch))
        return batch.filter(pc.fill_null(mask, False))

    apply.expression = expr  # type: ignore[attr-defined]
    return apply


# --------------------------------------------------------------------------- fields

def valid_fields(target_format: str) -> list[str]:
    """Field names ``--fields`` accepts for ``target_format``."""
    from .writers import writer_factory

    f = writer_factory(target_format)
    names = getattr(f, "field_names", None)
    if names is None:
        return [*CANONICAL, *META]
    return list(names() if callable(names) else names)


def validate_fields(names: Sequence[str], target_format: str | None, valid: Sequence[str] | None = None
                    ) -> list[str]:
    """Check a ``--fields`` list against what ``target_format`` can write (or against
    ``valid``, the names a caller selects from).

    Returns the cleaned list; unknown or duplicate names raise ConversionError listing the
    valid names.
    """
    cleaned = [n.strip() for n in names if n.strip()]
    if not cleaned:
        raise ConversionError("--fields: no field names given")
    if valid is None:
        valid = valid_fields(target_format)
    unknown = [n for n in cleaned if n not in valid]
    if unknown:
        to = f" for --to {target_format}" if target_format else ""
        raise ConversionError(
            f"--fields: unknown field(s) {', '.join(map(repr, unknown))}{to}; valid fields: {', '.join(valid)}"
        )
    dup = sorted({n for n in cleaned if cleaned.count(n) > 1})
    if dup:
        raise ConversionError(f"--fields: field(s) given twice: {', '.join(dup)}")
    return cleaned


def job_fields(names: Sequence[str]) -> list[str]:
    """A shipping job's ``fields`` checked: columns of the canonical record (the engine
    selects them before encoding, whatever the output format)."""
    return validate_fields(names, None, [*CANONICAL, *META])


def select_fields(batch: pa.RecordBatch, names: Sequence[str]) -> pa.RecordBatch:
    """Keep only ``names`` (in that order) of a batch's columns.

    Unknown names raise ConversionError listing the batch's columns.
    """
    have = batch.schema.names
    unknown = [n for n in names if n not in have]
    if unknown:
        raise ConversionError(
            f"--fields: unknown field(s) {', '.join(map(repr, unknown))}; valid fields: {', '.join(have)}"
        )
    return pa.RecordBatch.from_arrays([batch.column(n) for n in names], names=list(names))
