"""What ``zoo list`` and ``zoo plugins`` return: one row per backbone, one per plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo import plugins
from zoo.registry import _computed as computed
from zoo.registry._metadata import METADATA, select
from zoo.registry._registry import get_registry

if TYPE_CHECKING:
    from zoo.registry._registry import Backbone


def list_backbones(
    patterns: list[str] | tuple[str, ...] = (),
    *,
    source: str | None = None,
    pretrained: bool = False,
    cached: bool = False,
    max_params: int | str | None = None,
    max_gflops: float | str | None = None,
    min_top1: float | str | None = None,
    sort: str | None = None,
) -> list[dict]:
    """Rows for every backbone matching any fnmatch ``patterns`` (all when empty).

    Keys: ``id``, ``source``, ``arch``, ``tags``, ``default_tag``, ``cached`` (whether the
    default weights are present locally), ``cached_tags`` (every tag whose file is local),
    and the default tag's metadata: ``params``, ``gflops``, ``top1``, ``top5``,
    ``input_size``, ``license`` (None where unknown). ``cached=True`` keeps the backbones
    with any tag local. ``max_params`` (``"30M"``, ``300_000``), ``max_gflops`` and
    ``min_top1`` leave out rows beyond them or unknown; ``sort`` is ``name``, ``params``,
    ``gflops`` (smallest first) or ``top1`` (best first), unknown values last.

    >>> [row["id"] for row in zoo.list_backbones(["resnet3*"], source="torchvision")]
    ['torchvision:resnet34']
    >>> zoo.list_backbones(min_top1=80, sort="params")[0]["id"]
    """
    from zoo.weights import LocalFiles

    registry = get_registry()
    found = registry.list(patterns, source=source, pretrained=pretrained or cached)
    by_id = {b.id: b for b in found}
    rows = [{"id": b.id, "source": b.source, "arch": b.arch, **metadata_of(b)} for b in found]
    # Filters first: looking for files is the slow part of a listing.
    rows = select(rows, max_params=max_params, max_gflops=max_gflops, min_top1=min_top1, sort=sort)
    files, out = LocalFiles(), []
    for row in rows:
        b = by_id[row["id"]]
        local = [tag for tag, spec in b.weights.items() if files.find(spec) is not None]
        if cached and not local:
            continue
        weights = {"tags": b.tags, "default_tag": b.default_tag}
        cache = {"cached": b.default_tag in local, "cached_tags": local}
        out.append({**{k: row[k] for k in ("id", "source", "arch")}, **weights, **cache, **row})
    return out


def metadata_of(backbone: Backbone, tag: str | None = None) -> dict:
    """``tag``'s metadata (the default tag's when None): what its source published, else
    what ``zoo info`` or ``zoo compare`` computed here, else None."""
    tag = tag or backbone.default_tag
    spec = backbone.weights.get(tag, {}) if tag else {}
    found = computed.get(backbone.id, tag)
    own = tag == backbone.default_tag  # the backbone's own fields describe its default tag
    out = {}
    for key in METADATA:
        values = (getattr(backbone, key) if own else None, spec.get(key), found.get(key))
        out[key] = next((v for v in values if v is not None), None)
    if out["input_size"] is not None:
        out["input_size"] = list(out["input_size"])
    return out


def list_plugins() -> list[dict]:
    """Rows for every plugin zoo knows, loaded or kept out, built-ins first.

    Keys: ``name`` (the source its backbones are listed under), ``distribution`` and
    ``version`` (None for a plugin registered in-process), ``builtin``, ``backbones`` (how
    many it registered) and ``status`` (``ok``, or the error that kept it out).

    >>> [(row["name"], row["status"]) for row in zoo.list_plugins()][:2]
    [('torchvision', 'ok'), ('timm', 'ok')]
    """
    registry = get_registry()
    return [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "builtin": p.builtin,
            "backbones": len(registry.by_source.get(p.name, {})),
            "status": p.status,
        }
        for p in plugins.plugin_infos()
    ]
