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


READS = ("item", "tolist", "__float__", "__int__", "__bool__")


@pytest.fixture
def reads(monkeypatch):
    """Counts the calls that read a tensor's value on the host (each one waits for the device
    on CUDA): Tensor.item, tolist, float(), int(), bool()."""
    count = [0]
    for name in READS:
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, **kwargs):
            count[0] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return count


def _epoch(
    steps: int,
    *,
    lr: float = 0.01,
    check_every: int = 32,
    multi_label: bool = False,
    epoch: int = 2,
    nan_at: int | None = None,
    **where,
):
    """One training epoch of a small model over ``steps`` random batches of 4, single- or
    multi-label (``_ml_batches``); with ``nan_at``, that step's inputs are NaN."""
    from zoo.compute import train_epoch_multilabel

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    if multi_label:
        loop, batches = train_epoch_multilabel, _ml_batches(steps)
    else:
        loop = train_epoch
        batches = [(torch.randn(4, 8), torch.randint(0, 3, (4,))) for _ in range(steps)]
    if nan_at is not None:
        batches[nan_at - 1] = (torch.full((4, 8), float("nan")), batches[nan_at - 1][1])
    cpu = resolve_device("cpu")
    return loop(
        model,
        batches,
        torch.optim.SGD(model.parameters(), lr=lr),
        device=cpu,
        precision=resolve_precision("fp32", cpu),
        epoch=epoch,
        check_every=check_every,
        **where,
    )


def test_an_epoch_reads_the_device_a_constant_number_of_times_not_per_step(reads):
    counts = []
    for steps in (3, 12, 30):
        reads[0] = 0
        result = _epoch(steps)
        counts.append(reads[0])
        assert result.count == 4 * steps and 0 <= result.correct <= result.count
    assert counts[0] == counts[1] == counts[2] <= 3
    # Checked every few steps for a nan loss: one more read each time, still not per step.
    reads[0] = 0
    _epoch(35, check_every=10)  # reads at steps 10, 20 and 30
    assert reads[0] == counts[0] + 3


def test_evaluation_reads_the_device_a_constant_number_of_times(reads):
    from zoo.compute import evaluate

    model = nn.Linear(8, 3)
    cpu = resolve_device("cpu")
    counts = []
    for steps in (2, 9):
        batches = [(torch.randn(5, 8), torch.randint(0, 3, (5,))) for _ in range(steps)]
        reads[0] = 0
        result = evaluate(
            model, batches, device=cpu, precision=resolve_precision("fp32", cpu), num_classes=3
        )
        counts.append(reads[0])
        assert result.count == 5 * steps and sum(map(sum, result.confusion)) == 5 * steps
    assert counts[0] == counts[1]


def test_the_sums_read_once_match_the_per_step_values():
    torch.manual_seed(0)
    model = nn.Linear(8, 3)
    batches = [(torch.randn(4, 8), torch.randint(0, 3, (4,))) for _ in range(5)]
    expected_loss = sum(F.cross_entropy(model(x), y).item() * 4 for x, y in batches)
    expected_right = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
    cpu = resolve_device("cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    result = train_epoch(
        model, batches, optimizer, device=cpu, precision=resolve_precision("fp32", cpu), epoch=1
    )
    assert result.loss_sum == pytest.approx(expected_loss, rel=1e-6)
    assert result.correct == expected_right and result.count == 20


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("check_every", [1, 4, 32])
def test_a_nan_loss_names_the_epoch_and_the_first_bad_step(check_every, multi_label):
    from zoo.errors import NonFiniteLoss

    with pytest.raises(NonFiniteLoss, match="loss is nan at epoch 3, step 6;"):
        _epoch(10, epoch=3, nan_at=6, check_every=check_every, multi_label=multi_label)


def test_ctrl_c_finishes_the_step_in_flight():
    from zoo.errors import StopRequested

    cpu = resolve_device("cpu")
    model = nn.Linear(8, 3)
    batches = [(torch.randn(4, 8), torch.randint(0, 3, (4,))) for _ in range(10)]
    seen = []
    with pytest.raises(StopRequested):
        train_epoch(
            model,
            batches,
            torch.optim.SGD(model.parameters(), lr=0.01),
            device=cpu,
            precision=resolve_precision("fp32", cpu),
            epoch=1,
            update=lambda images, loss: seen.append(images),
            stop=lambda: len(seen) == 3,
        )
    assert seen == [4, 4, 4]  # three steps ran to the end, the fourth never started


# The multi-label loops: the same Tally, so the same reads.


def _ml_batches(steps: int, *, labels: int = 3, size: int = 4):
    return [
        (torch.randn(size, 8), torch.randint(0, 2, (size, labels)).float()) for _ in range(steps)
    ]


