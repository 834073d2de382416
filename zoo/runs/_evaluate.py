"""Evaluating a finished run (or its best.pt) on an image folder, a labels CSV, or the run's
own validation set."""

from __future__ import annotations

from pathlib import Path

from zoo.errors import DataError
from zoo.runs._trained import Trained, load_trained, with_flip


def evaluate(
    run_or_checkpoint: str | Path,
    data: str | Path | None = None,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    workers: int | None = None,
    png: str | Path | None = None,
    labels: str | Path | None = None,
    threshold: float | None = None,
    tta: bool = False,
    top_losses: int = 0,
    top_losses_png: str | Path | None = None,
) -> dict:
    """Loss, accuracy, per-class accuracy, precision/recall/F1/support (macro and weighted
    too) and the confusion matrix (drawn to ``png``) on ``data/<class>/*``, a labels CSV's
    valid rows, or, given neither, the run's own validation set. Computed as the run
    validated (``run_compute``), so on that set the accuracy is its ``best_val_acc``. ``tta``:
    average with the horizontal flip; ``top_losses``: draw the N worst images. A multi-label
    run reports per-label precision, recall, F1 and AP at ``threshold`` (default: the run's).

    >>> zoo.runs.evaluate("runs/resnet34-20261122-101500", "pets/valid")["accuracy"]
    0.93
    """
    trained = load_trained(run_or_checkpoint, device)
    if top_losses and trained.multi_label:
        raise DataError("--top-losses is for single-label runs; this one is multi-label")
    data, samples = _eval_samples(trained, data, labels)
    samples, skipped = _readable(samples, data)
    device_ = next(trained.model.parameters()).device
    precision, fmt, run_batch = run_compute(trained, device_)
    loader = _loader(trained, samples, batch_size or run_batch, workers, device_)
    model = with_flip(trained.model, trained.multi_label) if tta else trained.model
    if trained.multi_label:
        from zoo.runs._multilabel import evaluate_multilabel_run

        threshold = trained.threshold if threshold is None else threshold
        report = evaluate_multilabel_run(
            model, trained.classes, loader, skipped, threshold, precision, fmt
        )
    else:
        report = _single_label(trained, model, loader, skipped, (precision, fmt), data, png)
    report["tta"], report["data"] = tta, str(data)
    if top_losses:
        report.update(_top_losses(trained, loader, data, top_losses, top_losses_png, tta))
    if (trained.checkpoint.parent / "config.json").is_file():  # a run: its card shows this
        from zoo.runs._card import save_evaluation

        save_evaluation(trained.checkpoint.parent, report)
    return report


def _single_label(trained: Trained, model, loader, skipped, compute_as, data, png) -> dict:
    from zoo import compute
    from zoo.runs._plots import plot_confusion

    device = next(trained.model.parameters()).device
    precision, fmt = compute_as
    result = compute.evaluate(
        model,
        loader,
        device=device,
        precision=precision,
        memory_format=fmt,
        num_classes=len(trained.classes),
    )
    report = _report(result, trained.classes, skipped)
    png = Path(png) if png else trained.checkpoint.parent / f"confusion-{_name(data)}.png"
    plot_confusion(
        result.confusion, trained.classes, png, title=f"{trained.model.zoo_spec.id} on {data}"
    )
    report["confusion_png"] = str(png)
    return report


def _name(data) -> str:
    """A file-name part for what was evaluated on: the folder's name, or the CSV's stem."""
    path = Path(data)
    return path.stem if path.suffix.lower() == ".csv" else path.name


def _eval_samples(trained: Trained, data, labels) -> tuple[str, list]:
    """What to evaluate on and its samples: a labels CSV's valid rows, an image folder's
    (single-label), or with neither the run's own validation set."""
    from zoo.data import scan_eval_csv, scan_eval_folder
    from zoo.runs._rundir import RunDir

    if data is not None and labels is not None:
        raise DataError("pass the images to evaluate on as --data DIR or --labels FILE.csv")
    if labels is not None:
        samples = scan_eval_csv(labels, trained.classes, multi_label=trained.multi_label)
        return str(labels), samples
    if data is None:
        return RunDir(trained.checkpoint.parent).valid_set()
    if trained.multi_label:
        raise DataError(
            f"{trained.checkpoint} is a multi-label run: evaluate it on --labels FILE.csv"
        )
    return data, scan_eval_folder(data, trained.classes)


