"""``zoo lr-find``: the learning-rate range test, with ``zoo finetune``'s options."""

from __future__ import annotations

import sys

import click

from zoo.cli._finetune import finetune
from zoo.cli._render import defaults_of, emit_json, json_option
from zoo.training import lr_find as run_lr_find

DEFAULTS = defaults_of(run_lr_find)
# finetune's options that a range test has no use for: it runs no epochs and keeps no run.
LEFT_OUT = ("name", "resume", "output", "epochs", "patience")


@click.command("lr-find")
@click.argument("name")
@click.option(
    "--png",
    type=click.Path(dir_okay=False),
    default="lr-find.png",
    show_default=True,
    help="Where to draw the loss against the learning rate; the suffix names the format.",
)
@click.option("--steps", type=int, default=DEFAULTS["steps"], show_default=True,
              help="Optimizer steps, one batch each (at most 100).")  # fmt: skip
@click.option("--start-lr", type=float, default=DEFAULTS["start"], show_default=True)
@click.option("--end-lr", type=float, default=DEFAULTS["end"], show_default=True)
@json_option("Print a JSON object: rates, losses, smoothed losses, suggestion.")
def lr_find(name, png, steps, start_lr, end_lr, as_json, **options):
    """Find a learning rate for fine-tuning NAME: the rate grows exponentially from
    --start-lr to --end-lr over at most 100 steps and stops when the loss diverges; prints
    the rate where the smoothed loss falls fastest and draws the curve. No run directory is
    left behind. Takes zoo finetune's options (--data, --freeze-until, --optimizer, ...).

    \b
    zoo lr-find resnet34 --data ./pets --freeze-until layer3
    zoo lr-find mobilenet_v2 --data ./pets --recipe modern --png lr.png --json
    """
    from zoo.runs import plot_lr_find
    from zoo.training import reporter_for

    given = {k: v for k, v in options.items() if v is not None}
    result = run_lr_find(
        name, given.pop("data", None), start=start_lr, end=end_lr, steps=steps,
        reporter=reporter_for(sys.stderr), **given,
    )  # fmt: skip
    picture = plot_lr_find(
        result.lrs, result.losses, result.smoothed, png, suggestion=result.suggestion, title=name
    )
    if as_json:
        return emit_json({**result.to_dict(), "png": str(picture)})
    ended = "the loss diverged" if result.diverged else "the end of the range"
    click.echo(
        f"{len(result.lrs)} steps from {result.lrs[0]:.2g} to {result.lrs[-1]:.2g} ({ended})"
    )
    click.echo(f"suggested learning rate: {result.suggestion:.2g} (steepest fall of the loss)")
    click.echo(f"curve: {picture}")


lr_find.params.extend(p for p in finetune.params if p.name not in LEFT_OUT)
