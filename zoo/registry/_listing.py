"""What ``zoo list`` and ``zoo plugins`` return: one row per backbone, one per plugin."""

from __future__ import annotations

from zoo import plugins
from zoo.registry._registry import get_registry


def list_backbones(
    patterns: list[str] | tuple[str, ...] = (),
    *,
    source: str | None = None,
    pretrained: bool = False,
    cached: bool = False,
) -> list[dict]:
    """Rows for every backbone matching any fnmatch ``patterns`` (all when empty).

    Keys: ``id``, ``source``, ``arch``, ``tags``, ``default_tag``, ``cached`` (whether the
    default weights are present locally).

    >>> [row["id"] for row in zoo.list_backbones(["resnet3*"], source="torchvision")]
    ['torchvision:resnet34']
    """
    from zoo.weights import find_cached

    rows = []
    for b in get_registry().list(patterns, source=source, pretrained=pretrained or cached):
        default = b.weights.get(b.default_tag) if b.default_tag else None
        is_cached = bool(default) and find_cached(default) is not None
        if cached and not is_cached:
            continue
        rows.append(
            {
                "id": b.id,
                "source": b.source,
                "arch": b.arch,
                "tags": b.tags,
                "default_tag": b.default_tag,
                "cached": is_cached,
            }
        )
    return rows


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
