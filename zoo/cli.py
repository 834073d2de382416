"""The ``zoo`` command: a thin layer that parses options, calls the library, renders results.

Every ``ZooError``, and every ``OSError`` (a path the system refuses), becomes one line on
stderr and exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import click

from zoo.errors import ZooError


class ZooGroup(click.Group):
    """Turns the library's errors, and a path the system refuses, into one clear line, in
    one place."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ZooError, OSError) as exc:
            # A closed pipe (zoo list | head) is click's to end quietly.
            if ctx.obj and ctx.obj.get("debug") or isinstance(exc, BrokenPipeError):
                raise
            click.echo(f"Error: {_one_line(exc)}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))


def _one_line(exc: Exception) -> str:
    """A ZooError's own message; for an OSError (an output folder that cannot be created, a
    file that cannot be written or read) the system's reason and the path."""
    if not isinstance(exc, OSError):
        return str(exc)
    path = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{path}; check the path and its permissions (--debug: traceback)"


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.option("--offline", is_flag=True, help="Forbid every network attempt (ZOO_OFFLINE=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, offline: bool) -> None:
    """A model zoo for fine-tuning image classifiers.

    \b
    zoo list 'resnet*'
    zoo info resnet34
    zoo finetune resnet34 --data ./pets --freeze-until layer3
    """
    ctx.ensure_object(dict)["debug"] = debug
    if offline:
        os.environ["ZOO_OFFLINE"] = "1"
    logging.basicConfig(
        format="zoo: warning: %(message)s", level=logging.WARNING, stream=sys.stderr
    )


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


@cli.command(name="list")
@click.argument("patterns", nargs=-1)
@click.option("--source", "-s", help="Only backbones from this source (torchvision, timm, ...).")
@click.option("--pretrained", is_flag=True, help="Only architectures with published weights.")
@click.option("--cached", is_flag=True, help="Only backbones whose default weights are local.")
@click.option("--refresh", is_flag=True, help="Rebuild the backbone index first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
def list_command(patterns, source, pretrained, cached, refresh, as_json):
    """List backbones, filtered by fnmatch PATTERNS on the arch (or on SOURCE:ARCH).

    \b
    zoo list 'resnet*'
    zoo list 'timm:convnext*' --pretrained
    zoo list --cached --json
    """
    from zoo import registry

    if refresh:
        registry.clear_index()
    rows = registry.list_backbones(
        list(patterns), source=source, pretrained=pretrained, cached=cached
    )
    if as_json:
        return emit_json(rows)
    if not rows:
        click.echo("no backbones match", err=True)
        return
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        tag = r["default_tag"] or "-"
        more = f" (+{len(r['tags']) - 1} tags)" if len(r["tags"]) > 1 else ""
        mark = "  cached" if r["cached"] else ""
        click.echo(f"{r['id']:<{width}}  {tag}{more}{mark}")


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def info(name, as_json):
    """Describe backbone NAME: parameters, preprocessing, head, freeze points, weights.

    \b
    zoo info resnet34
    zoo info timm:convnext_tiny --json
    """
    from zoo import models

    data = models.info(name)
    if as_json:
        return emit_json(data)
    head = data["head"]
    lines = [
        f"id:            {data['id']}"
        + (f"  (also: {', '.join(data['also'])})" if data["also"] else ""),
        f"description:   {data['description'] or '(none given)'}",
        f"parameters:    {data['num_params']:,}",
        f"input size:    {tuple(data['input_size'])}, {data['interpolation']}, "
        f"crop {data['crop_pct']:.3f}",
        f"mean / std:    {tuple(round(x, 4) for x in data['mean'])} / "
        f"{tuple(round(x, 4) for x in data['std'])}",
        f"head:          {head['module']} ({head['in_features']} -> {head['out_features']})"
        + (f", auxiliary: {', '.join(data['aux_heads'])}" if data["aux_heads"] else ""),
        f"freeze points: {', '.join(data['freeze_points'])}, backbone",
        f"tags:          {', '.join(data['tags']) or 'none'}",
        f"weights:       {data['weights_path'] or 'none published'}"
        + ("  (cached)" if data["cached"] else "  (not cached)" if data["weights_path"] else ""),
    ]
    click.echo("\n".join(lines))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
def plugins(as_json):
    """List plugins: name, distribution, version, backbones, status.

    \b
    zoo plugins
    zoo plugins --json
    """
    from zoo import plugins as plugin_mod
    from zoo.registry import get_registry

    registry = get_registry()
    rows = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "builtin": p.builtin,
            "backbones": len(registry.by_source.get(p.name, {})),
            "status": p.status,
        }
        for p in plugin_mod.plugin_infos()
    ]
    if as_json:
        return emit_json(rows)
    for r in rows:
        dist = f"{r['distribution']} {r['version'] or ''}".strip() if r["distribution"] else "-"
        click.echo(f"{r['name']:<14} {dist:<22} {r['backbones']:>5} backbones  {r['status']}")


def _parse_map(ctx, param, values):
    import re

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


# zoo.transfer's messages name its Python arguments; on the command line, the options.
TRANSFER_OPTIONS = {
    "key_map": "--map",
    "min_coverage": "--min-coverage",
    "with prefix or": "with --prefix or",
    "drop strict": "drop --strict",
}


@cli.command()
@click.argument("source_weights", type=click.Path(dir_okay=False))
@click.option("--into", "into", required=True, help="The target backbone, e.g. resnet50.")
@click.option("--num-classes", type=click.IntRange(min=1), help="Classes of the target head.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the result (.safetensors, else a torch state dict).",
)
@click.option("--prefix", help="Use only keys under this prefix, e.g. backbone.")
@click.option(
    "--map",
    "key_map",
    multiple=True,
    callback=_parse_map,
    metavar="REGEX=REPL",
    help="Rewrite source keys by regex; repeatable, applied in order.",
)
@click.option("--strict", is_flag=True, help="Fail unless every key loads.")
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 1),
    help="Fail if less than this fraction of the parameters loads.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def transfer(
    source_weights, into, num_classes, output, prefix, key_map, strict, min_coverage, as_json
):
    """Load what fits of SOURCE_WEIGHTS into backbone INTO and report the rest.

    \b
    zoo transfer old-model.pth --into resnet50 --num-classes 9 -o resnet50-9.pt
    zoo transfer ckpt.safetensors --into resnet34 --prefix backbone. --min-coverage 0.9
    zoo transfer tf.pth --into resnet34 --map '^net\\.=' --strict --json
    """
    from zoo import models
    from zoo.errors import TransferError

    try:
        report = models.transfer_checkpoint(
            source_weights,
            into,
            num_classes=num_classes,
            output=output,
            prefix=prefix,
            key_map=key_map,
            strict=strict,
            min_coverage=min_coverage,
        )
    except TransferError as exc:
        message = str(exc)
        for name, option in TRANSFER_OPTIONS.items():
            message = message.replace(name, option)
        raise TransferError(message) from exc
    if as_json:
        return emit_json({**report.to_dict(), "output": output})
    click.echo(report.summary())
    if output:
        click.echo(f"wrote {output}")


