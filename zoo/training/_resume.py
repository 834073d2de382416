"""Planning a resume: the run's own options and data folder, and the few options a resumed
run may change; the checks on what it already ran, and its LR schedule for a new length."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import RunError, UnknownBackboneError
from zoo.runs import RunDir
from zoo.training._config import TrainConfig
from zoo.training._record import absolute

if TYPE_CHECKING:
    from zoo.training._progress import Reporter
    from zoo.training._state import TrainingState

RESUME_OVERRIDES = (
    "epochs", "device", "workers", "patience", "precision", "compile", "cache_features",
)  # fmt: skip


def resume_plan(
    run: RunDir, name: str | None, data: str | None, options: dict
) -> tuple[dict, TrainConfig]:
    """The run's config.json (its data folder made absolute) and the options it resumes with:
    its own, but for those of ``options`` (``TrainConfig``'s fields) a resume may change.

    A NAME or --data is refused unless it is the run's own backbone or data folder.
    """
    record = run.read_config()
    options = _own_labels(record, options)
    overrides = _overrides(options)
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


def _own_labels(record: dict, options: dict) -> dict:
    """``options`` without --labels when it names the run's own labels CSV (as for --data)."""
    given, own = options.get("labels"), record["options"].get("labels")
    if given is None or not (own and _same_folder(Path(given), Path(own))):
        return options
    return {k: v for k, v in options.items() if k != "labels"}


def _overrides(options: dict) -> dict:
    """The options a resumed run may change; anything else comes from its config.json."""
    extra = {k for k, v in options.items() if v is not None and k not in RESUME_OVERRIDES}
    if extra:
        raise RunError(
            f"--resume takes its options from the run's config.json; only "
            f"{', '.join(TrainConfig.flag(k) for k in RESUME_OVERRIDES)} may be given "
            f"(got {', '.join(TrainConfig.flag(k) for k in sorted(extra))})"
        )
    return {k: v for k, v in options.items() if v is not None}


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
        return absolute(data)  # the class names are checked against the run's
    if data is not None and not _same_folder(Path(data), recorded):
        raise RunError(
            f"--resume takes the data folder from the run's config.json ({recorded}); "
            f"drop --data ({data}), or start a new run without --resume"
        )
    if recorded.is_dir():
        return absolute(recorded)
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


def check_nothing_ran(run: RunDir) -> None:
    """Refuse to start over a run that has finished epochs but lost its last.pt."""
    done = len(run.metrics())
    if done:
        raise RunError(
            f"{run.file('last.pt')} is missing, but {run.path} already ran {done} "
            f"epoch{'s' if done != 1 else ''} (metrics.jsonl); restore last.pt from a copy "
            "of the run, or start a new run with another -o"
        )


def check_epochs(
    run: RunDir, config: TrainConfig, reporter: Reporter, done: int, asked: int | None
) -> None:
    """Refuse to shorten a run; say so when there is nothing left to run."""
    ran = f"{run.path} already ran {done} epoch{'s' if done != 1 else ''}"
    extend = f"pass --epochs {done + 1} or more to extend it"
    if asked is not None and asked < done:
        raise RunError(f"{ran}, more than --epochs {asked}; {extend}")
    if done >= config.epochs:
        config.epochs = done  # a config.json from before runs were extended in it
        reporter.note(f"{ran}; {extend}")


def resize_schedule(state: TrainingState, config: TrainConfig, recorded: int | None) -> None:
    """A run resumed with another --epochs than its LR schedule is for gets the schedule for
    the new length (``zoo.training._optim.resize_schedule``)."""
    from zoo.training._optim import resize_schedule as resized

    p = state.progress
    planned = p.schedule_epochs or recorded  # last.pt says; config.json for older runs
    if config.epochs > p.epoch and planned != config.epochs:
        state.scheduler = resized(state.scheduler, state.optimizer, config, p.epoch)
    p.schedule_epochs = config.epochs
