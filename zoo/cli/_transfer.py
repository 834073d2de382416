"""``zoo transfer``: the partial loader as a command.

The library's messages name this command's flags themselves (``zoo.transfer.FLAGS``), so
its errors pass through unchanged.
"""

from __future__ import annotations

import re

import click

from zoo.cli._render import emit_json, json_option
from zoo.transfer import MATCHES


def _parse_map(ctx, param, values):
    pairs = []
    for value in values:
        pattern, sep, replacement = value.partition("=")
        if not sep or not pattern:
            raise click.BadParameter(f"'{value}' is not REGEX=REPLACEMENT", ctx, param)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise click.BadParameter(f"'{pattern}' is not a regex: {exc}", ctx, param) from None
        pairs.append((pattern, replacement))
    return pairs


@click.command()
@click.argument("source_weights", type=click.Path())
@click.option("--into", "into", required=True, help="The target backbone, e.g. resnet50.")
@click.option("--num-classes", type=click.IntRange(min=1), help="Classes of the target head.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the result (.safetensors, else a torch file).",
)
@click.option("--prefix", help="Use only keys under this prefix, e.g. backbone.")
@click.option(
    "--map",
    "key_map",
    multiple=True,
    callback=_parse_map,
    metavar="REGEX=REPL",
    help="Rewrite source keys by regex; repeatable, applied in order (after --map-file's).",
)
@click.option(
    "--map-file",
    type=click.Path(dir_okay=False),
    help="Read REGEX=REPL rules from a file, one a line (# starts a comment line).",
)
@click.option(
    "--match",
    type=click.Choice(MATCHES),
    default="names",
    show_default=True,
    help="Pair tensors by key name, or by order and shape (the same architecture under "
    "other names).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Fail unless every key loads (the head --num-classes replaces excepted).",
)
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 1),
    help="Fail, writing nothing, if less than this fraction of the parameters loads "
    "[0.5; 0 accepts anything].",
)
@json_option("Print the report as JSON.")
def transfer(source_weights, into, output, as_json, **options):
    """Load what fits of SOURCE_WEIGHTS (a weights file, or a zoo run directory: its
    best.pt) into backbone INTO and report the rest.

    \b
    zoo transfer old-model.pth --into resnet50 --num-classes 9 -o resnet50-9.pt
    zoo transfer runs/resnet34-20261122-101500 --into resnet34 --num-classes 9 -o r34-9.pt
    zoo transfer ckpt.safetensors --into resnet34 --prefix backbone. --min-coverage 0.9
    zoo transfer tf.pth --into resnet34 --map '^net\\.=' --strict --json
    zoo transfer efficientnet-lite0.pth --into timm:tf_efficientnet_lite0 --match order \\
        --num-classes 10 -o lite0-10.safetensors

    The written file records where it came from (source, sha256, coverage, mapping), and a
    run fine-tuned from it records that in its config.json.
    """
    from zoo import models

    report = models.transfer_checkpoint(source_weights, into, output=output, **options)
    if as_json:
        return emit_json({**report.to_dict(), "output": output})
    click.echo(report.summary())
    if output:
        click.echo(f"wrote {output}")
