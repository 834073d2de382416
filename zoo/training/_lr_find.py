"""``zoo lr-find``: the learning-rate range test (Smith 2015, fastai's ``lr_find``).

The run is set up as ``finetune`` sets it up (the same options, model, data and loss) in a
temporary folder that is removed afterwards. The learning rate then grows exponentially from
``start`` to ``end`` over at most 100 optimizer steps, one batch each, and the test stops when
the smoothed loss diverges. The suggestion is the rate where the smoothed loss falls fastest.

    >>> result = lr_find("resnet18", "pets", freeze_until="layer3")
    >>> result.suggestion
    0.0029
"""

from __future__ import annotations

import math
import tempfile
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from zoo.errors import NonFiniteLoss, StopRequested, TrainingError
from zoo.training._config import TrainConfig
from zoo.training._options import resolve_options
from zoo.training._progress import Reporter
from zoo.training._recipe import mix_batches

MAX_STEPS = 100
SMOOTHING = 0.9  # the loss's exponential moving average, debiased as fastai does
DIVERGED = 4.0  # stop once the smoothed loss is this many times its minimum


@dataclass
class LrFindResult:
    """The rates tried, their losses, and the suggested rate."""

    lrs: list[float]
    losses: list[float]  # each step's batch loss
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None  # steepest descent of the smoothed loss
    diverged: bool = False  # stopped before ``end`` because the loss blew up

    def to_dict(self) -> dict:
        return asdict(self)


def lr_find(
    name: str,
    data: str | None = None,
    *,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = MAX_STEPS,
    reporter: Reporter | None = None,
    config: str | None = None,
    **options,
) -> LrFindResult:
    """The range test for backbone ``name`` on ``data`` with ``finetune``'s ``options``."""
    from zoo.training._setup import start_run

    check_range(start, end, steps)
    settings = TrainConfig(name=name, data=data, **resolve_options(options, config)).check()
    if settings.multi_label:
        raise TrainingError("zoo lr-find does not take --multi-label yet; single-label only")
    reporter = reporter or Reporter()
    with tempfile.TemporaryDirectory(prefix="zoo-lr-find-") as folder:
        settings.output = str(Path(folder) / "run")
        session = start_run(settings, reporter)
        rates = [start * (end / start) ** (i / max(steps - 1, 1)) for i in range(steps)]
        result = _sweep(session, rates)
    result.smoothed = smooth(result.losses)
    result.suggestion = steepest(result.lrs, result.smoothed)
    return result


def check_range(start: float, end: float, steps: int) -> None:
    """Refuse a range no test can run, before anything starts."""
    if not (math.isfinite(start) and math.isfinite(end) and 0 < start < end):
        raise TrainingError(f"--start-lr and --end-lr need 0 < start < end, got {start}, {end}")
    if not 2 <= steps <= MAX_STEPS:
        raise TrainingError(f"--steps must be between 2 and {MAX_STEPS}, got {steps}")


def _sweep(session, rates: list[float]) -> LrFindResult:
    """One optimizer step per rate until the loss diverges; the rates and losses seen."""
    from zoo import compute

    result = LrFindResult([], [])
    state, config = session.state, session.config
    scale = [g["lr"] / config.lr for g in state.optimizer.param_groups]  # --layer-decay's
    stop = [False]

    def record(images: int, loss_sum) -> None:
        loss_sum = float(loss_sum)  # a device tensor: the range test reads every step's loss
        if not math.isfinite(loss_sum):  # blew up: the rates so far are the curve
            stop[0] = True
            return
        result.losses.append(loss_sum / max(images, 1))
        smoothed = smooth(result.losses)
        stop[0] = len(smoothed) > 5 and smoothed[-1] > DIVERGED * min(smoothed)
        stop[0] = stop[0] or len(result.losses) == len(rates)
        update(images, loss_sum)

    def batches():
        for epoch in range(1, len(rates) + 1):  # as many passes as the steps need
            session.loaders.set_epoch(epoch)
            for batch in session.source.batches("train", session.loaders.train):
                lr = rates[len(result.lrs)]
                for group, factor in zip(state.optimizer.param_groups, scale, strict=True):
                    group["lr"] = lr * factor
                result.lrs.append(lr)
                yield batch

    total = len(rates) * config.batch_size
    phase = session.reporter.phase("lr-find", 1, 1, total)
    # StopRequested: the last rate, or the loss diverged; NonFiniteLoss: it blew up.
    with phase as update, suppress(StopRequested, NonFiniteLoss):
        compute.train_epoch(
            session.source.model("train"), _mixed(session, batches()), state.optimizer,
            epoch=1, device=session.device, precision=session.precision, scaler=state.scaler,
            memory_format=session.memory_format, update=record, stop=lambda: stop[0],
            loss_fn=session.loss_fn,
        )  # fmt: skip
    result.lrs = result.lrs[: len(result.losses)]
    result.diverged = len(result.losses) < len(rates)
    return result


def _mixed(session, batches):
    """--mixup/--cutmix as training applies them."""
    if session.mixer is None:
        return batches
    return mix_batches(batches, session.mixer, session.config.seed, 1)


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """The debiased exponential moving average of ``losses``."""
    out, average = [], 0.0
    for i, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta**i))
    return out


def steepest(lrs: list[float], smoothed: list[float]) -> float | None:
    """The rate where the smoothed loss falls fastest against log(lr), before its minimum."""
    lowest = min(range(len(smoothed)), key=smoothed.__getitem__, default=0)
    if lowest < 2:
        return lrs[lowest] if lrs else None
    slopes = [
        (smoothed[i + 1] - smoothed[i - 1]) / math.log(lrs[i + 1] / lrs[i - 1])
        for i in range(1, lowest)
    ]
    return lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)]
