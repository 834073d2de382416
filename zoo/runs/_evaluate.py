"""Evaluating and predicting with a finished run (or its best.pt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import DataError, RunError
from zoo.runs._multilabel import evaluate_multilabel_run, tag_images

if TYPE_CHECKING:
    from torch import nn

    from zoo.data import Preprocessing


@dataclass
class Trained:
    """A model loaded from a run, with what it needs to read images."""

    model: nn.Module
    classes: list[str]
    preprocessing: Preprocessing
    checkpoint: Path
    multi_label: bool = False  # trained with --multi-label: sigmoid per label, not softmax
    threshold: float = 0.5  # multi-label: the run's --threshold


def load_trained(run_or_checkpoint: str | Path, device: str = "auto") -> Trained:
    """The best weights of a run directory (or of a ``best.pt`` file), ready for inference.
    best.pt is read once: its meta here, and ``create`` loads the tensors read with it.

    >>> trained = load_trained("runs/resnet34-20261122-101500")
    """
    from zoo.compute import resolve_device
    from zoo.data import Preprocessing
    from zoo.models import create
    from zoo.weights import resolve_file

    path = Path(run_or_checkpoint)
    resolved = resolve_file(path)
    if resolved.class_names is None:
        raise RunError(
            f"{path} is not a zoo run or best.pt (no class names in it); "
            "pass the folder `zoo finetune` created"
        )
    meta = resolved.run
    model = create(meta["id"], num_classes=meta["num_classes"], weights=resolved)
    model.to(resolve_device(device)).eval()
    return Trained(
        model,
        output_names(meta["class_names"], meta["num_classes"]),
        Preprocessing.from_dict(meta["preprocessing"]),
        resolved.path,
        bool(meta.get("multi_label")),
        meta.get("threshold", 0.5),
    )


def output_names(class_names: list[str], num_classes: int) -> list[str]:
    """A name for each of the head's outputs: the classes trained on, then ``output_N`` for
    the outputs a larger ``--num-classes`` added, which no class was trained on.

    >>> output_names(["cat", "dog"], 4)
    ['cat', 'dog', 'output_2', 'output_3']
    """
    return list(class_names) + [f"output_{i}" for i in range(len(class_names), num_classes)]


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
) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix on ``data/<class>/*``, on a
    labels CSV's valid rows (``labels``), or, given neither, on the run's own validation set
    (its held-out files for a --val-split run); the matrix is also drawn to ``png`` (default:
    beside the checkpoint, named after the data). The model computes as the run validated
    (``run_compute``: its precision, memory format and batch size), so on the run's own
    validation set the accuracy is its ``best_val_acc``. A multi-label run reports per-label
    precision, recall, F1 and AP instead (``zoo.runs._multilabel``), at ``threshold``
    (default: the run's).

    >>> zoo.runs.evaluate("runs/resnet34-20261122-101500", "pets/valid")["accuracy"]
    0.93
    """
    from zoo import compute
    from zoo.runs._plots import plot_confusion

    trained = load_trained(run_or_checkpoint, device)
    data, samples = _eval_samples(trained, data, labels)
    samples, skipped = _readable(samples, data)
    device_ = next(trained.model.parameters()).device
    precision, fmt, run_batch = run_compute(trained, device_)
    batch_size = batch_size or run_batch
    if workers is None:
        workers = _workers(device_, len(samples), batch_size)
    if trained.multi_label:
        threshold = trained.threshold if threshold is None else threshold
        return evaluate_multilabel_run(trained, samples, skipped, threshold, batch_size, workers)
    result = compute.evaluate(
        trained.model,
        _loader(trained, samples, batch_size, workers),
        device=device_,
        precision=precision,
        memory_format=fmt,
        num_classes=len(trained.classes),
    )
    report = _report(result, trained.classes, skipped)
    name = Path(data).stem if labels is not None else Path(data).name
    png = Path(png) if png else trained.checkpoint.parent / f"confusion-{name}.png"
    plot_confusion(
        result.confusion, trained.classes, png, title=f"{trained.model.zoo_spec.id} on {data}"
    )
    report["confusion_png"] = str(png)
    return report


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


