"""Listing and describing backbones: what ``zoo list`` and ``zoo info`` return."""

from __future__ import annotations

from zoo.registry import get_registry


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


def info(name: str) -> dict:
    """Everything about one backbone, built on the meta device (no weights, no memory).

    >>> zoo.info("resnet34")["freeze_points"]
    ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4']
    """
    from zoo.heads import head_features
    from zoo.models import build_structure, describe
    from zoo.weights import check_tag, expected_path, find_cached

    registry = get_registry()
    backbone, tag = registry.get(name)
    backbone = registry.load_factory(backbone)
    chosen = tag or backbone.default_tag
    spec_w = check_tag(backbone, chosen) if chosen else None
    model = build_structure(backbone, (spec_w or {}).get("build_kwargs"))
    spec = describe(model, backbone)
    if spec_w:
        from zoo.models import preprocessing

        spec.preprocessing = preprocessing(backbone, spec_w)
    in_features, out_features = head_features(model, spec.head)
    pre = spec.preprocessing
    where = expected_path(spec_w) if spec_w else None
    return {
        "id": backbone.id,
        "source": backbone.source,
        "arch": backbone.arch,
        "description": backbone.description,
        "num_params": sum(p.numel() for p in model.parameters()),
        "input_size": list(pre.input_size),
        "mean": list(pre.mean),
        "std": list(pre.std),
        "interpolation": pre.interpolation,
        "crop_pct": pre.crop_pct,
        "head": {"module": spec.head, "in_features": in_features, "out_features": out_features},
        "aux_heads": spec.heads[1:],
        "freeze_points": spec.freeze_points,
        "tags": backbone.tags,
        "default_tag": backbone.default_tag,
        "tag": chosen,
        "cached": bool(spec_w) and find_cached(spec_w) is not None,
        "weights_path": str(where) if where else None,
        "also": [b.id for b in registry.candidates(backbone.arch) if b.id != backbone.id],
    }


def transfer_checkpoint(
    source: str,
    into: str,
    *,
    num_classes: int | None = None,
    output: str | None = None,
    prefix: str | None = None,
    key_map: list[tuple[str, str]] | None = None,
    strict: bool = False,
    min_coverage: float | None = None,
):
    """Load what fits of ``source`` into a fresh ``into`` model; optionally save the result.

    The output (``.safetensors``, else a torch state dict) loads strictly into
    ``zoo.create(into, num_classes=num_classes, weights=None)``.

    >>> report = transfer_checkpoint("old.pth", "resnet50", num_classes=9, output="r50-9.pt")
    """
    from zoo.models import create
    from zoo.transfer import transfer

    model = create(into, num_classes=num_classes, weights=None)
    report = transfer(
        model, source, prefix=prefix, key_map=key_map, strict=strict, min_coverage=min_coverage
    )
    if output:
        from zoo.runfiles import save_safetensors, save_torch

        state = model.state_dict()
        if str(output).endswith(".safetensors"):
            save_safetensors(state, output)
        else:
            save_torch(state, output)
    return report
