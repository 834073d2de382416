"""``zoo compare``: a linear-probe bake-off of several backbones on the user's own data."""

from __future__ import annotations

import sys

import click

from zoo.cli._backbones import count, filter_options, gflops_text
from zoo.cli._labels import labels_options
from zoo.cli._render import emit_json, json_option
from zoo.training import TrainConfig


@click.command(context_settings={"show_default": True})
@click.argument("patterns", nargs=-1, required=True, metavar="NAME_OR_PATTERN...")
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="Image folder, as for zoo finetune. Default: the embedded shapes dataset.",
)
@click.option(
    "--output", "-o", type=click.Path(file_okay=False), help="Folder [runs/compare-<time>]."
)
@click.option("--epochs", type=int, default=10, help="Epochs of head training per backbone.")
@click.option("--image-size", type=int, help="Override each backbone's input size.")
@click.option("--batch-size", type=int, default=64, help="Also the batch of the speed test.")
@click.option("--lr", type=float, default=0.001, help="The head's learning rate (SGD).")
@click.option("--limit", type=int, default=20, help="Refuse more backbones than this.")
@click.option("--source", "-s", help="Only backbones from this source.")
@filter_options
@click.option("--seed", type=int, default=0, help="Seeds the split, the head and the data order.")
@click.option("--device", default="auto", help="auto, cpu, cuda[:N] or mps.")
@click.option(
    "--precision",
    type=click.Choice(TrainConfig.CHOICES["precision"]),
    default="auto",
    help="As for zoo finetune; also the speed test's.",
)
@click.option("--workers", type=int, help="DataLoader workers [usable cores - 1, at most 4].")
@labels_options
@json_option("Print the leaderboard as JSON rows (progress goes to stderr).")
def compare(patterns, data, output, limit, source, as_json, **options):
    """Linear-probe each backbone on your data and rank them: a bake-off.

    Each backbone starts from its default pretrained weights (or the tag in its name); its
    whole body is frozen and runs once over every image, then a fresh head trains on the
    stored features. PATTERNS expand as in zoo list, and its filters apply. A backbone whose
    weights file is not on this machine is skipped, saying which file is missing.

    \b
    zoo compare resnet18 mobilenet_v2 efficientnet_b0 --data ./pets
    zoo compare 'timm:convnext*' --data ./pets --min-top1 82 --max-params 30M --limit 5
    zoo compare 'mobilenet*' --source torchvision --data ./pets --epochs 5 --json
    zoo compare resnet18 mobilenet_v2 --labels ./photos/tags.csv --multi-label

    With --labels FILE.csv in place of --data, the runs read the CSV; with --multi-label too,
    the leaderboard ranks by mean average precision (val_map).

    The folder (-o) holds leaderboard.json, compare.png (accuracy against images/s, the
    Pareto front marked) and one ordinary run directory per backbone: zoo evaluate,
    zoo predict and zoo finetune --weights work on each.
    """
    from zoo.bakeoff import compare as run_compare
    from zoo.training import reporter_for

    filters = {k: options.pop(k) for k in ("max_params", "max_gflops", "min_top1", "sort")}
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    rows = run_compare(
        list(patterns), data, output=output, limit=limit, filters={"source": source, **filters},
        reporter=reporter_for(sys.stderr if as_json else sys.stdout), **given,
    )  # fmt: skip
    if as_json:
        return emit_json(rows)
    click.echo("\n".join(leaderboard_lines(rows)))


def leaderboard_lines(rows: list[dict]) -> list[str]:
    """The leaderboard as a table, best first, then the skipped backbones."""
    ran = [r for r in rows if "skipped" not in r]
    width = max([len(_name(r)) for r in ran] + [2])
    ranked_by_map = any("val_map" in r for r in ran)
    lines = [
        f"{'id':<{width}}  {'val_map  ' if ranked_by_map else ''}{'val_acc':>7}  "
        f"{'params':>7}  {'GFLOPs':>7}  {'img/s':>7}  {'seconds':>7}  run_dir"
    ]
    for r in ran:
        gflops = gflops_text(r["gflops"])
        lines.append(
            f"{_name(r):<{width}}  {_map(r)}{r['val_acc']:>7.2%}  "
            f"{count(r['params']):>7}  {gflops:>7}  {r['images_per_s']:>7.0f}  "
            f"{r['seconds']:>7.1f}  {r['run_dir']}"
        )
    lines += [f"skipped {_name(r)}: {r['skipped']}" for r in rows if "skipped" in r]
    return lines


def _map(row: dict) -> str:
    return f"{row['val_map']:>7.4f}  " if "val_map" in row else ""


def _name(row: dict) -> str:
    return f"{row['id']}.{row['tag']}" if row.get("tag") else row["id"]
