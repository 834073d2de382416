"""Planning a resume: the run's own options and data folder, and the few options a resumed
run may change."""

from __future__ import annotations

from pathlib import Path

from zoo.errors import RunError, UnknownBackboneError
from zoo.runs import RunDir
from zoo.training._config import TrainConfig
from zoo.training._record import absolute

RESUME_OVERRIDES = ("epochs", "device", "workers", "patience", "precision", "cache_features")


def resume_plan(
    run: RunDir, name: str | None, data: str | None, options: dict
) -> tuple[dict, TrainConfig]:
    """The run's config.json (its data folder made absolute) and the options it resumes with:
    its own, but for those of ``options`` (``TrainConfig``'s fields) a resume may change.

    A NAME or --data is refused unless it is the run's own backbone or data folder.
    """
    overrides = _overrides(options)
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