def _loader(trained: Trained, samples, batch_size: int, workers: int):
    """A DataLoader over ``samples`` (readable images), preprocessed as the run validated."""
    from torch.utils.data import DataLoader

    from zoo.data import ImageDataset, build_transform, decode_side

    pre = trained.preprocessing
    dataset = ImageDataset(
        samples, build_transform(pre, train=False), decode_side(pre, train=False)
    )
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers)


def _workers(device, images: int, batch_size: int) -> int:
    from zoo.data import default_workers

    return default_workers(device, -(-images // batch_size))


def run_compute(trained: Trained, device) -> tuple:
    """(precision, memory format, batch size) as the run that wrote ``trained`` validated:
    from its config.json (a best.pt without one: fp32, batch 64). A precision this device
    cannot do (fp16 on a CPU) falls back to fp32. The model is put in that memory format."""
    import torch

    from zoo import compute
    from zoo.errors import TrainingError

    options = _recorded_options(trained.checkpoint)
    try:
        precision = compute.resolve_precision(options.get("precision") or "fp32", device)
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
        "skipped_files": [p for p, _ in skipped],
    }


def predict(
    run_or_checkpoint: str | Path,
    images: list[str | Path],
    *,
    top_k: int = 5,
    device: str = "auto",
    threshold: float | None = None,
) -> list[dict]:
    """The ``top_k`` classes with probabilities for each image, in the order given; a folder
    stands for the image files under it, sorted, subfolders included. An image that cannot be
    read is skipped: its row is ``{"image": PATH, "top": [], "skipped": REASON}``. A DataError
    when no image can be read. A multi-label run gives ``{"image": PATH, "labels": [{"label":
    NAME, "probability": P}, ...]}``: every label reaching ``threshold`` (default: the run's),
    most likely first.

    >>> zoo.runs.predict("runs/resnet34-20261122-101500", ["cat.jpg"], top_k=1)
    [{'image': 'cat.jpg', 'top': [{'class': 'cat', 'probability': 0.98}]}]
    """
    from zoo.data import expand_images, find_unreadable

    images = expand_images(images)
    unreadable = dict(find_unreadable(images))
    if len(unreadable) == len(images):
        path, reason = next(iter(unreadable.items()))
        what = (
            "cannot read" if len(images) == 1 else f"none of the {len(images)} images can be read:"
        )
        raise DataError(f"{what} {path}: {reason}")
    trained = load_trained(run_or_checkpoint, device)
    readable = [p for p in images if p not in unreadable]
    key = "labels" if trained.multi_label else "top"
    if trained.multi_label:
        rows = tag_images(trained, readable, trained.threshold if threshold is None else threshold)
    else:
        rows = _classify(trained, readable, top_k)
    return [
        {"image": p, key: [], "skipped": unreadable[p]} if p in unreadable else next(rows)
        for p in images
    ]


def _classify(trained: Trained, images: list[str], top_k: int):
    """Each image's row, one at a time, in order."""
    import torch

    from zoo.data import build_transform, decode_side, load_rgb

    transform = build_transform(trained.preprocessing, train=False)
    side = decode_side(trained.preprocessing, train=False)  # as evaluate and training decode
    device_ = next(trained.model.parameters()).device
    k = min(top_k, len(trained.classes))
    for image in images:
        batch = transform(load_rgb(image, side)).unsqueeze(0).to(device_)
        with torch.inference_mode():
            probabilities = trained.model(batch).float().softmax(1)[0]
        values, indices = probabilities.topk(k)
        yield {
            "image": str(image),
            "top": [
                {"class": trained.classes[i], "probability": float(v)}
                for v, i in zip(values.tolist(), indices.tolist(), strict=False)
            ],
        }
