"""Evaluating and predicting with a finished run (or its best.pt)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import DataError, RunError

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
    data: str | Path,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    workers: int | None = None,
    png: str | Path | None = None,
) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix on ``data/<class>/*``; the
    matrix is also drawn to ``png`` (default: beside the checkpoint, named after ``data``).
    The model computes as the run validated (``run_compute``: its precision, memory format
    and batch size), so on the run's own valid folder the accuracy is its ``best_val_acc``.

    >>> zoo.runs.evaluate("runs/resnet34-20261122-101500", "pets/valid")["accuracy"]
    0.93
    """
    from zoo import compute
    from zoo.runs._plots import plot_confusion

    trained = load_trained(run_or_checkpoint, device)
    device_ = next(trained.model.parameters()).device
    precision, fmt, run_batch = run_compute(trained, device_)
    loader, skipped = _loader(trained, data, batch_size or run_batch, workers, device_)
    result = compute.evaluate(
        trained.model,
        loader,
        device=device_,
        precision=precision,
        memory_format=fmt,
        num_classes=len(trained.classes),
    )
    report = _report(result, trained.classes, skipped)
    png = Path(png) if png else trained.checkpoint.parent / f"confusion-{Path(data).name}.png"
    plot_confusion(
        result.confusion, trained.classes, png, title=f"{trained.model.zoo_spec.id} on {data}"
    )
    report["confusion_png"] = str(png)
    return report


def _loader(trained: Trained, data, batch_size: int, workers: int | None, device):
    """A DataLoader over the readable images of ``data/<class>/*``, and the unreadable ones."""
    from torch.utils.data import DataLoader

    from zoo.data import (
        ImageDataset,
        build_transform,
        decode_side,
        default_workers,
        scan_eval_folder,
    )

    samples, skipped = _readable(scan_eval_folder(data, trained.classes), data)
    pre = trained.preprocessing
    dataset = ImageDataset(
        samples, build_transform(pre, train=False), decode_side(pre, train=False)
    )
    if workers is None:
        workers = default_workers(device, -(-len(dataset) // batch_size))
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers), skipped


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
    run_or_checkpoint: str | Path, images: list[str | Path], *, top_k: int = 5, device: str = "auto"
) -> list[dict]:
    """The ``top_k`` classes with probabilities for each image, in the order given; a folder
    stands for the image files under it, sorted, subfolders included. An image that cannot be
    read is skipped: its row is ``{"image": PATH, "top": [], "skipped": REASON}``. A DataError
    when no image can be read.

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
    rows = _classify(trained, [p for p in images if p not in unreadable], top_k)
    return [
        {"image": p, "top": [], "skipped": unreadable[p]} if p in unreadable else next(rows)
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
