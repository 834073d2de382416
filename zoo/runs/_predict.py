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
) -> list[dict]:
    """The ``top_k`` classes with probabilities for each image, in the order given; a folder
    stands for the image files under it, sorted, subfolders included. An image that cannot be
    read is skipped: its row is ``{"image": PATH, "top": [], "skipped": REASON}``. A DataError
    when no image can be read. ``tta`` averages each image's probabilities with its horizontal
    flip's (for a run after preprocessing; for an exported file, of the image it is given).

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
    classify, classes = open_classifier(run_or_checkpoint, device, tta=tta)
    rows = _rows(classify, classes, [p for p in images if p not in unreadable], top_k)
    return [
        {"image": p, "top": [], "skipped": unreadable[p]} if p in unreadable else next(rows)
        for p in images
    ]


def open_classifier(source: str | Path, device: str = "auto", *, tta: bool = False):
    """``(classify, classes)``: ``classify`` maps uint8 images ``(N, 3, H, W)`` to class
    probabilities ``(N, classes)`` on the CPU, for a run (or best.pt, or hf folder) or an
    exported file.

    >>> classify, classes = open_classifier("model.onnx")
    """
    import torch

    from zoo.runs._exported import is_exported, load_exported
    from zoo.runs._trained import deployable, load_trained

    if is_exported(source):
        exported = load_exported(source, device)
        if not tta:
            return exported.run, exported.classes
        return (lambda x: (exported.run(x) + exported.run(x.flip(-1))) / 2), exported.classes
    trained = load_trained(source, device)
    module = deployable(trained)
    target = next(trained.model.parameters()).device

    def classify(images):
        with torch.inference_mode():
            return module(images.to(target), tta=tta).cpu()

    return classify, trained.classes


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
