"""Every torchvision classification model, with its weight tags."""

from __future__ import annotations

import functools
import os

import zoo

# Weights ported from TensorFlow expect inputs transformed the way torchvision does it
# when it loads them itself.
_PORTED = {"inception_v3", "googlenet"}


def build(name: str, **kwargs):
    """A torchvision model with random weights (zoo loads weights itself)."""
    import torchvision.models

    if name in _PORTED:
        kwargs.setdefault("init_weights", True)  # silences torchvision's FutureWarning
    return torchvision.models.get_model(name, weights=None, **kwargs)


def vit_size_kwargs(image_size: int) -> dict:
    """A vision transformer's position embedding is made for one image size."""
    return {"image_size": image_size}


def vit_load_filter(state: dict, model) -> dict:
    """Weights for another image size, their position embedding resampled to the model's."""
    from torchvision.models.vision_transformer import interpolate_embeddings

    return dict(interpolate_embeddings(model.image_size, model.patch_size, state))


def _sized(name: str) -> dict:
    """The code fields of a family built for one image size (swin pads to its windows, so it
    needs none; the others run at any size their layers allow, which zoo checks)."""
    if name.startswith("vit_"):
        return {"size_kwargs": vit_size_kwargs, "load_filter": vit_load_filter}
    return {}


def _spec(name: str, weight) -> dict:
    options = dict(weight.transforms.keywords)
    crop = options.get("crop_size", 224)
    interpolation = options.get("interpolation")
    metrics = weight.meta.get("_metrics", {}).get("ImageNet-1K", {})
    spec = {
        "url": weight.url,
        "filename": os.path.basename(weight.url),
        "num_classes": len(weight.meta.get("categories") or []) or None,
        "input_size": [3, crop, crop],
        "crop_pct": crop / options.get("resize_size", 256),
        "interpolation": interpolation.value if interpolation is not None else "bilinear",
        # Metadata as torchvision publishes it (its _ops count a multiply-add once).
        "params": weight.meta.get("num_params"),
        "gflops": weight.meta.get("_ops"),
        "top1": metrics.get("acc@1"),
        "top5": metrics.get("acc@5"),
    }
    if name in _PORTED:
        spec["build_kwargs"] = {"transform_input": True, "init_weights": False}
    return spec


@zoo.hookimpl
def register_backbones(register):
    import torchvision.models

    for name in torchvision.models.list_models(module=torchvision.models):
        enum = torchvision.models.get_model_weights(name)
        default = enum.DEFAULT
        weights = {default.name: _spec(name, default)}
        weights.update({w.name: _spec(name, w) for w in enum if w.name != default.name})
        first = weights[default.name]
        register(
            name,
            functools.partial(build, name),
            weights=weights,
            input_size=first["input_size"],
            interpolation=first["interpolation"],
            crop_pct=first["crop_pct"],
            description=f"torchvision {name}",  # each tag's metadata is in its spec
            **{key: first[key] for key in ("params", "gflops", "top1", "top5")},
            **_sized(name),
        )
