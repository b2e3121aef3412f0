"""Reads what PHP CRMs post: form fields with nested names (`data[PHONE_NUMBER]`, `auth[domain]`).

nested([("event", "ONEXTERNALCALLSTART"), ("data[USER_ID]", "11"), ("auth[application_token]", "…")])
→ {"event": "ONEXTERNALCALLSTART", "data": {"USER_ID": "11"}, "auth": {"application_token": "…"}}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_PART = re.compile(r"\[([^\[\]]*)\]")
MAX_DEPTH = 5


def nested(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Builds the nested mapping; a name deeper than five levels, or one that is both a value and a
    mapping, is ignored (what an honest CRM never sends cannot break the handler)."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        head, _, rest = name.partition("[")
        parts = [head] + (_PART.findall("[" + rest) if rest else [])
        if not head or len(parts) > MAX_DEPTH or any(not p for p in parts):
            continue
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if not isinstance(node.get(parts[-1]), dict):
                node[parts[-1]] = value
    return out
