"""config.json's record of a run: every resolved option and what the run was made of."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.runs import versions

if TYPE_CHECKING:
    from zoo.training._config import TrainConfig


def config_record(
    config: TrainConfig,
    *,
    backbone_id: str,
    weights: dict,
    classes: list[str],
    preprocessing: dict,
    data: str,
    skipped: list,
) -> dict:
    """config.json: every resolved option and what the run was made of.

    Paths are absolute, so the run resumes from any working directory.
    """
    options = config.to_dict()
    for key in ("data", "output", "labels"):
        if options[key] is not None:
            options[key] = absolute(options[key])
    if weights and weights.get("tag") is None:  # a file or a run directory, not a tag
        options["weights"] = absolute(config.weights)
        weights = {**weights, "path": absolute(weights["path"])}
    return {
        "id": backbone_id,
        "options": options,
        "data": absolute(data),
        "class_names": classes,
        "num_classes": config.num_classes or len(classes),
        "weights": weights,
        "preprocessing": preprocessing,
        "skipped_files": [list(s) for s in skipped],
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def absolute(path: str | Path) -> str:
    """``path`` with ``~`` expanded and made absolute, as config.json records paths."""
    return str(Path(path).expanduser().resolve())


def valid_set_record(split) -> dict:
    """What ``zoo evaluate RUN`` without --data evaluates on: the files the run validated on
    (a --val-split run's held-out files, or its valid folder's), absolute, with their labels."""
    return {"valid_files": [[absolute(p), label] for p, label in split.valid]}
