"""Finding a model's classifier head (and auxiliary heads) and adapting it to N classes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from zoo.errors import HeadError

if TYPE_CHECKING:
    from torch import nn

_AUX = re.compile(r"^aux", re.IGNORECASE)  # torchvision: inception AuxLogits, googlenet aux1/2


def find_head(model: nn.Module) -> str:
    """The dotted path of the classifier: timm's own answer, else the last Linear or Conv2d.

    >>> find_head(torchvision.models.vgg16())
    'classifier.6'
    """
    if hasattr(model, "get_classifier"):  # timm
        path = _path_of(model, model.get_classifier())
        if path:
            return path
    main = [n for n, m in model.named_modules() if _is_classifier(m) and not _in_aux(n)]
    if not main:
        raise HeadError(
            f"no classifier layer (Linear or Conv2d) in {type(model).__name__}; "
            "register the backbone with head='dotted.path'"
        )
    return main[-1]


def find_aux_heads(model: nn.Module) -> list[str]:
    """Paths of the last classifier layer inside each auxiliary head (inception, googlenet)."""
    out = []
    for name, child in model.named_children():
        if _AUX.match(name) and child is not None:
            layers = [n for n, m in child.named_modules() if _is_classifier(m)]
            if layers:
                out.append(f"{name}.{layers[-1]}")
    return out


def adapt_head(model: nn.Module, path: str, num_classes: int) -> None:
    """Replace the classifier at ``path`` with a freshly initialised one for ``num_classes``.

    >>> adapt_head(model, "fc", 9)
    """
    from torch import nn

    old = model.get_submodule(path)
    if old.__class__ is nn.Linear:
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    elif old.__class__ is nn.Conv2d:  # squeezenet's final 1x1 conv
        new = nn.Conv2d(
            old.in_channels,
            num_classes,
            old.kernel_size,
            old.stride,
            old.padding,
            bias=old.bias is not None,
        )
    else:
        raise HeadError(
            f"cannot adapt head '{path}' of type {type(old).__name__}; "
            "a head must be a Linear or Conv2d"
        )
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    _init(new)
    _set_submodule(model, path, new)


def head_features(model: nn.Module, path: str) -> tuple[int, int]:
    """(in_features, out_features) of the head at ``path``."""
    head = model.get_submodule(path)
    if hasattr(head, "in_features"):
        return head.in_features, head.out_features
    return head.in_channels, head.out_channels


def _init(layer: nn.Module) -> None:
    from torch import nn

    if layer.weight.device.type == "meta":
        return
    nn.init.normal_(layer.weight, std=0.01)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _is_classifier(module: nn.Module) -> bool:
    from torch import nn

    return isinstance(module, (nn.Linear, nn.Conv2d))


def _in_aux(name: str) -> bool:
    return bool(_AUX.match(name.split(".")[0]))


def _path_of(model: nn.Module, target: nn.Module) -> str | None:
    for name, module in model.named_modules():
        if module is target and name:
            return name
    return None


def _set_submodule(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, new)
