"""Splitting a partly frozen model into a frozen prefix and a trainable suffix.

The prefix is every computation that depends on the input alone, never on a parameter that
trains; its outputs (the boundary tensors) are the same every epoch for the same image, so
they can be computed once without autograd and cached. The suffix takes the boundary tensors
and finishes the forward pass. Both are ``torch.fx`` graphs over the model's own submodules
and parameters, so training the suffix trains the model.

    >>> split = split_frozen_prefix(model, example=images[:2])
    >>> logits = split.suffix(train=True)(*split.features(images))
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import NotSplittable
from zoo.training.cache._split_checks import (
    check_deterministic,
    check_not_empty,
    check_on_example,
    check_parameters,
)
from zoo.training.cache._split_graph import INPUT, Graph, modes_kept, shrink, suffix_graph

if TYPE_CHECKING:
    from torch import Tensor, fx, nn


@dataclass
class Split:
    """A model cut where its frozen prefix ends; see ``split_frozen_prefix``."""

    prefix: fx.GraphModule  # image -> tuple of boundary tensors; frozen, deterministic
    suffix_train: fx.GraphModule  # *boundary -> what model(x) returns in train mode
    suffix_eval: fx.GraphModule  # *boundary -> what model(x) returns in eval mode
    boundary: list[str]  # the graph nodes whose values cross the cut, in forward order
    boundary_shapes: list[tuple[int, ...]]  # each boundary tensor's shape for one image

    def features(self, images: Tensor) -> tuple[Tensor, ...]:
        """The boundary tensors of ``images``: the prefix in eval mode, without autograd.

        >>> first, *rest = split.features(images)  # first.shape[1:] == split.boundary_shapes[0]
        """
        import torch

        with torch.no_grad(), modes_kept(self.prefix.modules()):
            self.prefix.eval()
            return tuple(self.prefix(images))

    def suffix(self, *, train: bool) -> fx.GraphModule:
        """The suffix graph for training or evaluation, its modules put in that mode.

        >>> loss = F.cross_entropy(split.suffix(train=True)(*features), targets)
        """
        module = self.suffix_train if train else self.suffix_eval
        return module.train(train)


def split_frozen_prefix(model: nn.Module, *, example: Tensor) -> Split:
    """Cut ``model`` after its frozen prefix; raise NotSplittable when it cannot be cut.

    ``example`` is a small batch of inputs (two images): it gives the boundary shapes and
    checks that the split reproduces ``model(example)`` in eval mode and that the prefix
    treats each image on its own. Build the split after moving the model to its device.

    >>> model = zoo.create("resnet18", num_classes=5, weights=None, freeze_until="layer3")
    >>> split = split_frozen_prefix(model, example=torch.randn(2, 3, 64, 64))
    >>> split.boundary_shapes
    [(256, 4, 4)]
    """
    check_parameters(model)
    train, evals = (Graph(gm) for gm in _trace_both(model))
    eval_only = {evals.prints[n] for n in evals.boundary()} - set(train.named)
    both = [*train.boundary(), *(train.named.get(evals.prints[n]) for n in evals.boundary())]
    boundary = shrink(train, sorted(set(both) - {None}, key=train.order.get))
    inputs: dict[str, str] = {}  # fingerprint -> name, in forward order, one per computation
    for name in boundary:
        inputs.setdefault(train.prints[name], name)
    boundary = list(inputs.values())
    prefix_nodes = train.ancestors(boundary, extra=train.unused(INPUT))
    check_not_empty(train, prefix_nodes)
    check_deterministic(model, train, prefix_nodes)
    if eval_only:
        raise NotSplittable("the frozen part runs differently in train and eval mode")
    split = Split(
        prefix=train.subgraph(prefix_nodes, outputs=boundary),
        suffix_train=suffix_graph(train, inputs),
        suffix_eval=suffix_graph(evals, inputs),
        boundary=boundary,
        boundary_shapes=[],
    )
    split.boundary_shapes = check_on_example(model, split, example)
    return split


# ---------------------------------------------------------------- tracing


def _trace_both(model: nn.Module) -> tuple[fx.GraphModule, fx.GraphModule]:
    """The model traced in train mode and in eval mode (control flow may read ``training``)."""
    concrete = _defaults(model)
    with modes_kept(model.modules()):
        try:  # a plugin's fx_leaves that fails is one more reason not to cache, not a crash
            leaves = _fx_leaves(model)
            return _trace(model.train(), concrete, leaves), _trace(model.eval(), concrete, leaves)
        except Exception as error:  # fx fails in many ways: TraceError, TypeError, ...
            raise NotSplittable(
                f"{type(model).__name__} cannot be traced by torch.fx "
                f"({type(error).__name__}: {error}); it trains uncached"
            ) from error


def _trace(model: nn.Module, concrete: dict[str, Any], leaves: tuple) -> fx.GraphModule:
    import torch.fx

    modules = tuple(x for x in leaves if isinstance(x, type))
    functions = tuple(x for x in leaves if not isinstance(x, type) and callable(x))

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, module, name):
            return isinstance(module, modules) or super().is_leaf_module(module, name)

    graph = Tracer(autowrap_functions=functions).trace(model, concrete_args=concrete)
    return torch.fx.GraphModule(model, graph, type(model).__name__)


def _fx_leaves(model: nn.Module) -> tuple:
    """What the model's plugin says fx must not trace into (its ``fx_leaves`` field): module
    types kept whole, and functions called as they are."""
    backbone = getattr(getattr(model, "zoo_spec", None), "backbone", None)
    leaves = getattr(backbone, "fx_leaves", None)
    return tuple((leaves() if callable(leaves) else leaves) or ())


def _defaults(model: nn.Module) -> dict[str, Any]:
    """Every forward argument after the image fixed to its default (a ViT's ``attn_mask``)."""
    params = list(inspect.signature(model.forward).parameters.values())[1:]
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    if required:
        raise NotSplittable(f"forward takes more than the image ({', '.join(required)})")
    return {p.name: p.default for p in params}
