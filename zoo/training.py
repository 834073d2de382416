"""``zoo.finetune``: the seeds' train_model recipe on an image folder, with a run directory.

Each epoch has a train and a valid phase; the best weights are those with the highest valid
accuracy. Every random generator is re-seeded from (seed, epoch) at each epoch start, so an
epoch's randomness does not depend on whether the run was stopped and resumed before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import RunError, TrainingError
from zoo.options import TrainConfig
from zoo.progress import Reporter
from zoo.rundir import RunDir, default_output, versions

RESUME_OVERRIDES = ("epochs", "device", "workers", "patience", "precision", "cache_features")


@dataclass
class FinetuneResult:
    """What a finished run left behind."""

    run_dir: Path  # the run directory
    summary: dict  # summary.json's content
    metrics: list[dict]  # metrics.jsonl's rows


def finetune(
    name: str | None = None,
    data: str | None = None,
    *,
    resume: str | None = None,
    reporter: Reporter | None = None,
    **options,
) -> FinetuneResult:
    """Fine-tune backbone ``name`` on the image folder ``data``; or continue run ``resume``.

    ``options`` are ``TrainConfig``'s fields (``epochs``, ``freeze_until``, ``lr``, ...).

    >>> result = zoo.finetune("resnet34", "pets", freeze_until="layer3", epochs=5)
    >>> result.summary["best_val_acc"]
    0.93
    """
    from zoo.session import Session

    reporter = reporter or Reporter()
    if resume is not None:
        session = Session.resume(RunDir.open(resume), _overrides(options), reporter)
    else:
        if name is None:
            raise TrainingError("name a backbone to fine-tune, or pass --resume RUN_DIR")
        config = TrainConfig(name=name, data=data, **options).check()
        session = Session.start(config, reporter)
    return session.fit()


def _overrides(options: dict) -> dict:
    """The options a resumed run may change; anything else comes from its config.json."""
    extra = {k for k, v in options.items() if v is not None and k not in RESUME_OVERRIDES}
    if extra:
        raise RunError(
            f"--resume takes its options from the run's config.json; only "
            f"{', '.join('--' + k for k in RESUME_OVERRIDES)} may be given "
            f"(got {', '.join('--' + k.replace('_', '-') for k in sorted(extra))})"
        )
    return {k: v for k, v in options.items() if v is not None}


def new_run_dir(config: TrainConfig, arch: str, dist) -> RunDir:
    """Rank 0 makes the run directory; every rank gets its path."""
    from zoo import distributed

    path = distributed.broadcast(dist, str(config.output or default_output(arch)))
    return RunDir.create(path) if dist.is_main else RunDir(path)


def config_record(
    config: TrainConfig,
    *,
    backbone_id: str,
    weights: dict,
    classes: list[str],
    preprocessing: dict,
    data: str,
    skipped: list,
) -> dict:
    """config.json: every resolved option and what the run was made of."""
    return {
        "id": backbone_id,
        "options": config.to_dict(),
        "data": data,
        "class_names": classes,
        "num_classes": config.num_classes or len(classes),
        "weights": weights,
        "preprocessing": preprocessing,
        "skipped_files": [list(s) for s in skipped],
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
