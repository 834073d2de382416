"""Loading chosen weights into a built model: strictly for a tag or a run, by fit for a file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import WeightsError

if TYPE_CHECKING:
    from torch import nn

    from zoo.registry import Backbone

from zoo.weights._resolve import Resolved

log = logging.getLogger("zoo")


def _file_num_classes(backbone: Backbone, path: Path) -> int | None:
    """The number of classes a plain weights file's head has, when that head fits the arch.

    So that a file saved from a 10-class model gives a 10-class model, not a random head.
    """
    from zoo.checkpoints import read_state_dict
    from zoo.models._create import build_structure, describe

    state = read_state_dict(path)  # first: a bad file fails before anything is built
    model = build_structure(backbone)
    head = describe(model, backbone).head
    want = getattr(model.get_submodule(head), "weight", None)
    have = state.get(f"{head}.weight")
    if want is None or have is None or have.shape[1:] != want.shape[1:]:
        return None
    return int(have.shape[0])


def load_into(model: nn.Module, resolved: Resolved, heads: list[str]) -> None:
    """Load ``resolved`` into ``model``: a tag or a run strictly; a user file by transfer,
    requiring every parameter outside the heads (and auxiliary head branches)."""
    from zoo.checkpoints import read_state_dict

    state = read_state_dict(resolved.path)
    if resolved.tag is not None or resolved.run is not None:
        _load_strict(model, state, resolved, heads)
    else:
        _load_fitting(model, state, resolved, heads)


def _head_prefixes(heads: list[str]) -> tuple[str, ...]:
    # An auxiliary head is a whole branch (googlenet's aux1), all of it optional in a file.
    return tuple(h + "." for h in heads[:1]) + tuple(h.split(".")[0] + "." for h in heads[1:])


def _load_fitting(model: nn.Module, state: dict, resolved: Resolved, heads: list[str]) -> None:
    from zoo.transfer import transfer

    report = transfer(model, state)
    missing = [
        k
        for k in report.missing + list(report.shape_mismatched)
        if not k.startswith(_head_prefixes(heads))
    ]
    if missing:
        raise WeightsError(
            f"{resolved.path} does not fit {type(model).__name__}: {len(report.loaded)} tensors "
            f"matched, coverage {report.coverage:.1%}, {len(missing)} backbone tensors missing "
            f"or of another shape (first: {missing[0]}); is it for another architecture? "
            "Use `zoo transfer` for partial weights"
        )


def _load_strict(model: nn.Module, state: dict, resolved: Resolved, heads: list[str]) -> None:
    try:
        model.load_state_dict(state, strict=True)
        return
    except RuntimeError as exc:
        error = exc
    for candidate in (_timm_filter(model, state), state):
        if candidate is not None and _load_headless(model, candidate, heads):
            return
    first = str(error).splitlines()[1:2] or [str(error)]
    raise WeightsError(
        f"{resolved.path} does not match {type(model).__name__}: "
        f"{first[0].strip()}; is it for another architecture?"
    )


def _load_headless(model: nn.Module, state: dict, heads: list[str]) -> bool:
    """Load ``state`` if it fits exactly or lacks only the heads (feature-only weights, such
    as timm's ``num_classes=0`` tags); those heads are then freshly initialised."""
    from zoo.heads import adapt_head, head_features

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    fits = all(k in expected and expected[k].shape == v.shape for k, v in state.items())
    if not fits or any(not k.startswith(_head_prefixes(heads)) for k in missing):
        return False
    model.load_state_dict(state, strict=False)
    prefixes = _head_prefixes(heads)
    fresh = [
        h for h, p in zip(heads, prefixes, strict=True) if any(k.startswith(p) for k in missing)
    ]
    for head in fresh:
        adapt_head(model, head, head_features(model, head)[1])
    if fresh:
        log.warning("the weights have no classifier; %s freshly initialised", ", ".join(fresh))
    return True


def _timm_filter(model: nn.Module, state: dict) -> dict | None:
    """timm's own checkpoint conversion for the model's family, where it has one."""
    import sys

    module = sys.modules.get(type(model).__module__)
    fn = getattr(module, "checkpoint_filter_fn", None)
    if fn is None:
        return None
    try:
        return fn(state, model)
    except Exception:  # a filter that does not apply: report the original mismatch
        return None
