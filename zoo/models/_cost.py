"""What a backbone costs where its source publishes nothing: parameters and GFLOPs counted on
the meta device (no memory, no weights), remembered by the registry for later listings.

GFLOPs count a multiply-add once, as torchvision's ``_ops`` and timm's GMACs do
(``torch.utils.flop_counter`` counts two, so its total is halved): resnet50 is 4.09.

    >>> computed_cost(backbone, "IMAGENET1K_V1", model, (3, 224, 224))
    {'params': 25557032, 'gflops': 4.09}
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from zoo.registry import metadata_of, remember_computed

if TYPE_CHECKING:
    from torch import nn

    from zoo.registry import Backbone

log = logging.getLogger("zoo")


def count_gflops(model: nn.Module, input_size) -> float | None:
    """One forward pass of one image of ``input_size`` (C, H, W), on the model's device
    (the meta device costs nothing); None when the model cannot run there."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters(), torch.empty(0)).device
    image = torch.zeros(1, *input_size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(image)
    except Exception as exc:  # any family's forward may refuse meta tensors
        log.debug("cannot count FLOPs of %s: %s", type(model).__name__, exc)
        return None
    finally:
        model.train(was_training)
    return float(f"{counter.get_total_flops() / 2 / 1e9:.4g}")


def computed_cost(backbone: Backbone, tag: str | None, model: nn.Module, input_size) -> dict:
    """``params`` and ``gflops`` of ``tag``: as published, else counted on ``model`` (a
    freshly built one, with its original head) and remembered for ``zoo list``."""
    known = metadata_of(backbone, tag)
    out = {"params": known["params"], "gflops": known["gflops"]}
    missing = {}
    if out["params"] is None:
        missing["params"] = sum(p.numel() for p in model.parameters())
    if out["gflops"] is None:
        missing["gflops"] = count_gflops(model, input_size)
    if missing:
        remember_computed(backbone, tag, {**missing, "input_size": list(input_size)})
    return {**out, **missing}
