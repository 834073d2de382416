"""Which backbones a bake-off runs: names and patterns expanded through the registry with
``zoo list``'s filters, held to ``--limit``, each with the weights file it needs, found on
this machine or not (a bake-off never downloads: a missing file skips that backbone)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zoo.errors import CompareError
from zoo.registry import Backbone, get_registry, list_backbones

GLOB = "*?["


@dataclass
class Entry:
    """One backbone of a bake-off, with the weights it will start from."""

    backbone: Backbone
    tag: str | None  # the weights tag, the one named or the default; None: none published
    weights: Path | None = None  # the local file of that tag
    skipped: str | None = None  # why it cannot run; None when it can

    @property
    def name(self) -> str:
        """What ``finetune`` is given: ``SOURCE:ARCH.TAG``."""
        return f"{self.backbone.id}.{self.tag}" if self.tag else self.backbone.id

    @property
    def folder(self) -> str:
        """Its run directory's name inside the bake-off's folder."""
        return self.name.replace(":", "-")


def plan(patterns: list[str], filters: dict, limit: int) -> list[Entry]:
    """Every backbone ``patterns`` name, once, in order, with its weights located; a
    CompareError when none matches, more than ``limit`` do, or none has its weights here."""
    if not patterns:
        raise CompareError("name at least one backbone or pattern: zoo compare 'resnet*' ...")
    found = expand(patterns, filters)
    if not found:
        raise CompareError(
            f"no backbone matches {' '.join(patterns)}{_with(filters)}; see `zoo list`"
        )
    if len(found) > limit:
        raise CompareError(
            f"{len(found)} backbones match {' '.join(patterns)}{_with(filters)}, more than "
            f"--limit {limit}; narrow the patterns, filter (--max-params, --min-top1, ...) or "
            "raise --limit"
        )
    entries = [locate(backbone, tag) for backbone, tag in found]
    if all(e.skipped for e in entries):
        reasons = "; ".join(f"{e.name}: {e.skipped}" for e in entries)
        raise CompareError(
            f"no backbone to compare, every one lacks its weights on this machine ({reasons}); "
            "put the files there, or pass tags whose files are here (see `zoo list --cached`)"
        )
    return entries


def expand(patterns: list[str], filters: dict) -> list[tuple[Backbone, str | None]]:
    """(backbone, tag named) for each match: a pattern gives every backbone ``zoo list``
    gives for it, a name the one it resolves to; either must pass the filters."""
    registry = get_registry()
    out: dict[tuple[str, str | None], tuple[Backbone, str | None]] = {}
    for pattern in patterns:
        if any(c in pattern for c in GLOB):
            rows = list_backbones([pattern], **filters)
            found = [(registry.get(row["id"])[0], None) for row in rows]
        else:
            backbone, tag = registry.get(pattern)
            found = [(backbone, tag)] if list_backbones([backbone.id], **filters) else []
        for backbone, tag in found:
            out.setdefault((backbone.id, tag), (backbone, tag))
    return list(out.values())


def locate(backbone: Backbone, tag: str | None) -> Entry:
    """The entry of ``backbone`` with ``tag`` (or its default), skipped when its weights
    are not on this machine."""
    from zoo.weights import check_tag, chosen_tag, expected_path, find_cached

    chosen = chosen_tag(backbone, tag)
    if chosen is None:
        return Entry(backbone, None, skipped="no pretrained weights published")
    spec = check_tag(backbone, chosen)
    path = find_cached(spec)
    if path is None:
        here = [t for t, other in backbone.weights.items() if find_cached(other) is not None]
        hint = f" (here: {', '.join(f'{backbone.id}.{t}' for t in here)})" if here else ""
        return Entry(backbone, chosen, skipped=f"no weights file at {expected_path(spec)}{hint}")
    return Entry(backbone, chosen, weights=path)


def _with(filters: dict) -> str:
    given = [f"--{k.replace('_', '-')} {v}" for k, v in filters.items() if v is not None]
    return f" with {' '.join(given)}" if given else ""
