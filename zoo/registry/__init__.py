"""The backbone registry: every plugin's backbones under ``SOURCE:ARCH`` ids, listed from an
on-disk index so that ``zoo list`` does not import timm."""

from __future__ import annotations

from zoo.registry._index import clear as clear_index
from zoo.registry._listing import list_backbones
from zoo.registry._registry import Backbone, Registry, get_registry, split_name

__all__ = ["clear_index", "Backbone", "Registry", "get_registry", "list_backbones", "split_name"]
