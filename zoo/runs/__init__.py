"""Run directories: their files, their pictures, and evaluating or predicting with a finished
run (or a model exported from one)."""

from __future__ import annotations

from zoo.runs._card import hf_config, read_run_meta, save_evaluation, write_card
from zoo.runs._evaluate import class_metrics, evaluate
from zoo.runs._exported import EXPORTED_SUFFIXES, Exported, is_exported, load_exported
from zoo.runs._lr_plot import plot_lr_find
from zoo.runs._plots import plot_confusion, plot_curves
from zoo.runs._predict import open_classifier, predict
from zoo.runs._rundir import RunDir, default_output, is_run, versions
from zoo.runs._trained import (
    Trained,
    deployable,
    load_trained,
    output_names,
    probabilities,
    with_flip,
)

__all__ = [
    "EXPORTED_SUFFIXES",
    "Exported",
    "RunDir",
    "Trained",
    "class_metrics",
    "default_output",
    "deployable",
    "evaluate",
    "is_exported",
    "is_run",
    "load_exported",
    "load_trained",
    "open_classifier",
    "output_names",
    "plot_confusion",
    "plot_curves",
    "plot_lr_find",
    "predict",
    "probabilities",
    "versions",
    "with_flip",
    "hf_config",
    "read_run_meta",
    "save_evaluation",
    "write_card",
]
