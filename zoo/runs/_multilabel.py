"""Evaluating a multi-label run (``zoo finetune --multi-label``): each label's precision,
recall, F1 and average precision, from sigmoid (not softmax) probabilities.

    >>> report = evaluate_multilabel_run(model, classes, loader, skipped, 0.5, precision, None)
    >>> report["map"], report["per_label"]["circle"]["ap"]
"""

from __future__ import annotations


def evaluate_multilabel_run(
    model, classes: list[str], loader, skipped: list, threshold: float, precision, memory_format
) -> dict:
    """The report of ``zoo evaluate`` for a multi-label run: ``loss``, ``accuracy`` (images
    whose every label is right), ``images``, ``map``, ``f1_micro``, ``f1_macro``,
    ``threshold``, ``classes``, ``per_label`` ({label: precision, recall, f1, ap, support})
    and ``skipped_files``; None where a value is undefined (AP of a label with no positive).
    The model computes at ``precision`` and ``memory_format``, as the run validated."""
    from zoo import compute

    result = compute.evaluate_multilabel(
        model,
        loader,
        device=next(model.parameters()).device,
        precision=precision,
        memory_format=memory_format,
        threshold=threshold,
    )
    metrics = compute.multilabel_metrics(
        result.scores, result.targets, threshold=threshold, names=classes
    )
    return {
        "loss": result.loss,
        "accuracy": result.accuracy,
        "images": result.count,
        "map": metrics["map"],
        "f1_micro": metrics["f1_micro"],
        "f1_macro": metrics["f1_macro"],
        "threshold": threshold,
        "classes": classes,
        "per_label": {row.pop("label"): row for row in metrics["per_label"]},
        "skipped_files": [p for p, _ in skipped],
    }
