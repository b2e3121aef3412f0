"""What the fuzz tests share: their bounded settings and strategies for hostile JSON and text.

CI runs each test on a fixed set of examples (derandomized, so a failure repeats) within a deadline
per example: the whole suite stays well under a minute. A longer, random hunt on a workstation:
    FUZZ_EXAMPLES=2000 FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/fuzz
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

OVERRIDE = int(os.environ.get("FUZZ_EXAMPLES", "0"))  # a longer hunt: this many examples for every test
T = TypeVar("T")


def fuzz(examples: int = 60, deadline_ms: int | None = 2000) -> settings:
    """Settings for one fuzz test: `examples` inputs, none taking longer than `deadline_ms` (None: the test
    bounds each example itself, with run_bounded)."""
    return settings(
        max_examples=OVERRIDE or examples,
        deadline=deadline_ms,
        derandomize=not os.environ.get("FUZZ_RANDOM"),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# Text as a hostile peer sends it: any code point, lone surrogates included (what a `\ud800` escape
# decodes to), control characters, very long runs.
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300) | st.sampled_from(
    ["\ud800", "\udfff", "a\ud83d", "\x00", "\u202e", "𝕏" * 50, "٣", "-1", "1e309", "NaN", "9" * 5000]
)
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True, allow_infinity=True)
scalars = st.none() | st.booleans() | numbers | text
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5), max_leaves=20
)


def deeply_nested(depth: int) -> str:
    """JSON nested deeper than a recursive parser's stack."""
    return "[" * depth + "]" * depth


def with_fields(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that have some of `fields` (each with a value of its own strategy, or any JSON), and extra keys."""
    known = st.fixed_dictionaries({}, optional={name: strategy | json_values for name, strategy in fields.items()})
    return st.tuples(known, st.dictionaries(text, json_values, max_size=3)).map(lambda pair: {**pair[1], **pair[0]})


def run_bounded(main: Callable[[], Coroutine[Any, Any, T]], seconds: float = 20.0) -> T:
    """`asyncio.run(main())` in a thread of its own, failing the test if it has not ended after `seconds`
    (a loop that never yields cannot be timed out from inside its own event loop)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, asyncio.run(main())))
        except BaseException as exc:  # handed to the test's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=run, daemon=True, name="fuzz-example")
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"hangs: still running after {seconds:g} s"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
