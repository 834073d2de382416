"""Building a model: the backbone, its weights, its head adapted, its early stages frozen."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from zoo.data import Preprocessing
from zoo.models._size import check_image_size, size_kwargs
from zoo.registry import Backbone, get_registry

if TYPE_CHECKING:
    import os

    from torch import Tensor, nn

    from zoo.weights import Resolved


@dataclass
class ModelSpec:
    """What zoo knows about a model it built; set as ``model.zoo_spec``."""

    id: str  # SOURCE:ARCH
    heads: list[str]  # the classifier's path first, then auxiliary heads
    freeze_points: list[str]  # ordered, heads excluded
    preprocessing: Preprocessing  # the image config of the weights (or the arch's default)
    num_classes: int  # outputs of the main head
    weights: dict = field(default_factory=dict)  # tag, path, build_kwargs; {} if random
    resolved: Resolved | None = field(default=None, repr=False)  # the weights loaded
    # What it was built from: its plugin's adapt_head, load_filter and fx_leaves.
    backbone: Backbone | None = field(default=None, repr=False)
    build_kwargs: dict = field(default_factory=dict)  # every factory argument it was built with
    class_names: list[str] | None = None  # its outputs' names: a run's classes, when it has them

    @property
    def head(self) -> str:
        return self.heads[0]

    def __getstate__(self) -> dict:
        # A plugin's factory may be a lambda: a pickled model (torch.save(model)) keeps the
        # spec's facts and leaves the plugin's code behind.
        return {**self.__dict__, "backbone": None}


def create(
    name: str,
    num_classes: int | None = None,
    weights: str | os.PathLike | Resolved | None = "default",
    freeze_until: str | None = None,
    *,
    train_bn: bool = False,
    build_kwargs: dict | None = None,
    image_size: int | None = None,
) -> nn.Module:
    """Build backbone ``name`` with ``weights``, its head adapted, frozen up to ``freeze_until``.

    ``weights`` is ``"default"`` (the name's tag, else the default tag), a tag, a file or run
    directory (or what ``zoo.weights.resolve_file`` made of one), or ``None``/``"none"`` for
    random initialisation. ``build_kwargs`` go to the factory (a run of googlenet is rebuilt
    with the ``transform_input`` its weights needed). ``image_size`` builds the model for
    square images of that size (a ViT's position embedding, resampled from pretrained
    weights); a size the model cannot take is an ImageSizeError naming the smallest that can.

    >>> model = zoo.create("resnet34", num_classes=9, weights=None, freeze_until="layer3")
    >>> model.zoo_spec.freeze_points
    ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4']
    """
    from zoo.freezing import freeze
    from zoo.weights import resolve

    registry = get_registry()
    backbone, tag = registry.get(name)
    backbone = registry.load_factory(backbone)
    resolved = resolve(backbone, weights, tag)
    state = resolved.read_state() if resolved else None  # once; a bad file fails before building
    kwargs = {**(resolved.build_kwargs if resolved else {}), **(build_kwargs or {})}
    if image_size:
        kwargs.update(size_kwargs(backbone, image_size))
        check_image_size(backbone, image_size, kwargs)
    model = build(backbone, kwargs)
    spec = describe(model, backbone, resolved)
    spec.build_kwargs = kwargs
    if resolved is not None:
        spec = _load_weights(model, spec, resolved, state)
    if num_classes is not None and num_classes != spec.num_classes:
        spec = adapt(model, spec, num_classes)
    if resolved is not None and resolved.class_names and spec.num_classes == resolved.num_classes:
        spec.class_names = list(resolved.class_names)  # a run's head, kept: its classes too
    model.zoo_spec = spec
    if freeze_until:
        freeze(model, freeze_until, train_bn=train_bn)
    return model


def _load_weights(
    model: nn.Module, spec: ModelSpec, resolved: Resolved, state: dict[str, Tensor]
) -> ModelSpec:
    """Give ``model`` the head size the weights were saved with, then load ``state`` (what
    ``resolved`` holds) into it; the spec after any head change."""
    from zoo.models._load import file_num_classes, load_into

    saved = resolved.num_classes
    if resolved.tag is None and resolved.run is None:
        saved = resolved.num_classes = file_num_classes(model, spec.head, state)
    if saved and saved != spec.num_classes:
        spec = adapt(model, spec, saved)  # the file's head, before loading
    load_into(model, resolved, spec, state)
    return spec


def build(backbone: Backbone, kwargs: dict | None = None) -> nn.Module:
    """Call the backbone's factory (random weights) with extra arguments for its weights."""
    return backbone.factory(**(kwargs or {}))


def build_structure(backbone: Backbone, kwargs: dict | None = None) -> nn.Module:
    """The model's structure on the meta device (no memory, no init), or on the CPU for
    families whose constructor computes with tensors."""
    import torch

    try:
        with torch.device("meta"):
            return build(backbone, kwargs)
    except (NotImplementedError, RuntimeError):
        return build(backbone, kwargs)


def describe(model: nn.Module, backbone: Backbone, resolved: Resolved | None = None) -> ModelSpec:
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
        backbone=backbone,
    )


def adapt(model: nn.Module, spec: ModelSpec, num_classes: int) -> ModelSpec:
    """Give ``model`` new, explicitly initialised heads with ``num_classes`` outputs.

    A backbone whose plugin gives ``adapt_head`` has its heads reset that way first (it knows
    its own heads best, headless or not); zoo then initialises the heads it finds, and adapts
    any the plugin left at another size.
    """
    from zoo.heads import adapt_head, find_aux_heads, find_head, head_features, init_head

    reset = spec.backbone.adapt_head if spec.backbone else None
    heads = spec.heads
    if reset is not None:
        reset(model, num_classes)
        heads = [find_head(model), *find_aux_heads(model)]
    for head in heads:
        if reset is not None:
            init_head(model.get_submodule(head))
            if head_features(model, head)[1] == num_classes:
                continue
        adapt_head(model, head, num_classes, reset=reset)
    spec.heads, spec.num_classes = heads, num_classes
    return spec


def preprocessing(backbone: Backbone, spec: dict | None = None) -> Preprocessing:
    """The image config of a tag's spec, falling back to the backbone's, then to
    ``Preprocessing``'s defaults."""
    spec = spec or {}
    chosen = {}
    for key in (f.name for f in fields(Preprocessing)):
        value = spec.get(key)
        value = value if value is not None else getattr(backbone, key)
        if value is not None:
            chosen[key] = value
    return Preprocessing.from_dict(chosen)
