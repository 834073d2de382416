"""``zoo.compare``: a linear-probe bake-off on the user's own data. Each backbone's whole
body is frozen and runs once over every image (the feature cache of ``zoo finetune
--freeze-until backbone --no-augment``); a fresh head trains on the stored features; the
leaderboard ranks them by best validation accuracy (mean average precision, ``val_map``, for a
``--multi-label`` labels CSV).

Every backbone's run is an ordinary run directory, made by ``zoo.finetune`` itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.bakeoff._plot import plot_compare
from zoo.bakeoff._select import Entry, plan
from zoo.data import embedded_dataset, scan_training_data
from zoo.errors import CompareError, DataError, WeightsError
from zoo.files import write_json
from zoo.runs import default_output
from zoo.training import Reporter, TrainConfig

if TYPE_CHECKING:
    from zoo.training import FinetuneResult

# A bake-off trains heads only, on stored features: fine-tuning's recipe otherwise.
PROBE = {"freeze_until": "backbone", "augment": False}


def compare(
    patterns: list[str] | tuple[str, ...],
    data: str | None = None,
    *,
    output: str | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    image_size: int | None = None,
    limit: int = 20,
    filters: dict | None = None,
    reporter: Reporter | None = None,
    **options,
) -> list[dict]:
    """Linear-probe every backbone ``patterns`` name on ``data``; the leaderboard's rows.

    ``filters`` are ``zoo.list_backbones``' (``max_params``, ``min_top1``, ``source``, ...);
    ``options`` other ``zoo.finetune`` options (``lr``, ``seed``, ``device``, ...). Rows:
    ``id``, ``tag``, ``val_acc``, ``params``, ``gflops``, ``images_per_s``, ``seconds``,
    ``run_dir``, best first; then ``{"id": ..., "skipped": REASON}`` for each backbone
    whose weights are not on this machine. ``output`` (default ``runs/compare-<time>``)
    gets ``leaderboard.json``, ``compare.png`` and one run directory per backbone.

    >>> rows = zoo.compare(["resnet18", "mobilenet_v2"], "pets", epochs=5)
    >>> rows[0]["id"], rows[0]["val_acc"]
    ('torchvision:resnet18', 0.94)
    """
    reporter = reporter or Reporter()
    settings = {"epochs": epochs, "batch_size": batch_size, "image_size": image_size, **options}
    TrainConfig(data=data, **PROBE, **settings).check()  # bad values, before anything
    if not (isinstance(limit, int) and limit > 0):
        raise CompareError(f"--limit must be a positive whole number, not {limit!r}")
    folder, where = _data_source(data, settings, reporter)
    entries = plan(list(patterns), filters or {}, limit)
    out = _output(output)
    runnable = [e for e in entries if not e.skipped]
    for entry in entries:
        if entry.skipped:
            reporter.note(f"skipping {entry.name}: {entry.skipped}")
    rows = []
    for number, entry in enumerate(runnable, 1):
        reporter.note(f"[{number}/{len(runnable)}] {entry.name}")
        rows.append(_run_one(entry, folder, out, settings, reporter))
    metric = "val_map" if settings.get("multi_label") else "val_acc"
    ran = sorted((r for r in rows if "skipped" not in r), key=lambda r: -r[metric])
    board = ran + [r for r in rows if "skipped" in r] + [_skipped(e) for e in entries if e.skipped]
    write_json(out / "leaderboard.json", board)
    if ran:
        plot_compare(ran, out / "compare.png", title=f"zoo compare on {where}")
    return board


def _data_source(data: str | None, settings: dict, reporter: Reporter) -> tuple:
    """(the image folder each run is given, or None for a labels CSV; what the data is called),
    checked once up front (each run screens its images again)."""
    labels = settings.get("labels")
    if data is None and labels is None:
        data = embedded_dataset()
        reporter.note(f"no --data given: using the embedded shapes dataset in {data}")
    split = scan_training_data(
        data, labels=labels, multi_label=settings.get("multi_label", False),
        val_split=settings.get("val_split", 0.2), seed=settings.get("seed", 0),
    )  # fmt: skip
    source = Path(labels) if labels is not None else Path(data)
    if not split.valid:
        raise DataError(f"{source} gives no validation images; add a valid/ folder or split")
    return (None if labels is not None else Path(data)), source.stem if labels else source.name


def _output(output: str | None) -> Path:
    out = Path(output) if output else default_output("compare")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CompareError(f"-o {out} exists and is not an empty folder; choose another -o")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _run_one(entry: Entry, folder, out: Path, settings: dict, reporter: Reporter) -> dict:
    """One backbone's run and its leaderboard row; a file that does not load skips it."""
    from zoo.training import finetune

    start = time.perf_counter()
    run_dir = out / entry.folder
    try:
        result = finetune(
            entry.name,
            folder and str(folder),
            output=str(run_dir),
            reporter=reporter,
            **PROBE,
            **settings,
        )
    except WeightsError as exc:  # a damaged or unloadable file: the others go on
        reporter.note(f"skipping {entry.name}: {exc}")
        return {"id": entry.backbone.id, "tag": entry.tag, "skipped": str(exc)}
    row = {"id": entry.backbone.id, "tag": entry.tag, "val_acc": result.summary["best_val_acc"]}
    if "best_val_map" in result.summary:  # a multi-label run: ranked by this
        row["val_map"] = result.summary["best_val_map"]
    row.update(_measure(result, settings))
    row["seconds"] = round(time.perf_counter() - start, 2)
    row["run_dir"] = str(result.run_dir)
    return row


def _measure(result: FinetuneResult, settings: dict) -> dict:
    """The trained model's params, GFLOPs at the run's image size, and images/s."""
    from zoo.bakeoff._speed import measure
    from zoo.compute import resolve_device, resolve_precision
    from zoo.runs import RunDir

    device = resolve_device(settings.get("device", "auto"))
    config = RunDir(result.run_dir).read_config()
    precision = resolve_precision(config["options"]["precision"], device)
    size = tuple(config["preprocessing"]["input_size"][-2:])
    # Its frozen part ran every image at this batch size here, unless a store served them.
    warm = not result.features_reused
    batch = config["options"]["batch_size"]
    speed, gflops = measure(result.model, size, batch, device, precision, warm=warm)
    return {
        "params": sum(p.numel() for p in result.model.parameters()),
        "gflops": gflops,  # None: the model cannot be counted
        "images_per_s": round(speed, 1),
    }


def _skipped(entry: Entry) -> dict:
    return {"id": entry.backbone.id, "tag": entry.tag, "skipped": entry.skipped}
