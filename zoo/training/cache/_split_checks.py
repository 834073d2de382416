"""The checks that a cut is right: something is frozen and something trains, the frozen part
is deterministic in training mode, and the split reproduces the model on an example batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.errors import NotSplittable
from zoo.training.cache._split_graph import (
    TRAIN,
    Graph,
    modes_kept,
    random_call,
    random_module,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from torch import Tensor, fx, nn

    from zoo.training.cache._split import Split

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def check_parameters(model: nn.Module) -> None:
    flags = [p.requires_grad for p in model.parameters()]
    if all(flags):
        raise NotSplittable("nothing is frozen (every parameter trains); freeze a prefix first")
    if not any(flags):
        raise NotSplittable("every parameter is frozen; there is nothing to train")


def check_not_empty(graph: Graph, prefix: set[str]) -> None:
    """The prefix must run a frozen layer; a few parameter-free ops are not worth caching."""
    if not any(graph.params[n] for n in prefix):
        trained = [n for n in graph.nodes.values() if graph.status[n.name] == TRAIN]
        layers = [n.target for n in trained if graph.params[n.name]]
        where = f" ('{layers[0]}')" if layers else ""
        raise NotSplittable(
            f"the first layer to see the image trains{where}, so no frozen layer runs before "
            "the trainable ones; freeze through a later point to cache features"
        )


def check_deterministic(model: nn.Module, graph: Graph, prefix: set[str]) -> None:
    """No randomness and no batch statistics in the frozen part in training mode."""
    from torch.nn.modules.batchnorm import _BatchNorm

    from zoo.freezing import is_held

    seen = set()
    for name in sorted(prefix, key=graph.order.get):
        node = graph.nodes[name]
        for path, module in _modules_run(model, graph.gm, node):
            why = "is random" if random_module(module) else None
            if isinstance(module, _BatchNorm) and not is_held(module):
                why = "normalises with batch statistics (it is not held in eval)"
            if why and path not in seen:
                raise NotSplittable(
                    f"'{path}' ({type(module).__name__}) in the frozen part {why} in training "
                    "mode, so its outputs would change every epoch and cannot be cached"
                )
            seen.add(path)
        if random_call(node):
            raise NotSplittable(
                f"'{name}' ({node.target}) in the frozen part draws random numbers in "
                "training mode, so its outputs would change every epoch and cannot be cached"
            )


def _modules_run(model: nn.Module, gm: fx.GraphModule, node: fx.Node) -> Iterator:
    """The modules a node runs: the ones traced through to reach it, and a leaf's insides."""
    for path, _ in (node.meta.get("nn_module_stack") or {}).values():
        if path:
            yield path, model.get_submodule(path)
    if node.op == "call_module":
        for sub, module in gm.get_submodule(node.target).named_modules():
            yield ".".join(p for p in (node.target, sub) if p), module


def check_on_example(model: nn.Module, split: Split, example: Tensor) -> list[tuple[int, ...]]:
    """Run the split on ``example``: tensors of images at the cut, one image at a time the
    same as in a batch, and the model's own eval output at the end."""
    try:
        return _run_example(model, split, example)
    except NotSplittable:
        raise
    except Exception as error:  # a graph zoo cut wrongly: train uncached, say why
        raise NotSplittable(
            f"the split failed on an example batch ({type(error).__name__}: {error}); "
            "it trains uncached"
        ) from error


def _run_example(model: nn.Module, split: Split, example: Tensor) -> list[tuple[int, ...]]:
    """The boundary shapes, after the checks; any error here means the cut is wrong."""
    import torch

    features = split.features(example)
    for name, value in zip(split.boundary, features, strict=True):
        if not (torch.is_tensor(value) and value.is_floating_point()):
            kind = value.dtype if torch.is_tensor(value) else type(value).__name__
            raise NotSplittable(
                f"the value crossing the cut at '{name}' is a {kind}, not a float tensor "
                "(the trainable part reads a size or index the frozen part computed)"
            )
        if value.dim() == 0 or value.shape[0] != len(example):
            raise NotSplittable(
                f"the value crossing the cut at '{name}' has shape {tuple(value.shape)}, not "
                f"one row per image ({len(example)})"
            )
    if len(example) > 1:
        alone = split.features(example[:1])
        if not all(
            _close(a, f[:1], rtol=1e-3, atol=1e-4) for a, f in zip(alone, features, strict=True)
        ):
            raise NotSplittable("the frozen part mixes the images of a batch")
    with torch.no_grad(), modes_kept(model.modules()):
        expected, got = model.eval()(example), split.suffix(train=False)(*features)
    if not _close(expected, got, **TOLERANCE):
        raise NotSplittable("the split does not reproduce the model's output; it trains uncached")
    return [tuple(f.shape[1:]) for f in features]


def _close(a, b, *, rtol: float, atol: float) -> bool:
    """Equal outputs: tensors within tolerance, containers (named tuples) item by item.

    The tolerance is relative to the tensor's largest value, not element by element: the
    same arithmetic in another order (a batch of one, or channels_last, picks other kernels)
    moves values near zero by far more than their own size, but never by much of the whole.
    """
    import torch

    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(_close(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b, strict=True))
    if torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape:
        if a.numel() == 0:
            return True
        a, b = a.detach().float(), b.detach().float()
        return bool((a - b).abs().max() <= rtol * b.abs().max() + atol)
    return a is None and b is None
