"""Backbone metadata: size, cost, ImageNet-1k accuracy, input size and license, and the
filters and sort orders ``zoo list`` and ``zoo compare`` apply to it.

Plugins publish it through ``register`` fields; what no source publishes (params, GFLOPs) is
computed on the meta device by ``zoo info`` or ``zoo compare`` and kept by
``zoo.registry._computed``, so a listing never builds a model.

    >>> parse_count("5.5M")
    5500000
    >>> [r["id"] for r in select(rows, max_params="30M", sort="top1")]
"""

from __future__ import annotations

import math

from zoo.errors import ListingError, PluginError

METADATA = ("params", "gflops", "top1", "top5", "input_size", "license")
SORT_KEYS = ("name", "params", "gflops", "top1")
UNITS = {"K": 10**3, "M": 10**6, "G": 10**9}
_NUMBERS = {"params": int, "gflops": float, "top1": float, "top5": float}


def check_metadata(name: str, fields: dict) -> None:
    """A PluginError when a registered metadata field has the wrong type."""
    for key, kind in _NUMBERS.items():
        value = fields.get(key)
        if value is None:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        if not ok or (kind is int and value != int(value)):
            raise PluginError(f"register('{name}'): {key} must be a number of 0 or more")
        fields[key] = kind(value)
    if fields.get("license") is not None and not isinstance(fields["license"], str):
        raise PluginError(f"register('{name}'): license must be a string")


def parse_count(text: str | float, option: str = "--max-params") -> float:
    """``30M``, ``300K``, ``5.5M``, ``1.2G`` or a plain number, as a number (K, M and G are
    10^3, 10^6 and 10^9); a ListingError naming ``option`` for anything else."""
    raw = str(text).strip()
    scale = UNITS.get(raw[-1:].upper(), 1) if raw else 1
    number = raw[:-1] if scale != 1 else raw
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ListingError(
            f"{option} {raw!r} is not a positive number; give one like 30M, 300K, 5.5M or 25000000"
        )
    return int(value) if value == int(value) else value


def _threshold(value, option: str) -> float | None:
    return None if value is None else parse_count(value, option)


def select(
    rows: list[dict],
    *,
    max_params=None,
    max_gflops=None,
    min_top1=None,
    sort: str | None = None,
) -> list[dict]:
    """``rows`` within the limits, in ``sort`` order: ``top1`` best first, the others smallest
    first, unknown values last. A row whose value is unknown is left out of a filter on it."""
    limits = [
        ("params", _threshold(max_params, "--max-params"), lambda v, t: v <= t),
        ("gflops", _threshold(max_gflops, "--max-gflops"), lambda v, t: v <= t),
        ("top1", _threshold(min_top1, "--min-top1"), lambda v, t: v >= t),
    ]
    if sort is not None and sort not in SORT_KEYS:
        raise ListingError(f"--sort {sort!r}: choose one of {', '.join(SORT_KEYS)}")
    for key, limit, keep in limits:
        if limit is not None:
            rows = [r for r in rows if r.get(key) is not None and keep(r[key], limit)]
    return sort_rows(rows, sort)


def sort_rows(rows: list[dict], sort: str | None) -> list[dict]:
    """Stable: rows that tie keep their order (the registry's precedence)."""
    if sort is None:
        return rows
    if sort == "name":
        return sorted(rows, key=lambda r: r["arch"])
    sign = -1 if sort == "top1" else 1
    known = [r for r in rows if r.get(sort) is not None]
    return sorted(known, key=lambda r: sign * r[sort]) + [r for r in rows if r.get(sort) is None]
