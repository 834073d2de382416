"""Where and how tensors are computed: the device, the numeric precision, the memory format,
and the inner loops (one epoch of training, one pass of evaluation) that training and
evaluation share."""

from __future__ import annotations

from zoo.compute._devices import (
    Precision,
    cpu_has_native_bf16,
    memory_format,
    prepare_backends,
    resolve_device,
    resolve_precision,
    use_threads,
)
from zoo.compute._loop import (
    PhaseResult,
    autocast,
    criterion,
    evaluate,
    forward,
    to_device,
    train_epoch,
)
from zoo.compute._multilabel import (
    MultiLabelResult,
    evaluate_multilabel,
    multilabel_criterion,
    positive_weights,
    train_epoch_multilabel,
)
from zoo.compute._multilabel_metrics import average_precision, multilabel_metrics

__all__ = [
    "PhaseResult",
    "Precision",
    "autocast",
    "cpu_has_native_bf16",
    "criterion",
    "evaluate",
    "forward",
    "memory_format",
    "prepare_backends",
    "resolve_device",
    "resolve_precision",
    "to_device",
    "train_epoch",
    "use_threads",
    "MultiLabelResult",
    "average_precision",
    "evaluate_multilabel",
    "multilabel_criterion",
    "multilabel_metrics",
    "positive_weights",
    "train_epoch_multilabel",
]
