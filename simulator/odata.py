"""The simulator's one OData v4 layer (docs/3cx.md §5.1): query options, function arguments, value formats, errors.

    value, count = apply(rows, request.query, FIELDS)          # $filter $orderby $top $skip $select $count
    args = call_args("Pbx.GetCallLogData(periodFrom=…,…)", "GetCallLogData")
    iso(moment), duration(seconds)                              # Edm.DateTimeOffset, Edm.Duration as 3CX writes them
    return error_response(400, "The query specified in the URI is not valid.")

$filter supports `eq ne gt ge lt le`, `and`, `or`, `not`, parentheses, `startswith`/`endswith`/`contains(Field,'x')`
and literals: numbers, 'strings' (quotes doubled inside), true/false/null and unquoted date-times
(2025-11-25T18:45:00Z).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]
OPTIONS = frozenset({"$filter", "$orderby", "$top", "$skip", "$select", "$count", "$expand", "$search"})


class ODataError(ValueError):
    """A bad query option or function call; the server answers 400 with this message."""


def error_response(status: int, message: str, code: str = "") -> web.Response:
    """An OData error object, as XAPI answers every failure (docs/3cx.md §5.1)."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


# --- values ----------------------------------------------------------------------------------


def iso(moment: float | dt.datetime, zone: dt.tzinfo = dt.UTC, timespec: str = "seconds") -> str:
    """Edm.DateTimeOffset in `zone` (UTC written `Z`), to the second unless `timespec` says otherwise."""
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(moment, dt.UTC)
    return moment.astimezone(zone).isoformat(timespec=timespec).replace("+00:00", "Z")


def duration(seconds: float) -> str:
    """Edm.Duration as 3CX reports write it: PT8M42S, PT30.7S, PT1H2M3S, P1DT2H."""
    seconds = max(0.0, round(seconds, 1))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = (
        (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "") + (f"{secs:g}S" if secs else "")
    )
    return ("P" + (f"{int(days)}D" if days else "") + "T" + time) if time else (f"P{int(days)}D" if days else "PT0S")


def parse_datetime(text: str) -> dt.datetime:
    """An Edm.DateTimeOffset literal; a value without an offset is UTC."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# --- function calls --------------------------------------------------------------------------

_ARG = re.compile(r"\s*(\w+)\s*=\s*('(?:[^']|'')*'|[^,]*)\s*(?:,|$)")


def call_args(text: str, function: str) -> dict[str, str]:
    """`Pbx.Name(a=1,b='x')` → {"a": "1", "b": "x"}; ODataError if it is not that function or unreadable."""
    prefix = f"Pbx.{function}("
    if not text.startswith(prefix) or not text.endswith(")"):
        raise ODataError(f"unknown function {text!r}")
    inner = text[len(prefix) : -1]
    args: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        match = _ARG.match(inner, pos)
        if match is None or match.end() == pos:
            raise ODataError(f"bad arguments in {text!r}")
        value = match.group(2).strip()
        args[match.group(1)] = value[1:-1].replace("''", "'") if value.startswith("'") else value
        pos = match.end()
    return args


def moment_arg(args: Mapping[str, str], name: str) -> float:
    """A required Edm.DateTimeOffset argument of a function call, as unix seconds."""
    if name not in args:
        raise ODataError(f"The {name} field is required.")
    try:
        return parse_datetime(args[name]).timestamp()
    except ValueError:
        raise ODataError(f"The value '{args[name]}' is not valid for {name}.") from None


def zone_arg(text: str) -> dt.tzinfo:
    """A time-zone argument (`clientTimeZone`): UTC, an offset (+03:00) or an IANA name."""
    if text in ("", "UTC", "Z"):
        return dt.UTC
    offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if offset:
        sign = 1 if offset.group(1) == "+" else -1
        return dt.timezone(sign * dt.timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3))))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ODataError(f"unknown clientTimeZone {text!r}") from None


def key_arg(text: str) -> int | str:
    """An entity key: `17` → 17 (Id); `Number='101'` → '101'."""
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"Number='((?:[^']|'')*)'", text)
    if match is None:
        raise ODataError(f"bad key {text!r}")
    return match.group(1).replace("''", "'")


# --- $filter ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<paren>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_/.]*)
    )""",
    re.VERBOSE,
)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "startswith": lambda a, b: a.startswith(b),
    "endswith": lambda a, b: a.endswith(b),
    "contains": lambda a, b: b in a,
}
MAX_FILTER = 4000  # characters
MAX_DEPTH = 50  # nested parentheses / `not`


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ODataError(
                f"The query specified in the URI is not valid. Syntax error at position {pos} in '{text}'."
            )
        kind = match.lastgroup or ""
        out.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str, fields: Sequence[str]) -> None:
        if len(text) > MAX_FILTER:
            raise ODataError(f"The $filter is longer than {MAX_FILTER} characters.")
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        self.fields = set(fields)

    def parse(self) -> Predicate:
        if not self.toks:
            raise ODataError("The $filter query option is empty.")
        pred = self._or()
        if self.i != len(self.toks):
            raise ODataError(f"Syntax error: unexpected '{self.toks[self.i].text}' in $filter.")
        return pred

    def _peek(self, kind: str, *texts: str) -> bool:
        if self.i >= len(self.toks) or self.toks[self.i].kind != kind:
            return False
        return not texts or self.toks[self.i].text.lower() in texts

    def _next(self) -> _Tok:
        if self.i >= len(self.toks):
            raise ODataError("Syntax error: $filter ends too early.")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _expect(self, text: str) -> None:
        if self._next().text != text:
            raise ODataError(f"Syntax error: '{text}' expected in $filter.")

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek("word", "or"):
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._peek("word", "and"):
            self.i += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def _unary(self) -> Predicate:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ODataError(f"The $filter nests deeper than {MAX_DEPTH} levels.")
        try:
            return self._unary_inner()
        finally:
            self.depth -= 1

    def _unary_inner(self) -> Predicate:
        if self._peek("word", "not"):
            self.i += 1
            inner = self._unary()
            return lambda row: not inner(row)
        tok = self._next()
        if tok.text == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if tok.kind == "word" and tok.text in _FUNCTIONS and self._peek("paren", "("):
            return self._function(_FUNCTIONS[tok.text])
        if tok.kind != "word" or tok.text in _OPS:
            raise ODataError(f"Syntax error: property name expected, found '{tok.text}'.")
        name = self._field(tok)
        op = self._next().text.lower()
        if op not in _OPS:
            raise ODataError(f"Syntax error: unknown operator '{op}'.")
        value, is_datetime = self._literal()
        compare = _OPS[op]

        def predicate(row: Row) -> bool:
            field = row.get(name)
            if value is None or field is None:
                return compare(field, value) if op in ("eq", "ne") else False
            try:
                if is_datetime and isinstance(field, str):
                    return compare(parse_datetime(field), value)
                if isinstance(value, str) and not isinstance(field, str):
                    return False
                return bool(compare(field, value))
            except (TypeError, ValueError):
                return False

        return predicate

    def _function(self, function: Callable[[str, str], bool]) -> Predicate:
        self._expect("(")
        name = self._field(self._next())
        self._expect(",")
        value, _ = self._literal()
        self._expect(")")
        text = str(value)
        return lambda row: row.get(name) is not None and function(str(row.get(name)), text)

    def _field(self, tok: _Tok) -> str:
        if tok.kind != "word":
            raise ODataError(f"Syntax error: property name expected, found '{tok.text}'.")
        if tok.text not in self.fields:
            raise ODataError(f"Could not find a property named '{tok.text}'.")
        return tok.text

    def _literal(self) -> tuple[Any, bool]:
        tok = self._next()
        if tok.kind == "string":
            return tok.text[1:-1].replace("''", "'"), False
        if tok.kind == "number":
            return (float(tok.text) if "." in tok.text else int(tok.text)), False
        if tok.kind == "datetime":
            try:
                return parse_datetime(tok.text), True
            except ValueError:
                raise ODataError(f"Bad date-time literal '{tok.text}'.") from None
        if tok.kind == "word" and tok.text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.text.lower()], False
        raise ODataError(f"Syntax error: literal expected, found '{tok.text}'.")


