"""The transfer report: what a transfer loaded, what it left out, and how keys were paired."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class TransferReport:
    """What a transfer loaded and what it left out; ``report["coverage"]`` works too."""

    loaded: list[str] = field(default_factory=list)  # model keys filled from the source
    missing: list[str] = field(default_factory=list)  # in the model, not in the source
    unexpected: list[str] = field(default_factory=list)  # in the source, not in the model
    # key -> {"source": shape, "model": shape} for keys both have with different shapes
    shape_mismatched: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # source key -> the model key it became
    coverage: float = 0.0  # fraction of the model's parameter elements that were loaded

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    @property
    def total(self) -> int:
        """The model's tensors: loaded, missing or of another shape."""
        return len(self.loaded) + len(self.missing) + len(self.shape_mismatched)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready builtins, keyed as the fields are."""
        return asdict(self)

    def summary(self) -> str:
        """A few lines for people: counts, coverage, and the first keys of each problem."""
        lines = [
            f"loaded {len(self.loaded)}/{self.total} tensors, coverage {percent(self.coverage)}"
        ]
        if self.shape_mismatched:
            shapes = [
                f"{k} {_shape(v['source'])} -> {_shape(v['model'])}"
                for k, v in self.shape_mismatched.items()
            ]
            lines.append(f"shape mismatched: {preview(shapes)}")
        if self.missing:
            lines.append(f"missing ({len(self.missing)}): {preview(self.missing)}")
        if self.unexpected:
            lines.append(f"unexpected ({len(self.unexpected)}): {preview(self.unexpected)}")
        if self.renamed:
            pairs = [f"{old} -> {new}" for old, new in self.renamed.items()]
            lines.append(f"renamed ({len(self.renamed)}): {preview(pairs, 3)}")
        return "\n".join(lines)


def preview(items: list[str], n: int = 5) -> str:
    """The first ``n`` items, and how many more."""
    shown = ", ".join(items[:n])
    return f"{shown} and {len(items) - n} more" if len(items) > n else shown


def percent(fraction: float) -> str:
    """Rounded down, so a model that missed its head never reads as 100 %."""
    tenths = math.floor(fraction * 1000)
    return "<0.1 %" if tenths == 0 and fraction > 0 else f"{tenths / 10:.1f} %"


def _shape(dims: list[int]) -> str:
    return str(tuple(dims))
