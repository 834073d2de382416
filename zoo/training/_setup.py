"""Setting up a run, new or resumed, from shared steps: this process's rank and device, the
data, the model, and the parts around it (optimizer, scheduler, scaler, batch source, loaders).

What does not change during a run is decided here, once: which rank writes and talks, where
batches come from. Every check that can fail comes before a new run's directory is made.

    >>> session = start_run(TrainConfig(name="resnet18", data="pets").check(), Reporter())
    >>> session = resume_run(run, record, config, Reporter())   # zoo.training._resume
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.compute import (
    memory_format,
    prepare_backends,
    resolve_device,
    resolve_precision,
    use_threads,
)
from zoo.data import (
    Preprocessing,
    data_folder_of,
    drop_unreadable,
    embedded_dataset,
    make_loaders,
    scan_training_data,
    train_steps,
)
from zoo.errors import DataError, RunError
from zoo.runs import RunDir, default_output
from zoo.training import _distributed as distributed
from zoo.training._notes import unused_options, unused_val_split
from zoo.training._progress import Reporter
from zoo.training._recipe import recipe_parts, resolve_batch_size, training_state
from zoo.training._record import config_record, valid_set_record
from zoo.training._resume import check_epochs, check_nothing_ran, resize_schedule
from zoo.training._seeding import seed_everything
from zoo.training._session import RunData, Session
from zoo.training._stages import unfreeze
from zoo.training._state import load_last
from zoo.training._task import task_for
from zoo.training._writer import writer_for
from zoo.training.cache._source import choose_batch_source

if TYPE_CHECKING:
    import torch

    from zoo.compute import Precision
    from zoo.training._config import TrainConfig
    from zoo.training._distributed import Dist


@dataclass
class _Setting:
    """Where and how this process runs, known before the model is built."""

    config: TrainConfig
    dist: Dist
    reporter: Reporter  # silent off rank 0
    device: torch.device
    precision: Precision


def start_run(config: TrainConfig, reporter: Reporter, run: RunDir | None = None) -> Session:
    """A new run of the checked ``config``; or ``run`` started over, when it was killed
    before its first save. Its directory is made once every check has passed."""
    from zoo.models import create

    dist, reporter = _this_process(reporter)
    if run is None and config.output:
        RunDir.check_free(config.output)
    asked = config.precision
    setting = _Setting(config, dist, reporter, *_choose_device(config, dist))
    for line in unused_options(config):
        reporter.note(line)
    distributed.barrier(dist)  # every rank checked --output before rank 0 writes
    data = _load_data(_data_folder(config, reporter), config, reporter)
    resolve_batch_size(config, len(data.split.train), dist.world, reporter)
    seed_everything(config.seed)
    model = create(
        config.name,
        num_classes=data.num_classes,
        weights=config.weights,
        freeze_until=config.freeze_until,
        train_bn=config.train_bn,
        image_size=config.image_size,
    )
    _precision_for_model(setting, asked, model)
    spec = model.zoo_spec
    pre = spec.preprocessing
    if config.image_size:
        pre = pre.with_image_size(config.image_size)
    meta = _meta(model, data, pre)
    session = _assemble(setting, data, meta, model, pre, run)
    record = config_record(
        config,
        backbone_id=spec.id,
        weights=spec.resolved.identity() if spec.resolved else {},
        classes=data.classes,
        preprocessing=pre.to_dict(),
        data=str(data.folder),
        skipped=data.skipped,
    )
    session.writer.config({**record, **valid_set_record(data.split)})
    session.writer.last(session.state, meta)  # epoch 0: a run killed in epoch 1 resumes
    return session


def resume_run(
    run: RunDir, record: dict, config: TrainConfig, reporter: Reporter, epochs: int | None = None
) -> Session:
    """Continue ``run`` (its checked config.json ``record``) with ``config``; ``epochs`` is
    the --epochs given, if any (``zoo.training._resume.resume_plan`` makes both)."""
    from zoo.models import create

    if not run.file("last.pt").is_file():
        check_nothing_ran(run)  # killed before its first save: start it over
        return start_run(config, reporter, run=run)
    dist, reporter = _this_process(reporter)
    saved = run.read_last()
    check_epochs(run, config, reporter, saved["progress"]["epoch"], epochs)
    asked = config.precision
    setting = _Setting(config, dist, reporter, *_choose_device(config, dist))
    data = _load_data(Path(record["data"]), config, reporter)
    if data.classes != record["class_names"]:
        raise RunError(
            f"the classes in {record['data']} changed since the run started "
            f"({', '.join(record['class_names'])}); restore the folder"
        )
    build_kwargs = record["weights"].get("build_kwargs")
    model = create(
        record["id"],
        num_classes=record["num_classes"],
        weights=None,
        freeze_until=config.freeze_until,
        train_bn=config.train_bn,
        build_kwargs=build_kwargs,
        image_size=config.image_size,
    )
    _precision_for_model(setting, asked, model)
    pre = Preprocessing.from_dict(record["preprocessing"])
    meta = _meta(model, data, pre)
    session = _assemble(setting, data, meta, model, pre, run, saved)
    resize_schedule(session.state, config, record["options"].get("epochs"))
    # Rank 0 records what the run now runs with: an extended run says so in config.json.
    session.writer.config({**record, "options": config.to_dict()})
    return session


def _this_process(reporter: Reporter) -> tuple[Dist, Reporter]:
    """This process's place under torchrun, and its reporter: rank 0 talks, others do not."""
    dist = distributed.from_environment()
    return dist, reporter if dist.is_main else Reporter()


