"""What ``zoo list`` returns: one row per backbone."""

from __future__ import annotations

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
