"""Predicting with a finished run, its best.pt, an ``hf`` export folder, or an exported
``.onnx``/``.pt2`` file: the same rows from each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zoo.errors import DataError


def predict(
    run_or_checkpoint: str | Path,
    images: list[str | Path],
    *,
    top_k: int = 5,
    device: str = "auto",
    tta: bool = False,
    threshold: float | None = None,
) -> list[dict]:
    """The ``top_k`` classes with probabilities for each image, in the order given; a folder
    stands for the image files under it, sorted, subfolders included. An image that cannot be
    read is skipped: its row is ``{"image": PATH, "top": [], "skipped": REASON}``. A DataError
    when no image can be read. ``tta`` averages each image's probabilities with its horizontal
    flip's (for a run after preprocessing; for an exported file, of the image it is given).
    A multi-label model gives ``{"image": PATH, "labels": [{"label": NAME, "probability":
    P}, ...]}``: every label reaching ``threshold`` (default: the run's), most likely first.

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
    model = _open(run_or_checkpoint, device, tta)
    readable = [p for p in images if p not in unreadable]
    if model.multi_label:
        threshold = model.threshold if threshold is None else threshold
        rows, key = _labels(model.run, model.classes, readable, threshold), "labels"
    else:
        rows, key = _rows(model.run, model.classes, readable, top_k), "top"
    return [
        {"image": p, key: [], "skipped": unreadable[p]} if p in unreadable else next(rows)
        for p in images
    ]


def open_classifier(source: str | Path, device: str = "auto", *, tta: bool = False):
    """``(classify, classes)``: ``classify`` maps uint8 images ``(N, 3, H, W)`` to class
    probabilities ``(N, classes)`` on the CPU, for a run (or best.pt, or hf folder) or an
    exported file.

    >>> classify, classes = open_classifier("model.onnx")
    """
    model = _open(source, device, tta)
    return model.run, model.classes


def _open(source: str | Path, device: str, tta: bool):
    """An ``Exported``-like view of ``source``: ``run``, ``classes``, ``multi_label``,
    ``threshold``."""
    import torch

    from zoo.runs._exported import Exported, is_exported, load_exported
    from zoo.runs._trained import deployable, load_trained

    if is_exported(source):
        exported = load_exported(source, device)
        if tta:
            run = exported.run
            exported.run = lambda x: (run(x) + run(x.flip(-1))) / 2
        return exported
    trained = load_trained(source, device)
    module = deployable(trained)
    target = next(trained.model.parameters()).device

    def classify(images):
        with torch.inference_mode():
            return module(images.to(target), tta=tta).cpu()

    return Exported(
        classify, trained.classes, trained.preprocessing.to_dict(), trained.checkpoint,
        trained.multi_label, trained.threshold,
    )  # fmt: skip


def _rows(classify: Callable, classes: list[str], images: list[str], top_k: int):
    """Each image's row, one at a time, in order."""
    from zoo.data import load_rgb, to_uint8

    k = min(top_k, len(classes))
    for image in images:
        probabilities = classify(to_uint8(load_rgb(image))[None])[0]
        values, indices = probabilities.topk(k)
        yield {
            "image": str(image),
            "top": [
                {"class": classes[i], "probability": float(v)}
                for v, i in zip(values.tolist(), indices.tolist(), strict=False)
            ],
        }


def _labels(classify: Callable, classes: list[str], images: list[str], threshold: float):
    """Each image's row, one at a time, in order: every label whose probability reaches
    ``threshold``, most likely first."""
    from zoo.data import load_rgb, to_uint8

    for image in images:
        probabilities = classify(to_uint8(load_rgb(image))[None])[0].tolist()
        ranked = sorted(enumerate(probabilities), key=lambda pair: -pair[1])
        yield {
            "image": str(image),
            "labels": [
                {"label": classes[i], "probability": p} for i, p in ranked if p >= threshold
            ],
        }
