"""Every timm architecture, with its pretrained tags (``arch.tag``)."""

from __future__ import annotations

import functools
import os

import zoo


def build(name: str, **kwargs):
    """A timm model with random weights (zoo loads weights itself)."""
    import timm

    return timm.create_model(name, pretrained=False, **kwargs)


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
        fields = _spec(default) if default is not None else {}
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
        )
