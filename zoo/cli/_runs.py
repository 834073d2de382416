"""``zoo evaluate`` and ``zoo predict``: using a finished run."""

from __future__ import annotations

import click

from zoo.cli._labels import echo_multilabel_report, echo_tags, labels_option, threshold_option
from zoo.cli._render import defaults_of, emit_json, json_option
from zoo.runs import evaluate as run_evaluate
from zoo.runs import predict as run_predict

EVALUATE, PREDICT = defaults_of(run_evaluate), defaults_of(run_predict)


@click.command()
@click.argument("run", type=click.Path(exists=True))
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="A folder of DATA/<class>/* images, e.g. pets/valid. Default: the run's own "
    "validation set (the files it validated on: those --val-split held out, or its valid "
    "folder's).",
)
@labels_option
@threshold_option
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=EVALUATE["batch_size"],
    help="Images per batch [default: the run's own, so its precision computes the same].",
)
@click.option("--device", default=EVALUATE["device"], show_default=True)
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader workers.")
@click.option(
    "--png",
    type=click.Path(dir_okay=False),
    help="Where to draw the confusion matrix [RUN/confusion-<data>.png]; the suffix names "
    "the format (.png, .pdf, .svg, ...). Single-label runs.",
)
@click.option("--tta", is_flag=True, help="Average each prediction with its horizontal flip's.")
@click.option(
    "--top-losses",
    type=click.IntRange(min=1),
    help="Draw the N images with the highest loss (lowest probability of the true class).",
)
@click.option(
    "--top-losses-png",
    type=click.Path(dir_okay=False),
    help="Where to draw --top-losses [RUN/top-losses-<data>.png].",
)
@json_option("Print a JSON object.")
def evaluate(
    run, data, labels, threshold, batch_size, device, workers, png, tta, top_losses,
    top_losses_png, as_json,
):  # fmt: skip
    """Evaluate RUN (a run directory or its best.pt) on an image folder, a labels CSV's
    valid rows (every row without a split column), or, given neither, the run's own
    validation set. A multi-label run reports each label's precision, recall, F1 and
    average precision.

    The model computes as the run validated: the run's precision (bf16 autocast if it
    trained in bf16), memory format and batch size, so on the run's own validation set the
    accuracy is the run's best_val_acc.

    \b
    zoo evaluate runs/resnet34-20261122-101500 --data ./pets/valid
    zoo evaluate runs/resnet34-20261122-101500/best.pt --data ./pets/test --json
    zoo evaluate runs/resnet34-20261122-101500   # on the run's own validation set
    zoo evaluate runs/resnet34-20261122-101500 --data ./pets/valid --tta --top-losses 8
    zoo evaluate runs/tags-run --labels ./photos/tags.csv --threshold 0.4
    """
    report = run_evaluate(
        run, data, batch_size=batch_size, device=device, workers=workers, png=png,
        labels=labels, threshold=threshold, tta=tta, top_losses=top_losses or 0,
        top_losses_png=top_losses_png,
    )  # fmt: skip
    if as_json:
        return emit_json(report)
    if "per_label" in report:
        return echo_multilabel_report(report)
    click.echo(
        f"accuracy {report['accuracy']:.2%}  loss {report['loss']:.4f}  ({report['images']} images)"
    )
    _class_table(report)
    skipped = report["skipped_files"]
    if skipped:
        shown = ", ".join(skipped[:3]) + (
            f", ... ({len(skipped)} in all)" if len(skipped) > 3 else ""
        )
        click.echo(f"skipped {len(skipped)} unreadable file{'s' * (len(skipped) > 1)}: {shown}")
    click.echo(f"confusion matrix drawn to {report['confusion_png']}")
    if report.get("top_losses_png"):
        click.echo(f"top losses drawn to {report['top_losses_png']}")


def _class_table(report: dict) -> None:
    width = max(len(c) for c in [*report["classes"], "weighted"])
    click.echo(f"  {'':<{width}}  accuracy  precision  recall     f1  support")
    for name, acc in report["per_class_accuracy"].items():
        m = report["per_class"][name]
        shown = f"{acc:8.2%}" if acc is not None else "    none"
        click.echo(
            f"  {name:<{width}}  {shown}  {m['precision']:9.4f}  {m['recall']:6.4f}"
            f"  {m['f1']:.4f}  {m['support']:7d}"
        )
    for name in ("macro", "weighted"):
        m = report[name]
        click.echo(
            f"  {name:<{width}}  {'':8}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:.4f}"
        )


@click.command()
@click.argument("run", type=click.Path(exists=True))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", type=click.IntRange(min=1), default=PREDICT["top_k"], show_default=True)
@click.option("--device", default=PREDICT["device"], show_default=True)
@click.option("--tta", is_flag=True, help="Average each prediction with its horizontal flip's.")
@threshold_option
@json_option("Print a JSON list, one object per image.")
def predict(run, images, top_k, device, tta, threshold, as_json):
    """Classify IMAGES with RUN: a run directory, its best.pt, a folder `zoo export --format
    hf` wrote, or an exported .onnx or .pt2 file.

    An image may be a folder: every image file under it, subfolders included, in sorted
    order. A file that cannot be read is skipped with a line on stderr (in JSON its object
    has "skipped": REASON and no classes); the exit code is 1 only if no image was read.

    \b
    zoo predict runs/resnet34-20261122-101500 cat.jpg dog.png
    zoo predict runs/resnet34-20261122-101500 ./unsorted
    zoo predict runs/resnet34-20261122-101500/best.pt *.jpg --top-k 1 --json
    zoo predict model.onnx cat.jpg --tta
    zoo predict runs/tags-run photo.jpg --threshold 0.3  # a multi-label run

    A multi-label run prints every label whose probability reaches --threshold (JSON:
    "labels": [{"label", "probability"}...]); --top-k is for single-label runs.
    """
    rows = run_predict(run, list(images), top_k=top_k, device=device, tta=tta, threshold=threshold)
    for row in rows:
        if "skipped" in row:
            click.echo(f"skipping unreadable {row['image']}: {row['skipped']}", err=True)
    if as_json:
        return emit_json(rows)
    for row in (row for row in rows if "skipped" not in row):
        if "labels" in row:
            echo_tags(row)
            continue
        best = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in row["top"])
        click.echo(f"{row['image']}: {best}")
