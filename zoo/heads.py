"""Finding a model's classifier head (and auxiliary heads) and adapting it to N classes.

A model may name its own classifiers: ``get_classifier()`` (a module, or a pair) next to
``reset_classifier(num_classes)``, a convention some model libraries follow. zoo reads that
answer first; resetting such a head is the job of the model's plugin (its ``adapt_head``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from zoo.errors import HeadError

if TYPE_CHECKING:
    from torch import nn

_AUX = re.compile(r"^aux", re.IGNORECASE)  # torchvision: inception AuxLogits, googlenet aux1/2


def find_head(model: nn.Module) -> str:
    """The dotted path of the classifier: the model's own answer, else the last Linear or
    Conv2d.

    >>> find_head(torchvision.models.vgg16())
    'classifier.6'
    """
    named = _named_heads(model)
    if named:
        return named[0]
    main = [n for n, m in model.named_modules() if _is_classifier(m) and not _in_aux(n)]
    if not main:
        raise HeadError(
            f"no classifier layer (Linear or Conv2d) in {type(model).__name__}; "
            "register the backbone with head='dotted.path'"
        )
    return main[-1]


def find_aux_heads(model: nn.Module) -> list[str]:
    """Paths of the last classifier layer inside each auxiliary head (inception, googlenet),
    after the extra classifiers the model names itself (the distillation head of deit and
    levit)."""
    out = _named_heads(model)[1:]
    for name, child in model.named_children():
        if _AUX.match(name) and child is not None:
            layers = [n for n, m in child.named_modules() if _is_classifier(m)]
            if layers:
                out.append(f"{name}.{layers[-1]}" if layers[-1] else name)  # volo: a Linear
    return out


def head_modules(heads: list[str]) -> list[str]:
    """The modules the heads occupy: the classifier, and each auxiliary head as a whole (an
    auxiliary head is a branch, googlenet's ``aux1``). Never frozen; optional in a file.

    >>> head_modules(["fc", "aux1.fc2"])
    ['fc', 'aux1']
    """
    return heads[:1] + [h.split(".")[0] for h in heads[1:]]


def adapt_head(
    model: nn.Module, path: str, num_classes: int, *, reset: Callable | None = None
) -> None:
    """Replace the classifier at ``path`` with a freshly initialised one for ``num_classes``.

    A head the model names itself that is not one layer (crossvit's pair, levit's NormLinear,
    a headless model) is given to ``reset``, the plugin's ``adapt_head``, else to the model's
    own ``reset_classifier``.

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
    elif path in _named_heads(model) and (reset or hasattr(model, "reset_classifier")):
        (reset or _own_reset)(model, num_classes)
        init_head(model.get_submodule(path))
        return
    else:
        raise HeadError(
            f"cannot adapt head '{path}' of type {type(old).__name__}; "
            "a head must be a Linear or Conv2d"
        )
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    init_head(new)
    _set_submodule(model, path, new)


def _own_reset(model: nn.Module, num_classes: int) -> None:
    """The model's own ``reset_classifier``, the other half of the ``get_classifier``
    convention, for a plugin that registered no ``adapt_head``."""
    try:
        model.reset_classifier(num_classes)
    except Exception as exc:  # a model's own code may raise anything, from assert to TypeError
        raise HeadError(
            f"{type(model).__name__}.reset_classifier({num_classes}) failed ({exc}); "
            "register the backbone with adapt_head= a function that gives it a new head"
        ) from None


def head_features(model: nn.Module, path: str) -> tuple[int, int]:
    """(in_features, out_features) of the head at ``path``; for a classifier the model names
    itself that is not a single layer, the model's own sizes (``out_features`` is 0 for a
    headless model).

    >>> head_features(torchvision.models.resnet34(), "fc")
    (512, 1000)
    """
    head = model.get_submodule(path)
    if hasattr(head, "in_features") and hasattr(head, "out_features"):
        return head.in_features, head.out_features
    if hasattr(head, "in_channels") and hasattr(head, "out_channels"):
        return head.in_channels, head.out_channels
    if path in _named_heads(model):
        width = getattr(model, "head_hidden_size", None) or model.num_features
        return width, model.num_classes
    raise HeadError(
        f"cannot tell the size of head '{path}' of type {type(head).__name__}; "
        "register the backbone with head= the path of a Linear or Conv2d"
    )


def init_head(head: nn.Module) -> None:
    """Explicitly initialise every Linear and Conv2d of ``head`` (unless on the meta device)."""
    from torch import nn

    for layer in head.modules():
        if not _is_classifier(layer) or layer.weight.device.type == "meta":
            continue
        nn.init.normal_(layer.weight, std=0.01)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def _is_classifier(module: nn.Module) -> bool:
    from torch import nn

    return isinstance(module, (nn.Linear, nn.Conv2d))


def _named_heads(model: nn.Module) -> list[str]:
    """Paths of what the model's ``get_classifier`` returns (a module, or deit's pair), else
    []."""
    if not (hasattr(model, "get_classifier") and hasattr(model, "reset_classifier")):
        return []
    found = model.get_classifier()
    found = found if isinstance(found, tuple) else (found,)
    paths = [_path_of(model, m) for m in found if m is not None]
    return [p for p in paths if p]


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