def _top_losses(trained, loader, data, n: int, png, tta: bool) -> dict:
    from zoo.runs._toplosses import draw_top_losses

    out = Path(png) if png else trained.checkpoint.parent / f"top-losses-{_name(data)}.png"
    return {
        "top_losses": draw_top_losses(trained, loader, n, out, tta=tta),
        "top_losses_png": str(out),
    }


def _loader(trained: Trained, samples, batch_size: int, workers: int | None, device):
    """A DataLoader over ``samples`` (readable images), preprocessed as the run validated."""
    from torch.utils.data import DataLoader

    from zoo.data import ImageDataset, build_transform, default_workers

    dataset = ImageDataset(samples, build_transform(trained.preprocessing, train=False))
    if workers is None:
        workers = default_workers(device, -(-len(samples) // batch_size))
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers)


def run_compute(trained: Trained, device) -> tuple:
    """(precision, memory format, batch size) as the run that wrote ``trained`` validated:
    from its config.json (a best.pt without one: fp32, batch 64). A precision this device
    cannot do (fp16 on a CPU) falls back to fp32. The model is put in that memory format."""
    import torch

    from zoo import compute
    from zoo.errors import TrainingError

    options = _recorded_options(trained.checkpoint)
    try:
        spec = options.get("precision") or "fp32"  # "auto" only in runs older than that record
        precision = compute.resolve_precision(spec, device, trained.model)
    except TrainingError:
        precision = compute.resolve_precision("fp32", device)
    fmt = compute.memory_format(trained.model, device)
    trained.model.to(memory_format=fmt or torch.preserve_format)
    return precision, fmt, options.get("batch_size") or 64


def _recorded_options(checkpoint: Path) -> dict:
    """The options in the config.json beside ``checkpoint``, or {} when there is none."""
    import json

    try:
        options = json.loads((checkpoint.parent / "config.json").read_text()).get("options")
    except (OSError, ValueError, AttributeError):
        return {}
    return options if isinstance(options, dict) else {}


def _readable(samples: list[tuple], data) -> tuple[list, list[tuple[str, str]]]:
    """``samples`` without the unreadable files, and those files with the reasons."""
    from zoo.data import find_unreadable

    skipped = find_unreadable([path for path, _ in samples])
    bad = dict(skipped)
    samples = [s for s in samples if s[0] not in bad]
    if not samples:
        path, reason = skipped[0]
        raise DataError(f"no readable images in {data} (such as {path}: {reason})")
    return samples, skipped


def _report(result, classes: list[str], skipped) -> dict:
    matrix = result.confusion
    per_class = {
        name: (row[i] / sum(row) if sum(row) else None)
        for i, (name, row) in enumerate(zip(classes, matrix, strict=False))
    }
    return {
        "loss": result.loss,
        "accuracy": result.accuracy,
        "images": result.count,
        "per_class_accuracy": per_class,
        "classes": classes,
        "confusion_matrix": matrix,
        **class_metrics(matrix, classes),
        "skipped_files": [p for p, _ in skipped],
    }


def class_metrics(matrix: list[list[int]], classes: list[str]) -> dict:
    """Per-class precision, recall, F1 and support from a confusion matrix (rows the true
    class, columns the predicted one), with their macro and support-weighted averages. A class
    never predicted has precision 0; one without images, recall 0 (and no weight).

    >>> class_metrics([[2, 0], [1, 1]], ["a", "b"])["per_class"]["a"]["precision"]
    0.6666666666666666
    """
    n = len(classes)
    support = [sum(matrix[i]) for i in range(n)]
    predicted = [sum(matrix[r][i] for r in range(n)) for i in range(n)]
    per_class = {}
    for i, name in enumerate(classes):
        hit = matrix[i][i]
        precision = hit / predicted[i] if predicted[i] else 0.0
        recall = hit / support[i] if support[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support[i],
        }
    rows, total = list(per_class.values()), sum(support)
    keys = ("precision", "recall", "f1")
    macro = {k: sum(r[k] for r in rows) / n for k in keys}
    weighted = {k: sum(r[k] * r["support"] for r in rows) / total if total else 0.0 for k in keys}
    return {"per_class": per_class, "macro": macro, "weighted": weighted}
