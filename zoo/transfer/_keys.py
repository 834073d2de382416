"""Matching a source's keys to a model's: regex rules (given, or read from a file) and pairing
by order and shape when the same architecture was written with other names."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import TransferError

if TYPE_CHECKING:
    from torch import Tensor

# (regex, replacement) pairs, a {regex: replacement} mapping, or a file of REGEX=REPL lines.
KeyMap = Iterable[tuple[str, str]] | Mapping[str, str] | str | os.PathLike


def read_key_map(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The ``REGEX=REPL`` rules of a file, one a line, in order; blank lines and lines that
    start with ``#`` are skipped, and the first ``=`` separates the two parts.

    >>> read_key_map("lite0.map")  # doctest: +SKIP
    [('^_blocks\\\\.', 'blocks.'), ('_bn0', 'bn1')]
    """
    try:
        text = Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise TransferError(f"cannot read the map file {path} ({reason}); check the path") from None
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, replacement = line.partition("=")
        if not sep or not pattern:
            raise TransferError(f"{path}:{number}: {line!r} is not REGEX=REPLACEMENT")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise TransferError(f"{path}:{number}: {pattern!r} is not a regex ({exc})") from None
        rules.append((pattern, replacement))
    return rules


def apply_key_map(
    state: dict[str, Tensor], key_map: KeyMap | None, called: str
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """``state`` with every key rewritten by the rules in order, and old key -> new key."""
    if not key_map:
        return state, {}
    if isinstance(key_map, str | os.PathLike):
        key_map = read_key_map(key_map)
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


def match_order(
    state: dict[str, Tensor], target: Mapping[str, Any], new_heads: tuple[str, ...], called: str
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The source's tensors under the model's keys, paired one for one in order.

    Every pair must have the same shape, except in ``new_heads`` (a head being replaced, whose
    pair is then reported as of another shape). Sequences that do not line up are refused,
    naming the first pair that differs. Returns the renamed state and source key -> model key.
    """
    source = list(state.items())
    model = [(k, v) for k, v in target.items() if hasattr(v, "shape")]
    for i, ((key, have), (into, want)) in enumerate(zip(source, model, strict=False)):
        if have.shape != want.shape and not under(into, new_heads):
            raise TransferError(
                f"{called} cannot pair the tensors: pair {i + 1} differs in shape, source "
                f"{key} {tuple(have.shape)} and model {into} {tuple(want.shape)}; the two do not "
                "list the same layers in the same order"
            )
    if len(source) != len(model):
        raise TransferError(
            f"{called} cannot pair the tensors: the source has {len(source)} and the model "
            f"{len(model)}; the first {min(len(source), len(model))} line up, then one side ends"
        )
    paired = {into: have for (_, have), (into, _) in zip(source, model, strict=True)}
    renamed = {key: into for (key, _), (into, _) in zip(source, model, strict=True) if key != into}
    return paired, renamed


def under(key: str, modules: tuple[str, ...]) -> bool:
    """Whether ``key`` is a tensor of one of ``modules`` (dotted paths)."""
    return any(key.startswith(m + ".") for m in modules)
