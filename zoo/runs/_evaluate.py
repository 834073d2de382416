"""Evaluating a finished run (or its best.pt) on an image folder."""

from __future__ import annotations

from pathlib import Path

from zoo.errors import DataError
from zoo.runs._trained import load_trained, with_flip


def evaluate(
    run_or_checkpoint: str | Path,
    data: str | Path,
    *,
    batch_size: int = 64,
    device: str = "auto",
    workers: int | None = None,
    png: str | Path | None = None,
    tta: bool = False,
    top_losses: int = 0,
    top_losses_png: str | Path | None = None,
) -> dict:
    """Loss, accuracy, per-class accuracy, precision, recall, F1 and support (with macro and
    weighted averages) and the confusion matrix on ``data/<class>/*``; the matrix is also drawn
    to ``png`` (default: beside the checkpoint, named after ``data``). ``tta`` averages each
    prediction with its horizontal flip's; ``top_losses`` draws the N images with the highest
    loss to ``top_losses_png`` (default ``RUN/top-losses-<data>.png``).

    >>> zoo.runs.evaluate("runs/resnet34-20261122-101500", "pets/valid")["accuracy"]
    0.93
    """
    from zoo import compute
    from zoo.data import scan_eval_folder
    from zoo.runs._plots import plot_confusion

    trained = load_trained(run_or_checkpoint, device)
    samples, skipped = _readable(scan_eval_folder(data, trained.classes), data)
    loader = _loader(samples, trained.preprocessing, batch_size, workers)
    device_ = next(trained.model.parameters()).device
    result = compute.evaluate(
        with_flip(trained.model) if tta else trained.model,
        loader,
        device=device_,
        precision=compute.resolve_precision("fp32", device_),
        num_classes=len(trained.classes),
    )
    report = _report(result, trained.classes, skipped)
    report["tta"], report["data"] = tta, str(data)
    png = Path(png) if png else trained.checkpoint.parent / f"confusion-{Path(data).name}.png"
    plot_confusion(
        result.confusion, trained.classes, png, title=f"{trained.model.zoo_spec.id} on {data}"
    )
    report["confusion_png"] = str(png)
    if top_losses:
        report.update(_top_losses(trained, loader, data, top_losses, top_losses_png, tta))
    if (trained.checkpoint.parent / "config.json").is_file():  # a run: its card shows this
        from zoo.runs._card import save_evaluation

        save_evaluation(trained.checkpoint.parent, report)
    return report


def _top_losses(trained, loader, data, n: int, png, tta: bool) -> dict:
    from zoo.runs._toplosses import draw_top_losses

    out = Path(png) if png else trained.checkpoint.parent / f"top-losses-{Path(data).name}.png"
    return {
        "top_losses": draw_top_losses(trained, loader, n, out, tta=tta),
        "top_losses_png": str(out),
    }


def _loader(samples, pre, batch_size: int, workers: int | None):
    from torch.utils.data import DataLoader

    from zoo.data import ImageDataset, build_transform, default_workers

    dataset = ImageDataset(samples, build_transform(pre, train=False))
    workers = default_workers() if workers is None else workers
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers)


def _readable(samples: list[tuple[str, int]], data) -> tuple[list, list[tuple[str, str]]]:
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
