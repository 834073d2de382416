"""zoo.compute's inner loops: what a train epoch trains on and what it reports."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.compute import resolve_device, resolve_precision, train_epoch


class AuxNet(nn.Module):
    """Like inception_v3: (main, aux) logits in train mode, main logits alone in eval mode."""

    def __init__(self):
        super().__init__()
        self.main = nn.Linear(8, 3)
        self.aux = nn.Linear(8, 3)

    def forward(self, x):
        return (self.main(x), self.aux(x)) if self.training else self.main(x)


def test_train_loss_reported_is_the_main_heads_while_aux_losses_train():
    torch.manual_seed(0)
    model = AuxNet()
    inputs, targets = torch.randn(16, 8), torch.randint(0, 3, (16,))
    # The auxiliary head is far off, so its loss would weigh on a total.
    torch.nn.init.normal_(model.aux.weight, std=5.0)
    main_loss = F.cross_entropy(model.main(inputs), targets).item()
    aux_loss = F.cross_entropy(model.aux(inputs), targets).item()
    # lr 0: the weights stay, so the loss the epoch reports is the one computed above.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    cpu = resolve_device("cpu")
    result = train_epoch(
        model,
        [(inputs, targets)],
        optimizer,
        device=cpu,
        precision=resolve_precision("fp32", cpu),
        epoch=1,
    )
    assert result.loss == pytest.approx(main_loss, rel=1e-5)
    assert aux_loss > main_loss + 1
    # The auxiliary head still trains: its loss reached the backward pass.
    assert model.aux.weight.grad is not None and model.aux.weight.grad.abs().sum() > 0
