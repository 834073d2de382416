"""Loading chosen weights into a built model: strictly for a tag or a run, by fit for a file."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from zoo.errors import WeightsError
from zoo.heads import head_modules

if TYPE_CHECKING:
    from torch import Tensor, nn

    from zoo.models._create import ModelSpec
    from zoo.weights import Resolved

log = logging.getLogger("zoo")


def file_num_classes(model: nn.Module, head: str, state: dict[str, Tensor]) -> int | None:
    """The number of classes a plain weights file's head has, when that head fits the model's.

    So that a file saved from a 10-class model gives a 10-class model, not a random head.
    """
    want = getattr(model.get_submodule(head), "weight", None)
    have = state.get(f"{head}.weight")
    if want is None or have is None or have.shape[1:] != want.shape[1:]:
        return None
    return int(have.shape[0])


def load_into(
    model: nn.Module, resolved: Resolved, spec: ModelSpec, state: dict[str, Tensor] | None = None
) -> None:
    """Load ``resolved`` (its tensors ``state``, read from it if not given) into ``model``,
    described by ``spec``: a tag or a run strictly; a user file by transfer, requiring every
    parameter outside the heads (and auxiliary head branches)."""
    state = resolved.read_state() if state is None else state
    if resolved.tag is not None or resolved.run is not None:
        _load_strict(model, state, resolved, spec)
    else:
        _load_fitting(model, state, resolved, spec)


def _head_prefixes(heads: list[str]) -> tuple[str, ...]:
    return tuple(module + "." for module in head_modules(heads))


def _load_fitting(model: nn.Module, state: dict, resolved: Resolved, spec: ModelSpec) -> None:
    report, missing = _fit(model, state, spec.heads)
    converted = _filtered(model, state, spec) if missing else None
    if converted is not None:  # another size's position embedding, resampled by the plugin
        report, missing = _fit(model, converted, spec.heads)
    if missing:
        raise WeightsError(
            f"{resolved.path} does not fit {type(model).__name__}: {len(report.loaded)} tensors "
            f"matched, coverage {report.coverage:.1%}, {len(missing)} backbone tensors missing "
            f"or of another shape (first: {missing[0]}); is it for another architecture? "
            "Use `zoo transfer` for partial weights"
        )


def _fit(model: nn.Module, state: dict, heads: list[str]):
    """Load what fits; the report and the backbone tensors left out."""
    from zoo.transfer import transfer

    report = transfer(model, state)
    missing = [
        k
        for k in report.missing + list(report.shape_mismatched)
        if not k.startswith(_head_prefixes(heads))
    ]
    return report, missing


def _load_strict(model: nn.Module, state: dict, resolved: Resolved, spec: ModelSpec) -> None:
    try:
        model.load_state_dict(state, strict=True)
        return
    except RuntimeError as exc:
        error = exc
    for candidate in (_filtered(model, state, spec), state):
        if candidate is not None and _load_headless(model, candidate, spec):
            return
    first = str(error).splitlines()[1:2] or [str(error)]
    raise WeightsError(
        f"{resolved.path} does not match {type(model).__name__}: "
        f"{first[0].strip()}; is it for another architecture?"
    )


def _filtered(model: nn.Module, state: dict, spec: ModelSpec) -> dict | None:
    """The state converted by the plugin's ``load_filter`` (an original checkpoint's layout)."""
    convert = spec.backbone.load_filter if spec.backbone else None
    if convert is None:
        return None
    try:
        return convert(state, model)
    except Exception:  # a filter that does not apply: report the original mismatch
        return None


def _load_headless(model: nn.Module, state: dict, spec: ModelSpec) -> bool:
    """Load ``state`` if it fits exactly or lacks only the heads (feature-only weights, such
    as ``num_classes=0`` tags); those heads are then freshly initialised."""
    from zoo.heads import adapt_head, head_features

    heads, prefixes = spec.heads, _head_prefixes(spec.heads)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    fits = all(k in expected and expected[k].shape == v.shape for k, v in state.items())
    if not fits or any(not k.startswith(prefixes) for k in missing):
        return False
    model.load_state_dict(state, strict=False)
    fresh = [
        h for h, p in zip(heads, prefixes, strict=True) if any(k.startswith(p) for k in missing)
    ]
    reset = spec.backbone.adapt_head if spec.backbone else None
    for head in fresh:
        adapt_head(model, head, head_features(model, head)[1], reset=reset)
    if fresh:
        log.warning("the weights have no classifier; %s freshly initialised", ", ".join(fresh))
    return True
