"""What a run learns, chosen once at set-up: one class per image (``SingleLabel``: cross-entropy,
the best epoch by ``val_acc``) or any number of labels per image (``MultiLabel``, with
``--multi-label``: per-label binary cross-entropy, the best epoch by ``val_map``, and
``val_map``, ``val_f1_micro`` and ``val_f1_macro`` in metrics.jsonl).

    >>> task = task_for(config, split)
    >>> result = task.evaluate(model, batches, device=device, precision=precision)
    >>> row.update(task.valid_metrics(task.reduce(dist, result)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo import compute
from zoo.training import _distributed as distributed

if TYPE_CHECKING:
    from zoo.data import DataSplit
    from zoo.training._config import TrainConfig
    from zoo.training._distributed import Dist


class SingleLabel:
    """One class per image: ``zoo.compute``'s own loops."""

    multi_label = False
    metric = "val_acc"  # the metrics.jsonl key that picks the best epoch
    meta: dict = {}  # what best.pt's meta adds: nothing, as before multi-label existed

    def train(self, model, batches, optimizer, **where):
        return compute.train_epoch(model, batches, optimizer, **where)

    def evaluate(self, model, batches, **where):
        return compute.evaluate(model, batches, **where)

    def valid_metrics(self, valid) -> dict:
        return {}

    def summary(self, summary: dict, rows: list[dict], best_epoch: int) -> dict:
        return summary


class MultiLabel(SingleLabel):
    """Any number of labels per image, each a yes or no at ``threshold``."""

    multi_label = True
    metric = "val_map"

    def __init__(self, threshold: float = 0.5, pos_weight=None, smoothing: float = 0.0) -> None:
        self.threshold, self.pos_weight, self.smoothing = threshold, pos_weight, smoothing
        self.meta = {"multi_label": True, "threshold": threshold}

    def train(self, model, batches, optimizer, **where):
        where = {**where, "pos_weight": self.pos_weight, "threshold": self.threshold}
        where["label_smoothing"] = self.smoothing
        return compute.train_epoch_multilabel(model, batches, optimizer, **where)

    def evaluate(self, model, batches, **where):
        return compute.evaluate_multilabel(model, batches, threshold=self.threshold, **where)

    def reduce(self, dist: Dist, result: compute.MultiLabelResult) -> compute.MultiLabelResult:
        """Sums over every rank, and every rank's scores and targets, in rank order."""
        if not dist.enabled:
            return result
        import torch.distributed as td

        loss_sum, correct, count = distributed.sum_across(
            dist, [result.loss_sum, result.correct, result.count]
        )
        shares = [None] * dist.world
        td.all_gather_object(shares, (result.scores, result.targets))
        scores = [batch for share, _ in shares for batch in share]
        targets = [batch for _, share in shares for batch in share]
        return compute.MultiLabelResult(
            loss_sum, int(correct), int(count), result.seconds, None, scores, targets
        )

    def valid_metrics(self, valid: compute.MultiLabelResult) -> dict:
        if not valid.scores:
            return {"val_map": 0.0, "val_f1_micro": 0.0, "val_f1_macro": 0.0}
        m = compute.multilabel_metrics(valid.scores, valid.targets, threshold=self.threshold)
        return {"val_map": m["map"], "val_f1_micro": m["f1_micro"], "val_f1_macro": m["f1_macro"]}

    def summary(self, summary: dict, rows: list[dict], best_epoch: int) -> dict:
        """summary.json: ``best_val_map``, and ``best_val_acc`` of that same epoch."""
        best = rows[best_epoch - 1] if 0 < best_epoch <= len(rows) else {}
        return {
            **summary,
            "best_val_acc": best.get("val_acc", 0.0),
            "best_val_map": best.get("val_map", 0.0),
        }


def task_for(config: TrainConfig, split: DataSplit) -> SingleLabel:
    """The run's task. In multi-label mode ``--class-weights auto`` weighs each label's
    positives by its negatives over its positives in the train split, and
    ``--label-smoothing`` pulls every target towards 1/2."""
    if not split.multi_label:
        return SingleLabel()
    pos_weight = None
    if config.class_weights == "auto":
        pos_weight = compute.positive_weights([label for _, label in split.train])
    return MultiLabel(config.threshold, pos_weight, config.label_smoothing)
