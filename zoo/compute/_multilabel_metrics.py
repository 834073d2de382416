"""Multi-label metrics from every image's probabilities and 0/1 targets: average precision per
label (as scikit-learn's ``average_precision_score`` computes it, ties included) and its mean,
and precision, recall and F1 at a threshold, per label, micro and macro.

    >>> m = multilabel_metrics(scores, targets, threshold=0.5)
    >>> m["map"], m["f1_micro"], m["f1_macro"], m["per_label"][0]["ap"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float | None:
    """The area under one label's precision-recall curve as a step sum:
    sum over thresholds of (recall gained) x (precision there), a threshold at each distinct
    score; None when the label has no positive (its AP is undefined).

    >>> average_precision(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([1, 0, 1]))
    0.8333333333333333
    """
    import torch

    positives = int((targets > 0.5).sum())
    if positives == 0:
        return None
    order = torch.argsort(scores, descending=True, stable=True)
    ranked, hits = scores[order], (targets[order] > 0.5).double()
    tp = hits.cumsum(0)
    # The last position of each run of equal scores: a threshold keeps all of a tie or none.
    last = torch.ones_like(ranked, dtype=torch.bool)
    last[:-1] = ranked[1:] != ranked[:-1]
    tp, seen = tp[last], (torch.arange(len(ranked), dtype=torch.float64) + 1)[last]
    precision, recall = tp / seen, tp / positives
    gained = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
    return float((gained * precision).sum())


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def label_counts(scores, targets, threshold: float):
    """(true positives, false positives, false negatives) per label at ``threshold``."""
    predicted, truth = scores >= threshold, targets > 0.5
    tp = (predicted & truth).sum(0)
    fp = (predicted & ~truth).sum(0)
    fn = (~predicted & truth).sum(0)
    return tp.tolist(), fp.tolist(), fn.tolist()


def multilabel_metrics(scores, targets, *, threshold: float = 0.5, names=None) -> dict:
    """``map`` (the mean of the labels' APs, over labels with a positive), ``f1_micro``,
    ``f1_macro`` (over labels with a positive or a prediction) and ``per_label`` rows
    (``label``, ``precision``, ``recall``, ``f1``, ``ap``, ``support``: None where undefined).
    ``scores`` and ``targets`` are (images, labels) tensors, or lists of such batches.

    >>> multilabel_metrics(torch.tensor([[0.9, 0.2]]), torch.tensor([[1.0, 0.0]]))["f1_micro"]
    1.0
    """
    import torch

    if isinstance(scores, (list, tuple)):
        scores, targets = torch.cat(list(scores)), torch.cat(list(targets))
    scores, targets = scores.float(), targets.float()
    names = names or [str(i) for i in range(scores.shape[1])]
    tp, fp, fn = label_counts(scores, targets, threshold)
    rows = []
    for i, name in enumerate(names):
        f1 = _ratio(2 * tp[i], 2 * tp[i] + fp[i] + fn[i])
        rows.append({
            "label": name,
            "precision": _ratio(tp[i], tp[i] + fp[i]),
            "recall": _ratio(tp[i], tp[i] + fn[i]),
            "f1": f1,
            "ap": average_precision(scores[:, i], targets[:, i]),
            "support": tp[i] + fn[i],
        })  # fmt: skip
    aps = [r["ap"] for r in rows if r["ap"] is not None]
    f1s = [r["f1"] for r in rows if r["f1"] is not None]
    return {
        "map": sum(aps) / len(aps) if aps else 0.0,
        "f1_micro": _ratio(2 * sum(tp), 2 * sum(tp) + sum(fp) + sum(fn)) or 0.0,
        "f1_macro": sum(f1s) / len(f1s) if f1s else 0.0,
        "per_label": rows,
    }
