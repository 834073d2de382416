"""What ``zoo info`` returns about one backbone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.registry import get_registry, metadata_of

if TYPE_CHECKING:
    from zoo.registry import Backbone


def info(name: str) -> dict:
    """Everything about one backbone, built on the meta device (no weights, no memory).

    >>> zoo.info("resnet34")["freeze_points"]
    ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4']
    """
    from zoo.heads import head_features
    from zoo.models._create import build_structure, describe, preprocessing
    from zoo.weights import check_tag, chosen_tag

    registry = get_registry()
    backbone, tag = registry.get(name)
    backbone = registry.load_factory(backbone)
    chosen = chosen_tag(backbone, tag)
    spec_w = check_tag(backbone, chosen) if chosen else None
    model = build_structure(backbone, (spec_w or {}).get("build_kwargs"))
    spec = describe(model, backbone)
    pre = preprocessing(backbone, spec_w)
    in_features, out_features = head_features(model, spec.head)
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
        **_weights_fields(backbone, chosen, spec_w),
        **_metadata_fields(backbone, chosen, model, pre.input_size),
        "also": [b.id for b in registry.candidates(backbone.arch) if b.id != backbone.id],
    }


def _weights_fields(backbone: Backbone, chosen: str | None, spec: dict | None) -> dict:
    """The tags, the one chosen, and whether (and where) its file is on this machine."""
    from zoo.weights import expected_path, find_cached

    where = expected_path(spec) if spec else None
    return {
        "tags": backbone.tags,
        "default_tag": backbone.default_tag,
        "tag": chosen,
        "top1": metadata_of(backbone, chosen)["top1"],  # ImageNet-1K top-1, when published
        "cached": bool(spec) and find_cached(spec) is not None,
        "weights_path": str(where) if where else None,
    }


def _metadata_fields(backbone: Backbone, chosen: str | None, model, input_size) -> dict:
    """The chosen tag's params, GFLOPs (counted here where unpublished), top-5 and license;
    and every tag's published top-1."""
    from zoo.models._cost import computed_cost

    known = metadata_of(backbone, chosen)
    return {
        **computed_cost(backbone, chosen, model, input_size),
        "top5": known["top5"],
        "license": known["license"],
        "top1_by_tag": {tag: metadata_of(backbone, tag)["top1"] for tag in backbone.tags},
    }