# --- the other options -------------------------------------------------------------------------


def _int_option(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise ODataError(
            f"Invalid value '{raw}' for {name} query option found. The {name} query option requires "
            "a non-negative integer value."
        )
    return int(raw)


def apply(
    rows: Sequence[Row], query: Mapping[str, str], fields: Sequence[str], short: bool = False
) -> tuple[list[dict[str, Any]], int | None]:
    """Filters, orders, pages and projects `rows`; returns (value, count or None when $count is not asked).

    `short` pages as if the last row did not exist while the count still includes it (a PBX answering short).
    Expanded navigation properties stay in rows whatever `$select` names, as in OData v4.
    """
    unknown = sorted(name for name in query if name.startswith("$") and name not in OPTIONS)
    if unknown:
        raise ODataError(f"The query parameter '{unknown[0]}' is not supported.")
    selected: list[Row] = list(rows)
    if query.get("$filter"):
        predicate = _Parser(query["$filter"], fields).parse()
        selected = [row for row in selected if predicate(row)]
    if query.get("$orderby"):
        for clause in reversed([c.strip() for c in query["$orderby"].split(",") if c.strip()]):
            parts = clause.split()
            direction = parts[1].lower() if len(parts) == 2 else "asc"
            if len(parts) > 2 or parts[0] not in fields or direction not in ("asc", "desc"):
                raise ODataError(f"Invalid $orderby clause '{clause}'.")
            name, descending = parts[0], direction == "desc"
            selected.sort(key=lambda row: (row.get(name) is not None, row.get(name)), reverse=descending)
    count = len(selected) if query.get("$count", "").lower() == "true" else None
    if short:
        selected = selected[:-1]
    skip, top = _int_option(query, "$skip"), _int_option(query, "$top")
    if skip:
        selected = selected[skip:]
    if top is not None:
        selected = selected[:top]
    out = [dict(row) for row in selected]
    if query.get("$select"):
        names = [n.strip() for n in query["$select"].split(",") if n.strip()]
        unknown = [n for n in names if n not in fields]
        if unknown:
            raise ODataError(f"Could not find a property named '{unknown[0]}'.")
        expanded = [n.strip() for n in query.get("$expand", "").split(",") if n.strip()]
        out = [{**{n: row.get(n) for n in names}, **{n: row[n] for n in expanded if n in row}} for row in out]
    return out, count
