"""Models: build a backbone, load its weights, adapt its head, describe it (``zoo info``), and
move a checkpoint into it (``zoo transfer``)."""

from __future__ import annotations

from zoo.models._convert import transfer_checkpoint
from zoo.models._cost import count_gflops
from zoo.models._create import (
    ModelSpec,
    adapt,
    build,
    build_structure,
    create,
    describe,
    preprocessing,
)
from zoo.models._info import info
from zoo.models._load import load_into

__all__ = [
    "ModelSpec",
    "adapt",
    "build",
    "build_structure",
    "count_gflops",
    "create",
    "describe",
    "info",
    "load_into",
    "preprocessing",
    "transfer_checkpoint",
]
