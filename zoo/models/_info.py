"""What ``zoo info`` returns about one backbone."""

from __future__ import annotations

from zoo.registry import get_registry


def info(name: str) -> dict:
    """Everything about one backbone, built on the meta device (no weights, no memory).

    >>> zoo.info("resnet34")["freeze_points"]
    ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4']
    """
    from zoo.heads import head_features
    from zoo.models._create import build_structure, describe
    from zoo.weights import check_tag, expected_path, find_cached

    registry = get_registry()
    backbone, tag = registry.get(name)
    backbone = registry.load_factory(backbone)
    chosen = tag or backbone.default_tag
    spec_w = check_tag(backbone, chosen) if chosen else None
    model = build_structure(backbone, (spec_w or {}).get("build_kwargs"))
    spec = describe(model, backbone)
    if spec_w:
        from zoo.models._create import preprocessing

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
