"""Building a model: the backbone, its weights, its head adapted, its early stages frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zoo.data import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from zoo.registry import Backbone, get_registry

if TYPE_CHECKING:
    from torch import nn


@dataclass
class ModelSpec:
    """What zoo knows about a model it built; set as ``model.zoo_spec``."""

    id: str  # SOURCE:ARCH
    heads: list[str]  # the classifier's path first, then auxiliary heads
    freeze_points: list[str]  # ordered, heads excluded
    preprocessing: Preprocessing  # the image config of the weights (or the arch's default)
    num_classes: int  # outputs of the main head
    weights: dict = field(default_factory=dict)  # tag, path, build_kwargs; {} if random
    resolved: object = field(default=None, repr=False)  # the zoo.weights.Resolved loaded

    @property
    def head(self) -> str:
        return self.heads[0]


def create(
    name: str,
    num_classes: int | None = None,
    weights: str | None = "default",
    freeze_until: str | None = None,
    *,
    train_bn: bool = False,
    build_kwargs: dict | None = None,
) -> nn.Module:
    """Build backbone ``name`` with ``weights``, its head adapted, frozen up to ``freeze_until``.

    ``weights`` is ``"default"`` (the name's tag, else the default tag), a tag, a file or run
    directory, or ``None``/``"none"`` for random initialisation. ``build_kwargs`` go to the
    factory (a run of googlenet is rebuilt with the ``transform_input`` its weights needed).

    >>> model = zoo.create("resnet34", num_classes=9, weights=None, freeze_until="layer3")
    >>> model.zoo_spec.freeze_points
    ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4']
    """
    from zoo import weights as weights_mod
    from zoo.freezing import freeze
    from zoo.models._load import load_into

    registry = get_registry()
    backbone, tag = registry.get(name)
    backbone = registry.load_factory(backbone)
    resolved = weights_mod.resolve(backbone, weights, tag)
    model = build(backbone, {**(resolved.build_kwargs if resolved else {}), **(build_kwargs or {})})
    spec = describe(model, backbone, resolved)
    if resolved is not None:
        if resolved.num_classes and resolved.num_classes != spec.num_classes:
            spec = adapt(model, spec, resolved.num_classes)  # a run's head, before loading
        load_into(model, resolved, spec.heads)
    if num_classes is not None and num_classes != spec.num_classes:
        spec = adapt(model, spec, num_classes)
    model.zoo_spec = spec
    if freeze_until:
        freeze(model, freeze_until, train_bn=train_bn)
    return model


def build(backbone: Backbone, kwargs: dict | None = None) -> nn.Module:
    """Call the backbone's factory (random weights) with the built-in extra arguments."""
    return backbone.factory(**{**backbone.build_kwargs, **(kwargs or {})})


def build_structure(backbone: Backbone, kwargs: dict | None = None) -> nn.Module:
    """The model's structure on the meta device (no memory, no init), or on the CPU for
    families whose constructor computes with tensors."""
    import torch

    try:
        with torch.device("meta"):
            return build(backbone, kwargs)
    except (NotImplementedError, RuntimeError):
        return build(backbone, kwargs)


def describe(model: nn.Module, backbone: Backbone, resolved=None) -> ModelSpec:
    """The ModelSpec of a freshly built ``model`` of ``backbone``."""
    from zoo.freezing import freeze_points
    from zoo.heads import find_aux_heads, find_head, head_features

    heads = [backbone.head] if backbone.head else [find_head(model), *find_aux_heads(model)]
    points = list(backbone.stages) if backbone.stages else freeze_points(model, heads)
    return ModelSpec(
        id=backbone.id,
        heads=heads,
        freeze_points=points,
        preprocessing=preprocessing(backbone, resolved.spec if resolved else None),
        num_classes=head_features(model, heads[0])[1],
        weights={
            "tag": resolved.tag,
            "path": str(resolved.path),
            "build_kwargs": dict(resolved.build_kwargs),
        }
        if resolved
        else {},
        resolved=resolved,
    )


def adapt(model: nn.Module, spec: ModelSpec, num_classes: int) -> ModelSpec:
    """Give ``model`` new, explicitly initialised heads with ``num_classes`` outputs."""
    from zoo.heads import (
        _init,
        adapt_head,
        find_aux_heads,
        find_head,
        head_features,
        reset_timm_head,
    )

    if hasattr(model, "reset_classifier") and spec.id.startswith("timm:"):
        reset_timm_head(model, num_classes)  # timm knows its own heads best, headless or not
        heads = [find_head(model), *find_aux_heads(model)]
        for head in heads:
            _init(model.get_submodule(head))
            if head_features(model, head)[1] != num_classes:  # an aux head timm did not reset
                adapt_head(model, head, num_classes)
    else:
        heads = spec.heads
        adapt_head(model, heads[0], num_classes)
        for aux in heads[1:]:
            adapt_head(model, aux, num_classes)
    spec.heads, spec.num_classes = heads, num_classes
    return spec


def preprocessing(backbone: Backbone, spec: dict | None = None) -> Preprocessing:
    """The image config of a tag's spec, falling back to the backbone's, then ImageNet's."""
    spec = spec or {}

    def pick(key, default):
        value = spec.get(key)
        value = value if value is not None else getattr(backbone, key)
        return value if value is not None else default

    return Preprocessing(
        input_size=tuple(pick("input_size", (3, 224, 224))),
        mean=tuple(pick("mean", IMAGENET_MEAN)),
        std=tuple(pick("std", IMAGENET_STD)),
        interpolation=pick("interpolation", "bilinear"),
        crop_pct=float(pick("crop_pct", 0.875)),
    )