@cli.command(context_settings={"show_default": True})
@click.argument("name", required=False)
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="Image folder: DIR/train/<class>/* + DIR/valid/<class>/*, or DIR/<class>/*. "
    "Default: the embedded shapes dataset.",
)
@click.option(
    "--weights",
    default=None,
    show_default="default tag",
    help="A weights tag, a file (.pth .pt .bin .safetensors), a run directory, or none.",
)
@click.option(
    "--freeze-until",
    help="Freeze up to and including this point (see zoo info), "
    "or 'backbone' for all but the head.",
)
@click.option(
    "--train-bn", is_flag=True, default=None, help="Let BatchNorm layers in the frozen part train."
)
@click.option("--num-classes", type=int, help="Head size. Default: the classes found.")
@click.option("--epochs", type=int, default=None, show_default="25")
@click.option(
    "--batch-size",
    type=int,
    default=None,
    show_default="64",
    help="Per process (under torchrun, each process takes this many).",
)
@click.option("--lr", type=float, default=None, show_default="0.001")
@click.option("--momentum", type=float, default=None, show_default="0.9")
@click.option(
    "--optimizer",
    type=click.Choice(["sgd", "adam", "adamw", "rmsprop"]),
    default=None,
    show_default="sgd",
)
@click.option("--weight-decay", type=float, default=None, show_default="0")
@click.option(
    "--scheduler",
    default=None,
    show_default="step",
    type=click.Choice(["step", "multistep", "exponential", "plateau", "cosine", "none"]),
)
@click.option(
    "--step-size", type=int, default=None, show_default="7", help="step: epochs between decays."
)
@click.option("--gamma", type=float, default=None, help="Decay factor [0.1; 0.9 for exponential].")
@click.option(
    "--patience", type=int, help="Stop after this many epochs without a better valid accuracy."
)
@click.option("--seed", type=int, default=None, show_default="0")
@click.option("--device", default=None, show_default="auto", help="auto, cpu, cuda[:N] or mps.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default=None,
    show_default="auto",
)
@click.option("--workers", type=int, help="DataLoader workers [usable cores - 1, at most 4].")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    help="Run directory [runs/<arch>-<YYYYmmdd-HHMMSS>].",
)
@click.option(
    "--val-split",
    type=float,
    default=None,
    show_default="0.2",
    help="Validation fraction for DIR/<class>/* folders.",
)
@click.option("--image-size", type=int, help="Override the backbone's input size.")
@click.option(
    "--augment/--no-augment",
    default=None,
    show_default="augment",
    help="Random resized crop and flip while training; without them the train images are "
    "decoded once and kept in memory, like the valid ones.",
)
@click.option(
    "--cache-features/--no-cache-features",
    default=None,
    show_default="when possible",
    help="Run the frozen part once per image and train on its stored outputs "
    "(needs --freeze-until and --no-augment).",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False),
    help="Continue this run; options come from its config.json.",
)
def finetune(name, resume, **options):
    """Fine-tune backbone NAME on an image folder and write a run directory.

    \b
    zoo finetune resnet34 --data ./pets --freeze-until layer3
    zoo finetune timm:convnext_tiny --data ./pets --epochs 10 --optimizer adamw --lr 3e-4
    zoo finetune resnet34 --data ./pets --freeze-until layer3 --no-augment  # caches features
    zoo finetune --resume runs/resnet34-20261122-101500 --epochs 40

    The run directory holds config.json, metrics.jsonl, best.pt, last.pt, summary.json and
    curves.png. Ctrl-C saves and prints the resume command.
    """
    from zoo.training import finetune as run_finetune
    from zoo.training import reporter_for

    given = {k: v for k, v in options.items() if v is not None}
    run_finetune(name, given.pop("data", None), resume=resume, reporter=reporter_for(), **given)


