"""Run directories: their files, their pictures, and evaluating or predicting with a finished
run."""

from __future__ import annotations

from zoo.runs._evaluate import Trained, evaluate, load_trained, output_names, predict
from zoo.runs._lr_plot import plot_lr_find
from zoo.runs._plots import plot_confusion, plot_curves
from zoo.runs._rundir import RunDir, default_output, is_run, versions

__all__ = [
    "RunDir",
    "Trained",
    "default_output",
    "evaluate",
    "is_run",
    "load_trained",
    "output_names",
    "plot_confusion",
    "plot_curves",
    "plot_lr_find",
    "predict",
    "versions",
]
