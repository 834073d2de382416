"""zoo: a plugin-based model zoo for fine-tuning image classifiers.

``import zoo`` is cheap: torch, torchvision and timm are imported only by the functions
that need them.

>>> import zoo
>>> model = zoo.create("resnet34", num_classes=9, weights=None, freeze_until="layer3")
"""

from __future__ import annotations

from importlib import import_module

from zoo.hookspecs import hookimpl

# Imported eagerly (it is cheap): a lazy ``zoo.transfer`` would be replaced by the submodule
# of the same name the first time anything imports it.
from zoo.transfer import TransferReport, transfer

__version__ = "0.1.0"

_LAZY = {
    "list_backbones": "zoo.registry",
    "list_plugins": "zoo.registry",
    "info": "zoo.models",
    "create": "zoo.models",
    "freeze": "zoo.freezing",
    "finetune": "zoo.training",
    "evaluate": "zoo.runs",
    "predict": "zoo.runs",
    "compare": "zoo.bakeoff",
}

__all__ = ["hookimpl", "transfer", "TransferReport", *_LAZY]


def __dir__() -> list[str]:
    """The public API (``dir(zoo)``), the lazy functions included."""
    return sorted({*__all__, "__version__"})


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
