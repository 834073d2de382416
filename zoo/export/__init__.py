"""``zoo export``: a finished run as a model that needs no zoo to run (ONNX, ``torch.export``
pt2, or a Hugging Face style folder), with the run's preprocessing inside, checked against
zoo's own PyTorch path after every export."""

from __future__ import annotations

from zoo.export._check import check_export
from zoo.export._export import FORMATS, export

__all__ = ["FORMATS", "check_export", "export"]
