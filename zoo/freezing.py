"""Freeze points and freezing: everything up to and including a point stops training.

A backbone's freeze points are its top-level stages in forward order, minus the heads.
When that gives fewer than four (a family whose top level is one big container such as
``features`` or ``encoder.layers``), the biggest container is opened up into its stages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.errors import FreezePointError
from zoo.heads import find_aux_heads, find_head, head_modules

if TYPE_CHECKING:
    from torch import nn

BACKBONE = "backbone"  # the special point: everything but the heads
MIN_POINTS = 4
# A container with one of these names holding over half the parameters is opened up too
# (an efficientnet: conv_stem, bn1, blocks, conv_head, bn2).
CONTAINERS = {"features", "layers", "blocks", "stages", "trunk_output"}
DOMINANT = 0.5


def freeze_points(model: nn.Module, heads: list[str]) -> list[str]:
    """The ordered freeze points of ``model`` whose classifier(s) are at ``heads``.

    >>> freeze_points(torchvision.models.resnet34(), ["fc"])
    ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4']
    """
    heads = head_modules(heads)
    points = _stages(model, "", heads)
    total = sum(_numel(model.get_submodule(p)) for p in points) or 1
    while True:
        openable = {p: _stages(model.get_submodule(p), p + ".", heads) for p in points}
        openable = {p: s for p, s in openable.items() if len(s) >= 2}
        if not openable:
            break
        biggest = max(openable, key=lambda p: _numel(model.get_submodule(p)))
        own = [p for p in points if not _in_head_parent(p, heads)]
        if len(own) >= MIN_POINTS and not _big_container(model, biggest, total):
            break
        at = points.index(biggest)
        points[at : at + 1] = openable[biggest]
    return points


def _big_container(model: nn.Module, point: str, total: int) -> bool:
    """A stage container by name (``features``, ``blocks``...) holding most of the model."""
    name = point.rsplit(".", 1)[-1]
    return name in CONTAINERS and _numel(model.get_submodule(point)) > DOMINANT * total


def _in_head_parent(point: str, heads: list[str]) -> bool:
    """A point opened up only because a head sits beside it (convnext's classifier norm)."""
    parent = point.rpartition(".")[0]
    return bool(parent) and any(h.startswith(parent + ".") for h in heads)


def _stages(module: nn.Module, prefix: str, heads: list[str]) -> list[str]:
    """Children of ``module`` that hold parameters; head ancestors are opened, heads left out."""
    out = []
    for name, child in module.named_children():
        path = prefix + name
        if child is None or path in heads or _numel(child) == 0:
            continue
        if any(h.startswith(path + ".") for h in heads):
            out += _stages(child, path + ".", heads)
        else:
            out.append(path)
    return out


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def frozen_names(model: nn.Module, until: str, points: list[str], heads: list[str]) -> set[str]:
    """Names of the parameters that freezing up to and including ``until`` freezes."""
    heads = head_modules(heads)
    if until == BACKBONE:
        return {n for n, _ in model.named_parameters() if not _under(n, heads)}
    if until not in points:
        raise FreezePointError(
            f"unknown freeze point '{until}'; valid: {', '.join(points + [BACKBONE])}"
        )
    chosen = points[: points.index(until) + 1]
    names = {n for n, _ in model.named_parameters() if _under(n, chosen)}
    # Parameters held directly by a parent of a frozen point (ViT's class token, position
    # embedding) are used before its stages run, so they freeze with the first of them.
    parents = {p.rsplit(".", i)[0] for p in chosen for i in range(1, p.count(".") + 1)}
    for parent in parents | {""}:
        module = model.get_submodule(parent) if parent else model
        prefix = parent + "." if parent else ""
        names |= {prefix + n for n, _ in module.named_parameters(recurse=False)}
    return names


def _under(name: str, paths: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in paths)


def freeze(
    model: nn.Module,
    until: str | None,
    *,
    points: list[str] | None = None,
    heads: list[str] | None = None,
    train_bn: bool = False,
) -> None:
    """Freeze every parameter up to and including ``until``.

    Frozen BatchNorm layers stay in eval mode through ``model.train()`` so their running
    statistics never change, unless ``train_bn`` (then they train: weights and statistics).
    ``until=None`` unfreezes everything.

    >>> zoo.freeze(model, "layer3")
    """
    spec = getattr(model, "zoo_spec", None)
    heads = heads if heads is not None else (spec.heads if spec else _detect_heads(model))
    points = (
        points
        if points is not None
        else (spec.freeze_points if spec else freeze_points(model, heads))
    )
    names = frozen_names(model, until, points, heads) if until else set()
    for name, param in model.named_parameters():
        param.requires_grad_(name not in names)
    _hold_batchnorm(model, names, enabled=not train_bn)
    if train_bn:
        for module in model.modules():
            if _is_bn(module):
                for p in module.parameters(recurse=False):
                    p.requires_grad_(True)


def _detect_heads(model: nn.Module) -> list[str]:
    return [find_head(model), *find_aux_heads(model)]


def _is_bn(module: nn.Module) -> bool:
    from torch.nn.modules.batchnorm import _BatchNorm

    return isinstance(module, _BatchNorm)


def _hold_batchnorm(model: nn.Module, frozen: set[str], enabled: bool) -> None:
    """Keep frozen BatchNorm layers in eval mode whatever mode the model is put in."""
    for name, module in model.named_modules():
        if not _is_bn(module):
            continue
        prefix = f"{name}." if name else ""
        owned = [prefix + n for n, _ in module.named_parameters(recurse=False)]
        hold = enabled and bool(owned) and all(n in frozen for n in owned)
        module._zoo_hold = hold  # a flag, not a hook handle, so deepcopy stays correct
        if hold and not module.__dict__.get("_zoo_hooked"):
            module.register_forward_pre_hook(_stay_in_eval)
            module._zoo_hooked = True
        if hold:
            module.eval()


def _stay_in_eval(module: nn.Module, args) -> None:
    if module.__dict__.get("_zoo_hold"):
        module.training = False


def is_held(module: nn.Module) -> bool:
    """Whether freezing keeps this BatchNorm layer in eval mode."""
    return bool(module.__dict__.get("_zoo_hold"))
