"""Evaluating and predicting with a multi-label run (``zoo finetune --multi-label``): each
label's precision, recall, F1 and average precision; every label whose probability reaches
the threshold, with sigmoid (not softmax) probabilities.

    >>> report = evaluate_multilabel_run(trained, samples, skipped, threshold=0.5)
    >>> report["map"], report["per_label"]["circle"]["ap"]
    >>> next(tag_images(trained, ["photo.jpg"], threshold=0.5))
    {'image': 'photo.jpg', 'labels': [{'label': 'circle', 'probability': 0.97}]}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from zoo.runs._evaluate import Trained


def evaluate_multilabel_run(
    trained: Trained,
    samples: list,
    skipped: list,
    threshold: float,
    batch_size: int = 64,
    workers: int = 0,
) -> dict:
    """The report of ``zoo evaluate`` for a multi-label run: ``loss``, ``accuracy`` (images
    whose every label is right), ``images``, ``map``, ``f1_micro``, ``f1_macro``,
    ``threshold``, ``classes``, ``per_label`` ({label: precision, recall, f1, ap, support})
    and ``skipped_files``; None where a value is undefined (AP of a label with no positive)."""
    from torch.utils.data import DataLoader

    from zoo import compute
    from zoo.data import ImageDataset, build_transform

    dataset = ImageDataset(samples, build_transform(trained.preprocessing, train=False))
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    device = next(trained.model.parameters()).device
    result = compute.evaluate_multilabel(
        trained.model,
        loader,
        device=device,
        precision=compute.resolve_precision("fp32", device),
        threshold=threshold,
    )
    metrics = compute.multilabel_metrics(
        result.scores, result.targets, threshold=threshold, names=trained.classes
    )
    return {
        "loss": result.loss,
        "accuracy": result.accuracy,
        "images": result.count,
        "map": metrics["map"],
        "f1_micro": metrics["f1_micro"],
        "f1_macro": metrics["f1_macro"],
        "threshold": threshold,
        "classes": trained.classes,
        "per_label": {row.pop("label"): row for row in metrics["per_label"]},
        "skipped_files": [p for p, _ in skipped],
    }


def tag_images(trained: Trained, images: list[str], threshold: float) -> Iterator[dict]:
    """Each image's row, one at a time, in order: every label whose probability reaches
    ``threshold``, most likely first."""
    import torch

    from zoo.data import build_transform, load_rgb

    transform = build_transform(trained.preprocessing, train=False)
    device = next(trained.model.parameters()).device
    for image in images:
        batch = transform(load_rgb(image)).unsqueeze(0).to(device)
        with torch.inference_mode():
            probabilities = trained.model(batch).float().sigmoid()[0].tolist()
        ranked = sorted(enumerate(probabilities), key=lambda pair: -pair[1])
        yield {
            "image": str(image),
            "labels": [
                {"label": trained.classes[i], "probability": p} for i, p in ranked if p >= threshold
            ],
        }
