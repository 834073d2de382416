"""The options and output that labels from a file bring: ``--labels FILE.csv`` and
``--multi-label`` for the commands that train (``compare`` and ``lr-find`` take them with
``labels_options``, as ``finetune`` does from ``TrainConfig``), ``--threshold``, and the
multi-label forms of ``zoo evaluate`` and ``zoo predict``.

    >>> @labels_options
    ... @click.command()
    ... def compare(names, data, labels, multi_label): ...
"""

from __future__ import annotations

import click

LABELS_HELP = (
    "A CSV with columns image,label[,split] (split: train or valid; paths relative to the "
    "CSV's folder, or absolute), in place of --data."
)
MULTI_LABEL_HELP = "Labels in --labels separated by '|', any number per image."
THRESHOLD_HELP = (
    "Multi-label runs: a label counts as predicted from this probability [the run's, 0.5]."
)


def labels_option(function):
    """``--labels FILE.csv``, passed as ``labels`` (``zoo.data.scan_training_data``)."""
    return click.option("--labels", type=click.Path(dir_okay=False), help=LABELS_HELP)(function)


def labels_options(function):
    """``--labels FILE.csv`` and ``--multi-label``, passed as ``labels`` and ``multi_label``."""
    function = click.option("--multi-label", is_flag=True, help=MULTI_LABEL_HELP)(function)
    return labels_option(function)


def threshold_option(function):
    """``--threshold P`` in (0, 1), passed as ``threshold`` (None: the run's own)."""
    kind = click.FloatRange(0, 1, min_open=True, max_open=True)
    return click.option("--threshold", type=kind, help=THRESHOLD_HELP)(function)


def echo_multilabel_report(report: dict) -> None:
    """``zoo evaluate``'s lines for a multi-label run: the summary, then a row per label."""
    click.echo(
        f"mAP {report['map']:.4f}  F1 micro {report['f1_micro']:.4f} macro "
        f"{report['f1_macro']:.4f} at threshold {report['threshold']:g}  exact match "
        f"{report['accuracy']:.2%}  loss {report['loss']:.4f}  ({report['images']} images)"
    )
    width = max(len(c) for c in [*report["classes"], "label"])
    click.echo(f"  {'label':<{width}}  precision  recall      F1      AP  images")
    for name, row in report["per_label"].items():
        cells = "".join(
            f"{_cell(row[k]):>{w}}" for k, w in (("precision", 9), ("recall", 8), ("f1", 8))
        )
        click.echo(f"  {name:<{width}}  {cells}{_cell(row['ap']):>8}  {row['support']:>6}")


def _cell(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def echo_tags(row: dict) -> None:
    """``zoo predict``'s line for an image of a multi-label run."""
    found = ", ".join(f"{t['label']} {t['probability']:.1%}" for t in row["labels"])
    click.echo(f"{row['image']}: {found or '(no label reaches the threshold)'}")
