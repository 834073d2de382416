"""The partial loader: load what fits from a checkpoint into a model, and report the rest."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from zoo.checkpoints import WRAPPER_PREFIXES, extract_state_dict, read_checkpoint
from zoo.errors import TransferError
from zoo.transfer._keys import KeyMap, apply_key_map, match_order, under
from zoo.transfer._report import TransferReport, percent, preview

if TYPE_CHECKING:
    from torch import Tensor, nn

MATCHES = ("names", "order")
# What error messages call the options: Python's argument names, or, for ``zoo transfer``
# (``zoo.models.transfer_checkpoint``), the command's flags, so that each message names what
# its reader typed.
ARGUMENTS = {n: n for n in ("prefix", "key_map", "match", "strict", "min_coverage")}
FLAGS = {
    "prefix": "--prefix",
    "key_map": "--map",
    "match": "--match",
    "strict": "--strict",
    "min_coverage": "--min-coverage",
}


def transfer(
    model: nn.Module,
    source: str | os.PathLike | Mapping[str, Any],
    *,
    prefix: str | None = None,
    key_map: KeyMap | None = None,
    match: str = "names",
    new_heads: Iterable[str] = (),
    strict: bool = False,
    min_coverage: float | None = None,
    option_names: Mapping[str, str] = ARGUMENTS,
) -> TransferReport:
    """Copy every source tensor that fits ``model`` into it, in place, and report the rest.

    ``source`` is a checkpoint path or an already-loaded state dict or checkpoint dict.
    ``prefix`` keeps only keys under it (``"backbone."``), with the prefix removed;
    ``key_map`` is ``(regex, replacement)`` pairs applied in order with ``re.sub``, or a file
    of ``REGEX=REPL`` lines (``read_key_map``). ``match="order"`` pairs the source's tensors
    with the model's by position and shape instead of by name (the same architecture written
    with other names). ``new_heads`` are modules being replaced (the head ``num_classes``
    re-initialises): their tensors may be missing or of another shape, even with ``strict``.
    With ``strict`` or ``min_coverage``, a bad fit raises ``TransferError`` and leaves the
    model untouched. ``option_names`` is what the messages call the options (``FLAGS``: the
    command line's).

    >>> model = torchvision.models.resnet34(num_classes=9)  # doctest: +SKIP
    >>> report = transfer(model, "resnet34-imagenet.pth")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    loaded 216/218 tensors, coverage 99.8 %
    shape mismatched: fc.weight (1000, 512) -> (9, 512), fc.bias (1000,) -> (9,)
    """
    import torch

    _check_options(min_coverage, match, option_names)
    heads, target = tuple(new_heads), model.state_dict()
    state = _source_state(source, target)
    if prefix:
        state = _select_prefix(state, prefix)
    state, renamed = apply_key_map(state, key_map, option_names["key_map"])
    state, renamed, hint = _pair(state, renamed, model, target, match, heads, option_names)
    report, fitting = _compare(state, target, model)
    report.renamed = renamed
    _check(
        report, strict=strict, min_coverage=min_coverage, heads=heads, names=option_names, hint=hint
    )
    with torch.no_grad():
        # assign=False copies into the model's own tensors: no second copy of the weights.
        model.load_state_dict(fitting, strict=False, assign=False)
    return report


def _check_options(min_coverage: float | None, match: str, names: Mapping[str, str]) -> None:
    if min_coverage is not None and not 0.0 <= min_coverage <= 1.0:
        raise TransferError(
            f"{names['min_coverage']} is a fraction from 0 to 1, not {min_coverage}; e.g. 0.9"
        )
    if match not in MATCHES:
        raise TransferError(f"{names['match']} is names or order, not {match!r}")


def _pair(state, renamed, model, target, match, heads, names):
    """The source's tensors under the model's keys, source key -> model key, and for pairing
    by name a hint at what pairing by order would load (the model's own heads may differ:
    they are often being replaced)."""
    if match == "order":
        paired, by_order = match_order(state, target, heads, _order(names))
        return paired, _chain(renamed, by_order), None
    return state, renamed, lambda: _order_hint(state, target, heads + _heads_of(model), names)


def _heads_of(model: nn.Module) -> tuple[str, ...]:
    """The heads of a model ``zoo.create`` built, as modules; () for any other model."""
    from zoo.heads import head_modules

    spec = getattr(model, "zoo_spec", None)
    return tuple(head_modules(list(spec.heads))) if spec is not None else ()


def _order(names: Mapping[str, str]) -> str:
    """What to call pairing by order: ``--match order`` on the command line."""
    called = names["match"]
    return f"{called} order" if called.startswith("-") else f"{called}='order'"


def _chain(first: dict[str, str], then: dict[str, str]) -> dict[str, str]:
    """Source key -> final key, through a key map and then pairing by order."""
    back = {new: old for old, new in first.items()}
    chained = {back.get(k, k): v for k, v in then.items()}
    chained.update({old: new for old, new in first.items() if new not in then})
    return {old: new for old, new in chained.items() if old != new}


def _order_hint(state, target, heads, names) -> str:
    """What pairing by order would load, when it would line up; else nothing."""
    try:
        paired, _ = match_order(state, target, heads, _order(names))
    except TransferError:
        return ""
    fits = sum(1 for k, v in paired.items() if v.shape == target[k].shape)
    return (
        f"the names differ but the tensors line up in order: {_order(names)} would load "
        f"{fits}/{len(paired)}; or "
    )


def _source_state(source: Any, target: Mapping[str, Tensor]) -> dict[str, Tensor]:
    # A model whose own keys start with module. (a DDP wrapper) keeps that prefix.
    keep = tuple(p for p in WRAPPER_PREFIXES if target and all(k.startswith(p) for k in target))
    strip = tuple(p for p in WRAPPER_PREFIXES if p not in keep)
    if isinstance(source, str | os.PathLike):
        return extract_state_dict(read_checkpoint(source), name=str(source), strip_prefixes=strip)
    if callable(getattr(source, "state_dict", None)):
        source = source.state_dict()
    return extract_state_dict(source, name="the source", strip_prefixes=strip)


def _select_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    # "backbone" means the sub-tree "backbone.", not also "backbone_ema.".
    if not prefix.endswith(".") and any(k.startswith(prefix + ".") for k in state):
        prefix += "."
    selected = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not selected:
        raise TransferError(
            f"no source key starts with prefix {prefix!r}; source keys look like "
            f"{preview(list(state), 4)}; pick a prefix from those"
        )
    return selected


def _compare(
    state: Mapping[str, Tensor], target: Mapping[str, Tensor], model: nn.Module
) -> tuple[TransferReport, dict[str, Tensor]]:
    report = TransferReport()
    fitting: dict[str, Tensor] = {}
    for key, want in target.items():
        if not hasattr(want, "shape"):  # a module's extra state: nothing a tensor file holds
            continue
        have = state.get(key)
        if have is None:
            report.missing.append(key)
        elif have.shape != want.shape:
            report.shape_mismatched[key] = {"source": list(have.shape), "model": list(want.shape)}
        else:
            report.loaded.append(key)
            fitting[key] = have
    report.unexpected = [k for k in state if k not in target]
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    done = sum(params[k].numel() for k in fitting if k in params)
    report.coverage = done / total if total else 1.0
    return report, fitting


def _check(
    report: TransferReport,
    *,
    strict: bool,
    min_coverage: float | None,
    heads: tuple[str, ...],
    names: Mapping[str, str],
    hint: Callable[[], str] | None,
) -> None:
    fix = f"{hint() if hint else ''}fix the keys with {names['prefix']} or {names['key_map']}"
    missing = [k for k in report.missing if not under(k, heads)]
    mismatched = [k for k in report.shape_mismatched if not under(k, heads)]
    if strict and (missing or report.unexpected or mismatched):
        problems = [
            f"{len(keys)} {what} ({preview(keys, 3)})"
            for what, keys in (
                ("missing", missing),
                ("unexpected", report.unexpected),
                ("shape mismatched", mismatched),
            )
            if keys
        ]
        raise TransferError(
            f"strict transfer failed: {'; '.join(problems)}; {fix}, or drop {names['strict']} "
            "to load what fits"
        )
    if min_coverage is not None and report.coverage < min_coverage:
        found = [f"{len(report.loaded)}/{report.total} model tensors matched"]
        for what, keys in (
            ("unmatched source keys look like", report.unexpected),
            ("unmatched model keys like", report.missing),
        ):
            if keys:
                found.append(f"{what} {preview(keys, 3)}")
        raise TransferError(
            f"coverage {percent(report.coverage)} is below {names['min_coverage']} "
            f"{percent(min_coverage)}: {'; '.join(found)}; {fix}"
        )
