"""Stages of a backbone for fine-tuning: the optimizer's parameter groups per freeze-point stage
(--layer-decay), and the boundary where --unfreeze-after lets the whole model train.

    >>> groups = parameter_groups(model, config)      # head: --lr; each stage below: F times
    >>> unfreeze(model, config)                        # at the start of epoch N + 1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.heads import head_modules

if TYPE_CHECKING:
    from torch import nn

    from zoo.training._config import TrainConfig

HEAD = "head"


def parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: the trainable parameters in one group; with
    --layer-decay F one group per stage, the head at --lr and each freeze-point stage below
    it F times the rate of the one above. With --unfreeze-after the frozen parameters join
    too (they get no gradient, so no update, until they unfreeze)."""
    named = [
        (n, p) for n, p in model.named_parameters() if p.requires_grad or config.unfreeze_after
    ]
    if config.layer_decay is None:
        return [{"params": [p for _, p in named]}]
    points = list(model.zoo_spec.freeze_points)
    heads = head_modules(model.zoo_spec.heads)
    groups: dict[str, dict] = {}
    for name, param in named:
        stage, depth = stage_of(name, points, heads)
        group = groups.setdefault(
            stage, {"params": [], "lr": config.lr * config.layer_decay**depth, "stage": stage}
        )
        group["params"].append(param)
    return list(groups.values())


def stage_of(name: str, points: list[str], heads: list[str]) -> tuple[str, int]:
    """(stage, depth below the head) of parameter ``name``; a parameter outside every stage
    and head (a class token, a position embedding) goes with the first stage."""
    if any(_under(name, h) for h in heads):
        return HEAD, 0
    for i, point in enumerate(points):
        if _under(name, point):
            return point, len(points) - i
    return points[0], len(points)


def _under(name: str, path: str) -> bool:
    return name == path or name.startswith(path + ".")


def unfreeze(model: nn.Module, config: TrainConfig) -> str:
    """Let every parameter train and every BatchNorm layer go back to training; the line
    that says what changed."""
    from zoo.freezing import freeze

    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    freeze(model, None, train_bn=config.train_bn)
    model.train()
    return (
        f"epoch {config.unfreeze_after + 1}: unfreezing {config.freeze_until} and below "
        f"({frozen:,} more parameters train; BatchNorm layers train again)"
    )


def unfreeze_session(session) -> None:
    """At the --unfreeze-after boundary: the whole model trains from here, on images (the
    feature cache served the frozen part's outputs), DDP-wrapped anew under torchrun (a
    wrapper only syncs the parameters that trained when it was made)."""
    import gc

    from zoo.training import _distributed as distributed
    from zoo.training.cache._source import BatchSource, FeatureSource

    session.reporter.note(unfreeze(session.model, session.config))
    if session.dist.enabled:
        session.source = BatchSource(None, session.model)  # drop the old wrapper's hooks
        gc.collect()
        train = distributed.wrap(session.model, session.dist, session.device)
        session.source = BatchSource(train, session.model)
    elif isinstance(session.source, FeatureSource):
        session.source = BatchSource(session.model, session.model)
    session.counts = (0, sum(p.numel() for p in session.model.parameters()))


def at_boundary(session, epoch: int) -> bool:
    """Whether ``epoch`` is the first to train with everything unfrozen, and something is
    still frozen (a run resumed at the boundary was unfrozen at set-up)."""
    after = session.config.unfreeze_after
    if after is None or epoch != after + 1:
        return False
    return not all(p.requires_grad for p in session.model.parameters())
