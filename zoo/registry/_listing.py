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
    default weights are present locally), ``cached_tags`` (every tag whose file is local).
    ``cached=True`` keeps the backbones with any tag local.

    >>> [row["id"] for row in zoo.list_backbones(["resnet3*"], source="torchvision")]
    ['torchvision:resnet34']
    """
    from zoo.weights import find_cached

    rows = []
    for b in get_registry().list(patterns, source=source, pretrained=pretrained or cached):
        local = [tag for tag, spec in b.weights.items() if find_cached(spec) is not None]
        if cached and not local:
            continue
        rows.append(
            {
                "id": b.id,
                "source": b.source,
                "arch": b.arch,
                "tags": b.tags,
                "default_tag": b.default_tag,
                "cached": b.default_tag in local,
                "cached_tags": local,
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
