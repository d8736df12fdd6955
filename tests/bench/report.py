"""The table printed at the end and the JSON written to BENCH_OUT."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """`value op bound`, op one of ">=", "<", "<=", "=="."""

    op: str
    bound: float

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return {
            ">=": value >= self.bound,
            "<": value < self.bound,
            "<=": value <= self.bound,
            "==": value == self.bound,
        }[self.op]

    def margin(self, value: float) -> str:
        """How far from the target, as a factor (> 1.00x is better than the target)."""
        if math.isnan(value) or self.op == "==":
            return ""
        if self.op == ">=":
            factor = value / self.bound if self.bound else math.inf
        else:
            factor = self.bound / value if value else math.inf
        return f"{factor:.2f}x"

    def __str__(self) -> str:
        return f"{self.op} {_num(self.bound)}"


@dataclass(frozen=True)
class Row:
    key: str
    value: float
    unit: str
    baseline: str = ""  # e.g. "raw JetStream publish 41,200 ev/s"
    target: Target | None = None


def _num(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    header = ("figure", "value", "baseline / ceiling (same run)", "target", "vs target", "")
    lines = [header]
    for row in rows:
        status, margin = "", ""
        if row.target is not None:
            status = "ok" if row.target.met(row.value) else "MISSED"
            margin = row.target.margin(row.value)
        value = f"{_num(row.value)} {row.unit}".strip()
        target = "" if row.target is None else f"{row.target} {row.unit}".strip()
        lines.append((row.key, value, row.baseline, target, margin, status))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def missed(rows: list[Row]) -> list[str]:
    return [r.key for r in rows if r.target is not None and not r.target.met(r.value)]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None  # JSON has no NaN
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, set | frozenset):  # the config's BENCH_PHASES
        return sorted(_clean(v) for v in value)
    return value


def write_json(path: str, results: dict[str, Any], rows: list[Row]) -> Path:
    document = dict(results)
    document["targets"] = {r.key: str(r.target) for r in rows if r.target is not None}
    document["missed"] = missed(rows)
    out = Path(path)
    out.write_text(json.dumps(_clean(document), indent=2, sort_keys=True) + "\n")
    return out
