"""``zoo finetune``: its options are ``TrainConfig``'s fields, with their flags, choices and
defaults taken from there, so that they are written once."""

from __future__ import annotations

import click

from zoo.training import TrainConfig

DEFAULTS = TrainConfig()


def _shown(value) -> str:
    # 0.0 reads as 0 in --help, 0.001 as 0.001.
    return f"{value:g}" if isinstance(value, float) else str(value)


def option(name: str, *decls: str, negatable: bool = False, **kwargs):
    """A click option for ``TrainConfig`` field ``name``: its flag, its choices and its default
    shown in --help. The option itself defaults to None, so that ``finetune`` passes on only
    what was typed (a resumed run takes the rest from its config.json)."""
    flag = TrainConfig.flag(name)
    if negatable:
        flag = f"{flag}/--no-{flag[2:]}"
    if name in TrainConfig.CHOICES:
        kwargs.setdefault("type", click.Choice(TrainConfig.CHOICES[name]))
    default = getattr(DEFAULTS, name)
    if default is not None and not isinstance(default, bool):
        kwargs.setdefault("show_default", _shown(default))
    return click.option(*decls, flag, default=None, **kwargs)


def _int_list(value: str | None) -> list[int] | None:
    """'10,20' -> [10, 20]; anything else is click's one-line usage error."""
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected whole numbers separated by commas, got {value!r}"
        ) from None


@click.command(context_settings={"show_default": True})
@click.argument("name", required=False)
@option(
    "data",
    type=click.Path(file_okay=False),
    help="Image folder: DIR/train/<class>/* + DIR/valid/<class>/* (or val/, or test/), or "
    "DIR/<class>/*. "
    "Default: the embedded shapes dataset.",
)
@option(
    "weights",
    show_default="default tag",
    help="A weights tag, a file (.pth .pt .bin .safetensors), a run directory, or none.",
)
@option(
    "freeze_until",
    help="Freeze up to and including this point (see zoo info), "
    "or 'backbone' for all but the head.",
)
@option("train_bn", is_flag=True, help="Let BatchNorm layers in the frozen part train.")
@option("num_classes", type=int, help="Head size. Default: the classes found.")
@option("epochs", type=int)
@option(
    "batch_size",
    type=int,
    help="Per process (under torchrun, each process takes this many). "
    "--recipe modern: 64, or less on a small training set (8 steps an epoch, at least 16).",
)
@option("lr", type=float)
@option("momentum", type=float)
@option("optimizer")
@option("weight_decay", type=float)
@option("scheduler")
@option("step_size", type=int, help="step: epochs between decays.")
@option("gamma", type=float, help="Decay factor [0.1; 0.9 for exponential].")
@option("patience", type=int, help="Stop after this many epochs without a better valid accuracy.")
@option("seed", type=int)
@option("device", help="auto, cpu, cuda[:N] or mps.")
@option("precision")
@option(
    "workers",
    type=int,
    help="DataLoader workers [on a GPU: cores - 1; on the CPU: cores - 1, at most 4; "
    "never more than the batches].",
)
@option(
    "output",
    "-o",
    type=click.Path(file_okay=False),
    help="Run directory [runs/<arch>-<YYYYmmdd-HHMMSS>].",
)
@option(
    "val_split",
    type=float,
    help="Validation fraction for DIR/<class>/* folders (or DIR/train/ without a valid/).",
)
@option(
    "image_size",
    type=int,
    help="Train at N px instead of the backbone's input size (ViTs are built for it); a size "
    "the backbone cannot take is refused, naming the smallest that works.",
)
@option(
    "augment",
    negatable=True,
    show_default="augment",
    help="Random resized crop and flip while training; without them the train images are "
    "decoded once and kept in memory, like the valid ones.",
)
@option(
    "cache_features",
    negatable=True,
    show_default="when possible",
    help="Run the frozen part once per image and train on its stored outputs "
    "(needs --freeze-until and --no-augment).",
)
@option(
    "milestones",
    callback=lambda ctx, param, value: _int_list(value),
    show_default="half and three quarters of --epochs",
    help="multistep: the epochs at which the learning rate decays, comma-separated (10,20).",
)
@option(
    "threads",
    type=click.IntRange(min=1),
    show_default="the CPUs this process may use",
    help="CPU threads for torch; fewer than the cores keeps a shared machine responsive.",
)
@option(
    "compile",
    negatable=True,
    show_default="no-compile",
    help="torch.compile the model (or the part that trains on cached features): faster steps "
    "after a compile of tens of seconds (minutes on a small CPU) at the first step.",
)
@option(
    "labels",
    type=click.Path(dir_okay=False),
    help="A CSV with columns image,label[,split] (split: train or valid; paths relative to "
    "the CSV's folder, or absolute), in place of --data.",
)
@option(
    "multi_label",
    is_flag=True,
    help="Labels in --labels separated by '|', any number per image: per-label binary "
    "cross-entropy, the best epoch by val_map.",
)
@option("threshold", type=float, help="--multi-label: a label is predicted from this probability.")
@option(
    "tensorboard",
    is_flag=True,
    help="Write the per-epoch scalars as TensorBoard events under RUN/tensorboard/ "
    "(pip install 'zoo[tensorboard]'; view with: tensorboard --logdir runs).",
)
@option(
    "recipe",
    help="A bundle of the options below: seeds (the seeds' recipe) or modern "
    "(AdamW, cosine with warmup, label smoothing, EMA, a batch size for small sets; "
    "see README). "
    "Options given win.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="A TOML file of options named as in config.json (label_smoothing = 0.1); "
    "options given on the command line win.",
)
@option("warmup_epochs", type=float, help="Linear learning-rate warmup, counted in steps.")
@option("label_smoothing", type=float, help="Label smoothing in [0, 1).")
@option("augment_policy", help="torchvision's augmentation policy on top of crop and flip.")
@option("mixup", type=float, help="Mixup alpha; 0: off.")
@option("cutmix", type=float, help="CutMix alpha; 0: off (with --mixup: one or the other).")
@option(
    "ema",
    type=float,
    help="Average the weights with this decay (e.g. 0.999); "
    "validation and the saved weights use the average.",
)
@option(
    "layer_decay",
    type=float,
    help="The head gets --lr, each freeze-point stage below it this times the one above.",
)
@option(
    "unfreeze_after",
    type=int,
    help="Train with --freeze-until for N epochs, then unfreeze everything.",
)
@option("class_weights", help="auto: weigh the loss by inverse class frequency.")
@option(
    "balanced",
    is_flag=True,
    help="Each epoch draws every class equally often "
    "(with replacement, as many images as the training set holds).",
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
    zoo finetune resnet34 --labels ./photos/tags.csv --multi-label
    zoo finetune mobilenet_v2 --data ./pets --recipe modern --epochs 10

    The run directory holds config.json, metrics.jsonl, best.pt, last.pt, summary.json,
    curves.png and README.md (the model card). Ctrl-C saves and prints the resume command.
    """
    from zoo.training import finetune as run_finetune
    from zoo.training import reporter_for

    given = {k: v for k, v in options.items() if v is not None}
    run_finetune(name, given.pop("data", None), resume=resume, reporter=reporter_for(), **given)
