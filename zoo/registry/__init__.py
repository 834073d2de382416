"""The backbone registry: every plugin's backbones under ``SOURCE:ARCH`` ids, listed from an
on-disk index so that ``zoo list`` does not import timm."""

from __future__ import annotations

from zoo.registry._computed import put as remember_computed
from zoo.registry._index import clear as clear_index
from zoo.registry._listing import list_backbones, list_plugins, metadata_of
from zoo.registry._metadata import METADATA, SORT_KEYS, parse_count
from zoo.registry._registry import Backbone, Registry, get_registry, split_name

__all__ = [
    "Backbone",
    "Registry",
    "clear_index",
    "get_registry",
    "list_backbones",
    "list_plugins",
    "split_name",
    "METADATA",
    "SORT_KEYS",
    "metadata_of",
    "parse_count",
    "remember_computed",
]