def _choose_device(config: TrainConfig, dist: Dist) -> tuple[torch.device, Precision]:
    use_threads(config.threads)
    if dist.enabled:
        device = distributed.setup(dist, config.device)
    else:
        device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    config.precision = precision.name  # config.json records what auto resolved to
    return device, precision


def _precision_for_model(setting: _Setting, asked: str, model) -> None:
    """``auto`` again, now that the model is known (``zoo.compute.resolve_precision``)."""
    if asked == "auto":
        setting.precision = resolve_precision("auto", setting.device, model)
        setting.config.precision = setting.precision.name


def _data_folder(config: TrainConfig, reporter: Reporter) -> Path:
    if config.labels is not None:
        return Path(data_folder_of(config.labels))
    if config.data is not None:
        return Path(config.data)
    path = embedded_dataset()
    reporter.note(f"no --data given: using the embedded shapes dataset in {path}")
    return path


def _load_data(folder: Path, config: TrainConfig, reporter: Reporter) -> RunData:
    """``folder`` split and screened; a DataError when it cannot make a run."""
    exclude = [config.output] if config.output else []  # the run's own folder is never data
    split = scan_training_data(
        folder, labels=config.labels, multi_label=config.multi_label,
        val_split=config.val_split, seed=config.seed, exclude=exclude,
    )  # fmt: skip
    for path in split.left_out:
        reporter.note(f"leaving out {path}: it holds a zoo run, not images")
    for line in unused_val_split(config, split.layout):
        reporter.note(line)
    split, skipped = drop_unreadable(split)
    for path, reason in skipped:
        reporter.note(f"skipping unreadable {path}: {reason}")
    if not split.valid:
        raise DataError(
            f"{folder} gives no validation images; add a valid/ folder or more images per class"
        )
    num_classes = config.num_classes or len(split.classes)
    if num_classes < len(split.classes):
        raise DataError(
            f"--num-classes {num_classes} is fewer than the "
            f"{len(split.classes)} classes found in {folder}"
        )
    return RunData(folder, split, skipped, num_classes)


def _meta(model, data: RunData, pre: Preprocessing) -> dict:
    """What best.pt and last.pt say the model is: enough to build it again."""
    return {
        "id": model.zoo_spec.id,
        "num_classes": data.num_classes,
        "class_names": data.classes,
        "preprocessing": pre.to_dict(),
        "build_kwargs": model.zoo_spec.build_kwargs,  # a ViT's image size included
    }


def _assemble(
    setting: _Setting,
    data: RunData,
    meta: dict,
    model,
    pre: Preprocessing,
    run: RunDir | None,
    saved: dict | None = None,
) -> Session:
    """The session around ``model``: its state (restored from ``saved``, last.pt, when given),
    batch source and loaders; then its run directory, a new one when ``run`` is None."""
    import torch

    config, dist, device = setting.config, setting.dist, setting.device
    task = task_for(config, data.split)
    meta.update(task.meta)  # best.pt says multi-label, so evaluate and predict follow it
    prepare_backends(device)
    fmt = memory_format(model, device)
    model.to(device, memory_format=fmt or torch.preserve_format)
    steps = train_steps(len(data.split.train), config.batch_size, dist.world)
    state = training_state(model, config, device, setting.precision, steps)
    if saved is not None:  # before the batch source: the feature cache's key is the prefix's
        load_last(run, state, saved)
    if config.unfreeze_after and state.progress.epoch >= config.unfreeze_after:
        unfreeze(model, config)  # a run resumed after its boundary never freezes again
    train_model = distributed.wrap(model, dist, device)
    source, lines = choose_batch_source(
        config, model, train_model, data.split, pre, setting.precision, device,
        distributed=dist.enabled,
    )  # fmt: skip
    if config.compile:
        source.compile()
    loaders = make_loaders(
        data.split, pre, config, device, dist.rank, dist.world,
        raw=source.raw_parts, once=source.served_parts,
    )  # fmt: skip
    counts = _counts(model)
    for line in (_describe(setting, data, model, counts, fmt), *lines):
        setting.reporter.note(line)
    run = run or new_run_dir(config, model.zoo_spec.id.split(":", 1)[1], dist)
    return Session(
        config=config, dist=dist, reporter=setting.reporter, run=run,
        writer=writer_for(run, dist, config.tensorboard), data=data, meta=meta, device=device,
        precision=setting.precision, memory_format=fmt, loaders=loaders, source=source,
        state=state, counts=counts, task=task, **recipe_parts(config, data, task, device),
    )  # fmt: skip


def _counts(model) -> tuple[int, int]:
    """Frozen and trainable parameters."""
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return frozen, sum(p.numel() for p in model.parameters()) - frozen


def _describe(setting: _Setting, data: RunData, model, counts: tuple[int, int], fmt) -> str:
    """The line that says what runs where."""
    dist = setting.dist
    return (
        f"{model.zoo_spec.id}: {len(data.classes)} classes, "
        f"{len(data.split.train)} train / {len(data.split.valid)} valid images; "
        f"{counts[0]:,} frozen and {counts[1]:,} trainable parameters; "
        f"{setting.device.type}, {setting.precision.name}"
        + (", channels_last" if fmt else "")
        + (", torch.compile" if setting.config.compile else "")
        + (f", {dist.world} processes" if dist.enabled else "")
    )


def new_run_dir(config: TrainConfig, arch: str, dist: Dist) -> RunDir:
    """Rank 0 makes the run directory; every rank gets its path."""
    path = distributed.broadcast(dist, str(config.output or default_output(arch)))
    return RunDir.create(path) if dist.is_main else RunDir(path)
