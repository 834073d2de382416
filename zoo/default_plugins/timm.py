"""Every timm architecture, with its pretrained tags (``arch.tag``), and what zoo needs to know
about timm's models: their own head reset, checkpoint conversion, and leaves for fx."""

from __future__ import annotations

import functools
import os
import sys

import zoo
from zoo.default_plugins._timm_tables import tag_metadata
from zoo.errors import HeadError

METADATA = ("params", "gflops", "top1", "top5", "license")


def build(name: str, **kwargs):
    """A timm model with random weights (zoo loads weights itself)."""
    import timm

    return timm.create_model(name, pretrained=False, **kwargs)


def adapt_head(model, num_classes: int) -> None:
    """timm's own ``reset_classifier``, which knows every head a model has, headless or not
    (a model without one, such as timm's encoders, is left to zoo's generic adaptation)."""
    if not hasattr(model, "reset_classifier"):
        return
    try:
        model.reset_classifier(num_classes)
    except Exception as exc:  # timm raises anything from assert to TypeError here
        raise HeadError(
            f"timm cannot give {type(model).__name__} a {num_classes}-class head ({exc}); "
            "pick another backbone or register this one with head='dotted.path'"
        ) from exc


def load_filter(state: dict, model) -> dict | None:
    """timm's own checkpoint conversion for the model's family, where it has one."""
    module = sys.modules.get(type(model).__module__)
    convert = getattr(module, "checkpoint_filter_fn", None)
    return convert(state, model) if convert is not None else None


def size_kwargs(image_size: int) -> dict:
    """timm builds a model of fixed input size (ViTs, swin, ...) for another with ``img_size``;
    its ``checkpoint_filter_fn`` (``load_filter``) resamples pretrained position embeddings."""
    return {"img_size": image_size}


def fx_leaves() -> tuple:
    """timm's leaf modules and wrapped functions, which fx must not trace into."""
    from timm.layers import get_notrace_functions, get_notrace_modules

    return (*get_notrace_modules(), *(f for f in get_notrace_functions() if callable(f)))


def _spec(cfg) -> dict:
    return {
        "url": cfg.url or None,
        "filename": os.path.basename(cfg.url) if cfg.url else None,
        "hf_hub_id": cfg.hf_hub_id or None,
        "hf_hub_filename": cfg.hf_hub_filename or None,
        "num_classes": cfg.num_classes,
        "input_size": list(cfg.input_size),
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "interpolation": cfg.interpolation or "bicubic",
        "crop_pct": cfg.crop_pct,
        **tag_metadata(f"{cfg.architecture}.{cfg.tag}", cfg.input_size),
        "license": cfg.license,
    }


@zoo.hookimpl
def register_backbones(register):
    import timm
    from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg

    pretrained = set(timm.list_pretrained())
    for arch in timm.list_models():
        cfgs = {k: v for k, v in get_arch_pretrained_cfgs(arch).items() if k in pretrained}
        weights = {name.partition(".")[2]: _spec(cfg) for name, cfg in cfgs.items()}
        default = get_pretrained_cfg(arch)
        fields = _spec(default) if default is not None else tag_metadata(arch, None)
        register(
            arch,
            functools.partial(build, arch),
            weights=weights,
            input_size=fields.get("input_size"),
            mean=fields.get("mean"),
            std=fields.get("std"),
            interpolation=fields.get("interpolation"),
            crop_pct=fields.get("crop_pct"),
            description=f"timm {arch}",
            **{key: fields.get(key) for key in METADATA},
            adapt_head=adapt_head,
            load_filter=load_filter,
            fx_leaves=fx_leaves,
            size_kwargs=size_kwargs if getattr(default, "fixed_input_size", False) else None,
        )