def test_a_multi_label_epoch_reads_the_device_a_constant_number_of_times(reads):
    counts = []
    for steps in (3, 12, 30):
        reads[0] = 0
        result = _epoch(steps, multi_label=True)
        counts.append(reads[0])
        assert result.count == 4 * steps and 0 <= result.correct <= result.count
        assert isinstance(result.loss_sum, float) and isinstance(result.correct, int)
    assert counts[0] == counts[1] == counts[2] <= 3
    reads[0] = 0
    _epoch(35, check_every=10, multi_label=True)  # reads at steps 10, 20 and 30
    assert reads[0] == counts[0] + 3


def test_multi_label_evaluation_reads_and_copies_from_the_device_a_constant_number_of_times(
    reads, monkeypatch
):
    from zoo.compute import evaluate_multilabel

    copies = [0]
    real_cpu = torch.Tensor.cpu

    def cpu_counted(self, *args, **kwargs):
        copies[0] += 1
        return real_cpu(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cpu", cpu_counted)
    model = nn.Linear(8, 3)
    cpu = resolve_device("cpu")
    counts = []
    for steps in (3, 12, 30):
        reads[0] = copies[0] = 0
        result = evaluate_multilabel(
            model, _ml_batches(steps, size=5), device=cpu, precision=resolve_precision("fp32", cpu)
        )
        counts.append((reads[0], copies[0]))
        assert result.count == 5 * steps
        assert [tuple(t.shape) for t in result.scores + result.targets] == [(5 * steps, 3)] * 2
    assert counts[0] == counts[1] == counts[2]


def test_multi_label_sums_read_once_match_a_per_batch_computation():
    from zoo.compute import evaluate_multilabel, multilabel_metrics, train_epoch_multilabel

    torch.manual_seed(0)
    model = nn.Linear(8, 4)  # a head wider than the 3 labels: the 4th is never present
    with torch.no_grad():
        model.weight[3], model.bias[3] = 0.0, -5.0  # ... nor predicted
    batches = _ml_batches(6)
    # Half the rows' targets are the model's own predictions: exact matches to count.
    for images, targets in batches:
        targets[:2] = (model(images[:2]) >= 0)[:, :3].float()
    padded = [(x, F.pad(y, (0, 1))) for x, y in batches]
    with torch.no_grad():
        expected_loss = sum(
            F.binary_cross_entropy_with_logits(model(x), y).item() * len(y) for x, y in padded
        )
        expected_right = sum(
            int(((model(x).sigmoid() >= 0.5) == (y > 0.5)).all(1).sum()) for x, y in padded
        )
        expected_scores = torch.cat([model(x).sigmoid() for x, _ in padded])
    assert expected_right >= 12
    cpu = resolve_device("cpu")
    where = {"device": cpu, "precision": resolve_precision("fp32", cpu)}
    seen = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    trained = train_epoch_multilabel(
        model, batches, optimizer, epoch=1, update=lambda n, loss: seen.append(loss), **where
    )
    valid = evaluate_multilabel(model, batches, **where)
    for result in (trained, valid):
        assert result.loss_sum == pytest.approx(expected_loss, rel=1e-6)
        assert result.correct == expected_right and result.count == 24
    assert all(isinstance(loss, torch.Tensor) and loss.dim() == 0 for loss in seen)
    assert float(sum(seen)) == pytest.approx(expected_loss, rel=1e-6)
    assert torch.allclose(valid.scores[0], expected_scores)
    assert torch.equal(valid.targets[0], torch.cat([y for _, y in padded]))
    metrics = multilabel_metrics(valid.scores, valid.targets, threshold=0.5)
    assert metrics == multilabel_metrics(expected_scores, torch.cat([y for _, y in padded]))


def test_ctrl_c_in_a_multi_label_epoch_checks_the_losses_then_stops():
    from zoo.errors import NonFiniteLoss, StopRequested

    seen = []
    with pytest.raises(StopRequested):
        _epoch(
            10,
            multi_label=True,
            update=lambda images, loss: seen.append(images),
            stop=lambda: len(seen) == 3,
        )
    assert seen == [4, 4, 4]
    # A nan loss before the stop is still reported, not lost in the stop.
    from zoo.compute import train_epoch_multilabel

    cpu = resolve_device("cpu")
    batches = _ml_batches(10)
    batches[1] = (torch.full((4, 8), float("nan")), batches[1][1])
    seen.clear()
    with pytest.raises(NonFiniteLoss, match="at epoch 1, step 2;"):
        train_epoch_multilabel(
            nn.Linear(8, 3),
            batches,
            torch.optim.SGD(nn.Linear(8, 3).parameters(), lr=0.01),
            device=cpu,
            precision=resolve_precision("fp32", cpu),
            epoch=1,
            update=lambda images, loss: seen.append(images),
            stop=lambda: len(seen) == 3,
        )
