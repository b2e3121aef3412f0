"""Metric names in a PromQL expression (the subset our dashboards use), and names a /metrics page serves.

metric_names('sum by (le) (rate(tcxhooks_media_transcode_seconds_bucket[$__rate_interval]))')
# {"tcxhooks_media_transcode_seconds_bucket"}
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "inf",
    "nan",
}
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "untyped": ("",),
    "unknown": ("",),
}


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def served_names(exposition: str) -> set[str]:
    """Every sample name a /metrics page can serve, labelled series not yet observed included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in _SAMPLE_SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def grouping_labels(expr: str) -> set[str]:
    """Label names an expression groups by or matches on (`by (...)`, `without (...)`, `{name=...}`)."""
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels.update(name.strip() for name in group.split(",") if name.strip())
    for matchers in re.findall(r"\{([^}]*)\}", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    return labels


def declared_labels(paths: list[Path]) -> dict[str, set[str]]:
    """Label names of every Counter/Gauge/Histogram/Summary created in these modules, by metric name."""
    declared: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("Counter", "Gauge", "Histogram", "Summary")
            ):
                continue
            args = list(node.args) + [k.value for k in node.keywords if k.arg in ("labelnames",)]
            if not args or not isinstance(args[0], ast.Constant):
                continue
            labels = next((a for a in args[2:] if isinstance(a, (ast.List, ast.Tuple))), None)
            names = {e.value for e in labels.elts if isinstance(e, ast.Constant)} if labels else set()
            declared[str(args[0].value)] = names
    return declared


def labels_of(declared: dict[str, set[str]], sample: str) -> set[str]:
    """The labels a sample of a declared metric carries (`le` on histogram buckets)."""
    family = re.sub(r"_(bucket|sum|count)$", "", sample)
    for name in (sample, family, re.sub(r"_total$", "", sample)):
        if name in declared:
            return declared[name] | ({"le"} if sample.endswith("_bucket") else set())
    raise AssertionError(f"{sample} is created in no metrics module")


def metrics_modules(root: Path) -> list[Path]:
    """Every module that creates Prometheus metrics: the platform's and each service's metrics.py."""
    return [root / "src" / "tcxhooks" / "platform" / "metrics.py", *sorted((root / "services").rglob("metrics.py"))]
