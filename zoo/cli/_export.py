"""``zoo export``: a run as a deployable model with its preprocessing inside."""

from __future__ import annotations

import click

from zoo.cli._render import emit_json, json_option


@click.command()
@click.argument("run", type=click.Path(exists=True))
@click.option(
    "--format",
    "format_",
    required=True,
    metavar="onnx|pt2|hf",
    help="onnx (onnxruntime), pt2 (torch.export) or hf (a folder for a model hub).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Where to write it [RUN/model.onnx, RUN/model.pt2, RUN/hf].",
)
@click.option("--force", is_flag=True, help="Replace an existing -o.")
@click.option(
    "--check",
    type=click.Path(exists=True, file_okay=False),
    help="Check the export on the images under this folder [the run's validation images].",
)
@json_option("Print a JSON object.")
def export(run, format_, output, force, check, as_json):
    """Export RUN (a run directory or its best.pt) as a model that needs no zoo: uint8 RGB
    images (N, 3, H, W) of any size in, class probabilities out, the run's resize, crop and
    normalisation inside. The export is checked against zoo on the run's validation images.

    \b
    zoo export runs/resnet34-20261122-101500 --format onnx
    zoo export runs/resnet34-20261122-101500 --format pt2 -o resnet34.pt2 --force
    zoo export runs/resnet34-20261122-101500 --format hf -o pets-resnet34
    """
    from zoo.export import export as run_export

    report = run_export(run, format_, output, force=force, check=check)
    if as_json:
        return emit_json(report)
    c = report["check"]
    click.echo(
        f"exported to {report['path']} ({report['bytes'] / 1e6:.1f} MB, {report['seconds']:.1f}s)"
    )
    click.echo(
        f"checked on {c['images']} images, alone and batched: largest probability difference "
        f"{c['max_abs_diff']:.2e}, {c['top_class_mismatches']} different top classes"
    )
