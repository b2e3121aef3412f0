"""A small real OData v4 query engine for XAPI collections: $filter, $orderby, $top, $skip, $select, $count.

$filter supports `eq ne gt ge lt le`, `and`, `or`, `not`, parentheses, and literals: numbers, 'strings'
(quotes doubled inside), true/false/null and unquoted date-times (2025-11-25T18:45:00Z).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


class ODataError(ValueError):
    """A bad query option; the server answers 400 with this message."""


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<paren>[()])
    | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
    )""", re.VERBOSE)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


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
            raise ODataError(f"The query specified in the URI is not valid. Syntax error at position {pos} "
                             f"in '{text}'.")
        kind = match.lastgroup or ""
        out.append(_Tok(kind, match.group(kind)))
        pos = match.end()
    return out


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


MAX_FILTER = 4000  # characters
MAX_DEPTH = 50  # nested parentheses / `not`


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

    def _peek_word(self, *words: str) -> bool:
        return self.i < len(self.toks) and self.toks[self.i].kind == "word" and self.toks[self.i].text.lower() in words

    def _next(self) -> _Tok:
        if self.i >= len(self.toks):
            raise ODataError("Syntax error: $filter ends too early.")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek_word("or"):
            self.i += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._peek_word("and"):
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
        if self._peek_word("not"):
            self.i += 1
            inner = self._unary()
            return lambda row: not inner(row)
        tok = self._next()
        if tok.kind == "paren" and tok.text == "(":
            inner = self._or()
            close = self._next()
            if close.text != ")":
                raise ODataError("Syntax error: ')' expected in $filter.")
            return inner
        if tok.kind != "word" or tok.text in _OPS:
            raise ODataError(f"Syntax error: property name expected, found '{tok.text}'.")
        name = tok.text
        if name not in self.fields:
            raise ODataError(f"Could not find a property named '{name}'.")
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
                    return compare(_parse_datetime(field), value)
                if isinstance(value, str) and not isinstance(field, str):
                    return False
                return bool(compare(field, value))
            except (TypeError, ValueError):
                return False
        return predicate

    def _literal(self) -> tuple[Any, bool]:
        tok = self._next()
        if tok.kind == "string":
            return tok.text[1:-1].replace("''", "'"), False
        if tok.kind == "number":
            return (float(tok.text) if "." in tok.text else int(tok.text)), False
        if tok.kind == "datetime":
            try:
                return _parse_datetime(tok.text), True
            except ValueError:
                raise ODataError(f"Bad date-time literal '{tok.text}'.") from None
        if tok.kind == "word" and tok.text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.text.lower()], False
        raise ODataError(f"Syntax error: literal expected, found '{tok.text}'.")


def _int_option(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise ODataError(f"Invalid value '{raw}' for {name} query option found. The {name} query option requires "
                         "a non-negative integer value.")
    return int(raw)


def apply(rows: Sequence[Row], query: Mapping[str, str],
          fields: Sequence[str]) -> tuple[list[dict[str, Any]], int | None]:
    """Filters, orders, pages and projects `rows`; returns (value, count or None when $count is not asked)."""
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
        out = [{n: row.get(n) for n in names} for row in out]
    return out, count