@cli.command()
@click.argument("run", type=click.Path(exists=True))
@click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False),
    help="A folder of DATA/<class>/* images, e.g. pets/valid.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader workers.")
@click.option(
    "--png",
    type=click.Path(dir_okay=False),
    help="Where to draw the confusion matrix [RUN/confusion-<data>.png].",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def evaluate(run, data, batch_size, device, workers, png, as_json):
    """Evaluate RUN (a run directory or its best.pt) on an image folder.

    \b
    zoo evaluate runs/resnet34-20261122-101500 --data ./pets/valid
    zoo evaluate runs/resnet34-20261122-101500/best.pt --data ./pets/test --json
    """
    from zoo.runs import evaluate as run_evaluate

    report = run_evaluate(run, data, batch_size=batch_size, device=device, workers=workers, png=png)
    if as_json:
        return emit_json(report)
    click.echo(
        f"accuracy {report['accuracy']:.2%}  loss {report['loss']:.4f}  ({report['images']} images)"
    )
    width = max(len(c) for c in report["classes"])
    for name, acc in report["per_class_accuracy"].items():
        click.echo(f"  {name:<{width}}  " + (f"{acc:.2%}" if acc is not None else "no images"))
    click.echo(f"confusion matrix drawn to {report['confusion_png']}")


@cli.command()
@click.argument("run", type=click.Path(exists=True))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per image.")
def predict(run, images, top_k, device, as_json):
    """Classify IMAGES with RUN (a run directory or its best.pt).

    \b
    zoo predict runs/resnet34-20261122-101500 cat.jpg dog.png
    zoo predict runs/resnet34-20261122-101500/best.pt *.jpg --top-k 1 --json
    """
    from zoo.runs import predict as run_predict

    rows = run_predict(run, list(images), top_k=top_k, device=device)
    if as_json:
        return emit_json(rows)
    for row in rows:
        best = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in row["top"])
        click.echo(f"{row['image']}: {best}")


def main() -> None:
    cli(prog_name="zoo")
