"""The partial loader: load what fits from a checkpoint into a model, and report the rest."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from zoo.checkpoints import WRAPPER_PREFIXES, extract_state_dict, read_checkpoint
from zoo.errors import TransferError

if TYPE_CHECKING:
    from torch import Tensor, nn

KeyMap = Iterable[tuple[str, str]] | Mapping[str, str]

# What error messages call the options: Python's argument names, or, for ``zoo transfer``
# (``zoo.models.transfer_checkpoint``), the command's flags, so that each message names what
# its reader typed.
ARGUMENTS = {name: name for name in ("prefix", "key_map", "strict", "min_coverage")}
FLAGS = {
    "prefix": "--prefix",
    "key_map": "--map",
    "strict": "--strict",
    "min_coverage": "--min-coverage",
}


@dataclass
class TransferReport:
    """What a transfer loaded and what it left out; ``report["coverage"]`` works too."""

    loaded: list[str] = field(default_factory=list)  # model keys filled from the source
    missing: list[str] = field(default_factory=list)  # in the model, not in the source
    unexpected: list[str] = field(default_factory=list)  # in the source, not in the model
    # key -> {"source": shape, "model": shape} for keys both have with different shapes
    shape_mismatched: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # source key -> key after key_map
    coverage: float = 0.0  # fraction of the model's parameter elements that were loaded

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready builtins, keyed as the fields are."""
        return asdict(self)

    def summary(self) -> str:
        """A few lines for people: counts, coverage, and the first keys of each problem."""
        total = len(self.loaded) + len(self.missing) + len(self.shape_mismatched)
        lines = [f"loaded {len(self.loaded)}/{total} tensors, coverage {_percent(self.coverage)}"]
        if self.shape_mismatched:
            shapes = [
                f"{k} {_shape(v['source'])} -> {_shape(v['model'])}"
                for k, v in self.shape_mismatched.items()
            ]
            lines.append(f"shape mismatched: {_preview(shapes)}")
        if self.missing:
            lines.append(f"missing ({len(self.missing)}): {_preview(self.missing)}")
        if self.unexpected:
            lines.append(f"unexpected ({len(self.unexpected)}): {_preview(self.unexpected)}")
        if self.renamed:
            pairs = [f"{old} -> {new}" for old, new in self.renamed.items()]
            lines.append(f"renamed ({len(self.renamed)}): {_preview(pairs, 3)}")
        return "\n".join(lines)


def transfer(
    model: nn.Module,
    source: str | os.PathLike | Mapping[str, Any],
    *,
    prefix: str | None = None,
    key_map: KeyMap | None = None,
    strict: bool = False,
    min_coverage: float | None = None,
    option_names: Mapping[str, str] = ARGUMENTS,
) -> TransferReport:
    """Copy every source tensor that fits ``model`` into it, in place, and report the rest.

    ``source`` is a checkpoint path or an already-loaded state dict or checkpoint dict.
    ``prefix`` keeps only keys under it (``"backbone."``), with the prefix removed;
    ``key_map`` is ``(regex, replacement)`` pairs applied in order with ``re.sub``.
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

    _check_fraction(min_coverage, option_names["min_coverage"])
    target = model.state_dict()
    state = _source_state(source, target)
    if prefix:
        state = _select_prefix(state, prefix)
    state, renamed = _apply_key_map(state, key_map, option_names["key_map"])
    report, fitting = _compare(state, target, model)
    report.renamed = renamed
    _check(report, strict=strict, min_coverage=min_coverage, names=option_names)
    with torch.no_grad():
        # assign=False copies into the model's own tensors: no second copy of the weights.
        model.load_state_dict(fitting, strict=False, assign=False)
    return report


def _check_fraction(min_coverage: float | None, called: str) -> None:
    if min_coverage is not None and not 0.0 <= min_coverage <= 1.0:
        raise TransferError(f"{called} is a fraction from 0 to 1, not {min_coverage}; e.g. 0.9")


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
            f"{_preview(list(state), 4)}; pick a prefix from those"
        )
    return selected


def _apply_key_map(
    state: dict[str, Tensor], key_map: KeyMap | None, called: str
) -> tuple[dict[str, Tensor], dict[str, str]]:
    if not key_map:
        return state, {}
    pairs = key_map.items() if isinstance(key_map, Mapping) else key_map
    rules = [_rule(pair, called) for pair in pairs]
    mapped: dict[str, Tensor] = {}
    renamed: dict[str, str] = {}
    origin: dict[str, str] = {}
    for key, tensor in state.items():
        new = key
        for pattern, repl in rules:
            new = pattern.sub(repl, new)
        if new in mapped:
            raise TransferError(
                f"{called} maps both {origin[new]!r} and {key!r} to {new!r}; make the rules "
                "more specific"
            )
        mapped[new], origin[new] = tensor, key
        if new != key:
            renamed[key] = new
    return mapped, renamed


def _rule(pair: Any, called: str) -> tuple[re.Pattern, str]:
    try:
        pattern, repl = pair
        return re.compile(pattern), repl
    except (re.error, ValueError, TypeError) as e:
        raise TransferError(
            f"bad {called} rule {pair!r} ({e}); give (regex, replacement) pairs"
        ) from None


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
    report: TransferReport, *, strict: bool, min_coverage: float | None, names: Mapping[str, str]
) -> None:
    fix = f"fix the keys with {names['prefix']} or {names['key_map']}"
    if strict and (report.missing or report.unexpected or report.shape_mismatched):
        problems = [
            f"{len(keys)} {what} ({_preview(list(keys), 3)})"
            for what, keys in (
                ("missing", report.missing),
                ("unexpected", report.unexpected),
                ("shape mismatched", report.shape_mismatched),
            )
            if keys
        ]
        raise TransferError(
            f"strict transfer failed: {'; '.join(problems)}; {fix}, or drop {names['strict']} "
            "to load what fits"
        )
    if min_coverage is not None and report.coverage < min_coverage:
        total = len(report.loaded) + len(report.missing) + len(report.shape_mismatched)
        found = [f"{len(report.loaded)}/{total} model tensors matched"]
        for what, keys in (
            ("unmatched source keys look like", report.unexpected),
            ("unmatched model keys like", report.missing),
        ):
            if keys:
                found.append(f"{what} {_preview(keys, 3)}")
        raise TransferError(
            f"coverage {_percent(report.coverage)} is below {names['min_coverage']} "
            f"{_percent(min_coverage)}: {'; '.join(found)}; {fix}"
        )


def _preview(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return f"{shown} and {len(items) - n} more" if len(items) > n else shown


def _percent(fraction: float) -> str:
    # Rounded down, so a model that missed its head never reads as 100 %.
    tenths = math.floor(fraction * 1000)
    return "<0.1 %" if tenths == 0 and fraction > 0 else f"{tenths / 10:.1f} %"


def _shape(dims: list[int]) -> str:
    return str(tuple(dims))
