"""``zoo.finetune``: the seeds' train_model recipe on an image folder, with a run directory.

Each epoch has a train and a valid phase; the best weights are those with the highest valid
accuracy. Every random generator is re-seeded from (seed, epoch) at each epoch start, so an
epoch's randomness does not depend on whether the run was stopped and resumed before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import RunError, TrainingError, UnknownBackboneError
from zoo.runs import RunDir, default_output, versions
from zoo.training._config import TrainConfig
from zoo.training._progress import Reporter

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
    from zoo.training._session import Session

    reporter = reporter or Reporter()
    if resume is not None:
        run = RunDir.open(resume)
        record, config = resume_plan(run, name, data, _overrides(options))
        session = Session.resume(run, record, config, reporter, epochs=options.get("epochs"))
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
            f"{', '.join(_flag(k) for k in RESUME_OVERRIDES)} may be given "
            f"(got {', '.join(_flag(k) for k in sorted(extra))})"
        )
    return {k: v for k, v in options.items() if v is not None}


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def resume_plan(
    run: RunDir, name: str | None, data: str | None, overrides: dict
) -> tuple[dict, TrainConfig]:
    """The run's config.json (its data folder made absolute) and the options it resumes with.

    A NAME or --data is refused unless it is the run's own backbone or data folder.
    """
    record = run.read_config()
    _check_backbone(run, record, name)
    folder = _resumed_data(run, record, data)
    options = {**record["options"], **overrides}
    if options.get("data") is not None or data is not None:
        options["data"] = folder
    try:
        config = TrainConfig.from_dict(options).check()
    except (TypeError, ValueError) as exc:
        raise RunError(
            f"{run.file('config.json')} holds a malformed option ({exc}); restore it from a "
            "copy of the run, or start a new run"
        ) from None
    return {**record, "data": folder}, config


def _check_backbone(run: RunDir, record: dict, name: str | None) -> None:
    from zoo.registry import get_registry

    if name is None or name in (record["id"], record["options"].get("name")):
        return
    try:
        backbone, tag = get_registry().get(name)
        same = backbone.id == record["id"] and tag in (None, record["weights"].get("tag"))
    except UnknownBackboneError:
        same = False
    if not same:
        raise RunError(
            f"--resume takes the backbone from the run's config.json ({record['id']}); "
            f"drop NAME ({name}), or start a new run without --resume"
        )


def _resumed_data(run: RunDir, record: dict, data: str | None) -> str:
    """The data folder to resume on, as an absolute path."""
    recorded = Path(record["data"]).expanduser()
    if data is not None and not recorded.is_dir():  # moved, or relative to another folder
        return _absolute(data)  # the class names are checked against the run's
    if data is not None and not _same_folder(Path(data), recorded):
        raise RunError(
            f"--resume takes the data folder from the run's config.json ({recorded}); "
            f"drop --data ({data}), or start a new run without --resume"
        )
    if recorded.is_dir():
        return _absolute(recorded)
    if not recorded.is_absolute():
        raise RunError(
            f"{run.file('config.json')} records the data folder as '{recorded}', relative "
            f"to the folder the run was started in, and there is no {recorded} here; resume "
            "from that folder, or pass --data with the data folder's path"
        )
    raise RunError(
        f"the run's data folder {recorded} does not exist; restore it, or pass --data "
        "with the folder's new path"
    )


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().samefile(b)
    except OSError:
        return False


def _absolute(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def new_run_dir(config: TrainConfig, arch: str, dist) -> RunDir:
    """Rank 0 makes the run directory; every rank gets its path."""
    from zoo.training import _distributed as distributed

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
    """config.json: every resolved option and what the run was made of.

    Paths are absolute, so the run resumes from any working directory.
    """
    options = config.to_dict()
    for key in ("data", "output"):
        if options[key] is not None:
            options[key] = _absolute(options[key])
    if weights and weights.get("tag") is None:  # a file or a run directory, not a tag
        options["weights"] = _absolute(config.weights)
        weights = {**weights, "path": _absolute(weights["path"])}
    return {
        "id": backbone_id,
        "options": options,
        "data": _absolute(data),
        "class_names": classes,
        "num_classes": config.num_classes or len(classes),
        "weights": weights,
        "preprocessing": preprocessing,
        "skipped_files": [list(s) for s in skipped],
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
