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

import hashlib
import inspect
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any

from zoo.errors import NotSplittable

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from torch import Tensor, fx, nn

INPUT, CONST, TRAIN = "input", "const", "train"  # a node's value: from the image, fixed, trains
# Modules and functions that draw random numbers in training mode (by class or function
# name, so that timm and torchvision need not be imported to recognise theirs).
RANDOM_MODULES = {"DropPath", "DropBlock2d", "StochasticDepth", "RReLU"}
RANDOM_FUNCTIONS = {
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "stochastic_depth", "drop_path", "drop_block_2d", "drop_block_fast_2d", "rrelu",
    "bernoulli", "bernoulli_", "rand", "randn", "rand_like", "randn_like", "randint",
    "randint_like", "randperm", "normal", "normal_", "uniform_", "multinomial", "poisson",
    "exponential_", "geometric_", "cauchy_", "log_normal_", "random_",
}  # fmt: skip
PROBABILITY_ARGS = ("p", "drop_prob", "drop_rate")
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


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

        with torch.no_grad(), _modes_kept(self.prefix.modules()):
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
    _check_parameters(model)
    train, evals = (_Graph(gm) for gm in _trace_both(model))
    eval_only = {evals.prints[n] for n in evals.boundary()} - set(train.named)
    both = [*train.boundary(), *(train.named.get(evals.prints[n]) for n in evals.boundary())]
    boundary = _shrink(train, sorted(set(both) - {None}, key=train.order.get))
    inputs: dict[str, str] = {}  # fingerprint -> name, in forward order, one per computation
    for name in boundary:
        inputs.setdefault(train.prints[name], name)
    boundary = list(inputs.values())
    prefix_nodes = train.ancestors(boundary, extra=train.unused(INPUT))
    _check_not_empty(train, prefix_nodes)
    _check_deterministic(model, train, prefix_nodes)
    if eval_only:
        raise NotSplittable("the frozen part runs differently in train and eval mode")
    split = Split(
        prefix=train.subgraph(prefix_nodes, outputs=boundary),
        suffix_train=_suffix(train, inputs),
        suffix_eval=_suffix(evals, inputs),
        boundary=boundary,
        boundary_shapes=[],
    )
    split.boundary_shapes = _check_on_example(model, split, example)
    return split


# ---------------------------------------------------------------- tracing


def _trace_both(model: nn.Module) -> tuple[fx.GraphModule, fx.GraphModule]:
    """The model traced in train mode and in eval mode (control flow may read ``training``)."""
    concrete = _defaults(model)
    with _modes_kept(model.modules()):
        try:
            return _trace(model.train(), concrete), _trace(model.eval(), concrete)
        except Exception as error:  # fx fails in many ways: TraceError, TypeError, ...
            raise NotSplittable(
                f"{type(model).__name__} cannot be traced by torch.fx "
                f"({type(error).__name__}: {error}); it trains uncached"
            ) from error


def _trace(model: nn.Module, concrete: dict[str, Any]) -> fx.GraphModule:
    import torch.fx

    leaves, functions = _timm_notrace()

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, module, name):
            return isinstance(module, leaves) or super().is_leaf_module(module, name)

    graph = Tracer(autowrap_functions=functions).trace(model, concrete_args=concrete)
    return torch.fx.GraphModule(model, graph, type(model).__name__)


def _timm_notrace() -> tuple[tuple[type, ...], tuple[Any, ...]]:
    """timm's own leaf modules and wrapped functions, if timm is in use (never imported here)."""
    import sys

    fx = sys.modules.get("timm.layers._fx")
    if fx is None:
        return (), ()
    functions = tuple(f for f in fx.get_notrace_functions() if callable(f))
    return tuple(fx.get_notrace_modules()), functions


def _defaults(model: nn.Module) -> dict[str, Any]:
    """Every forward argument after the image fixed to its default (timm's ``attn_mask``)."""
    params = list(inspect.signature(model.forward).parameters.values())[1:]
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    if required:
        raise NotSplittable(f"forward takes more than the image ({', '.join(required)})")
    return {p.name: p.default for p in params}


# ---------------------------------------------------------------- finding the cut


class _Graph:
    """A traced model, each node's kind (from the image, constant, training) worked out once."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm, self.nodes = gm, {node.name: node for node in gm.graph.nodes}
        self.order = {name: i for i, name in enumerate(self.nodes)}
        self.status: dict[str, str] = {}
        self.prints: dict[str, str] = {}  # what a node computes, whatever its name
        self.params = {node.name: _parameters(gm, node) for node in gm.graph.nodes}
        for node in gm.graph.nodes:
            self.status[node.name] = self._kind(node)
            self.prints[node.name] = self._fingerprint(node)
        self.named = {p: n for n, p in reversed(self.prints.items())}  # print -> first node

    def _fingerprint(self, node: fx.Node) -> str:
        """The same in a train and an eval trace for the same computation: names differ when
        train mode adds nodes (auxiliary heads) before it."""
        from torch.fx.node import map_arg

        args = map_arg((node.args, node.kwargs), lambda n: self.prints[n.name])
        return hashlib.sha1(f"{node.op}|{node.target}|{args}".encode()).hexdigest()

    def _kind(self, node: fx.Node) -> str:
        kinds = {self.status[n.name] for n in node.all_input_nodes}
        if node.op == "placeholder":  # the image; the other arguments are fixed to defaults
            return CONST if self.status else INPUT
        if any(p.requires_grad for p in self.params[node.name]):
            return TRAIN
        return next((k for k in (TRAIN, INPUT) if k in kinds), CONST)

    def boundary(self) -> list[str]:
        """Nodes computed from the image whose values the trainable part or the output uses."""
        return [
            name
            for name, node in self.nodes.items()
            if self.status[name] == INPUT
            and any(u.op == "output" or self.status[u.name] == TRAIN for u in node.users)
        ]

    def unused(self, kind: str) -> list[str]:
        """Nodes of ``kind`` whose values nothing uses: kept, as they may act in place."""
        return [n for n, node in self.nodes.items() if not node.users and self.status[n] == kind]

    def ancestors(self, roots: list[str], *, stop=(), extra: list[str] = ()) -> set[str]:
        """The nodes that ``roots`` and ``extra`` need, themselves included, not past ``stop``."""
        seen: set[str] = set()
        todo = [r for r in [*roots, *extra] if r not in stop]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += [n.name for n in self.nodes[name].all_input_nodes if n.name not in stop]
        return seen

    def subgraph(
        self, keep: set[str], *, inputs: dict[str, str] | None = None, outputs=None
    ) -> fx.GraphModule:
        """The nodes ``keep``, taking as arguments the values ``inputs`` (fingerprint: name)
        and returning ``outputs`` or what the model returns. It shares the model's modules
        and parameters."""
        import torch.fx

        graph = torch.fx.Graph()
        arguments = {p: graph.placeholder(name) for p, name in (inputs or {}).items()}
        env = {}
        for name, node in self.nodes.items():
            if self.prints[name] in arguments:
                env[name] = arguments[self.prints[name]]
            elif name in keep:
                env[name] = graph.node_copy(node, lambda n: env[n.name])
        if outputs is not None:
            graph.output(tuple(env[name] for name in outputs))
        graph.lint()
        return torch.fx.GraphModule(self.gm, graph, type(self.gm).__name__)


def _shrink(graph: _Graph, boundary: list[str]) -> list[str]:
    """Leave to the suffix the parameter-free ops at the cut whose inputs cross it anyway
    (recomputing a pooling or a concatenation costs less than caching its result too), and
    those downstream of a random op (a dropout before a flatten before the classifier)."""
    tails, moved = _random_tails(graph), set()
    while name := next((n for n in boundary if _movable(graph, n, boundary, tails)), None):
        moved.add(name)  # computed in the suffix from here on, so never a boundary again
        inputs = _image_inputs(graph, name) - moved
        boundary = sorted({*boundary, *inputs} - {name}, key=graph.order.get)
    return boundary


def _movable(graph: _Graph, name: str, boundary: list[str], tails: set[str]) -> bool:
    inputs = _image_inputs(graph, name)  # constant inputs are recomputed in the suffix
    if not inputs or graph.params[name]:
        return False
    return name in tails or inputs <= set(boundary)


def _image_inputs(graph: _Graph, name: str) -> set[str]:
    return {n.name for n in graph.nodes[name].all_input_nodes if graph.status[n.name] == INPUT}


def _random_tails(graph: _Graph) -> set[str]:
    """Image-computed nodes reached from a random op through parameter-free ops only."""
    tails: set[str] = set()
    for name, node in graph.nodes.items():
        if graph.status[name] != INPUT or graph.params[name]:
            continue
        module = graph.gm.get_submodule(node.target) if node.op == "call_module" else None
        random = _random_call(node) or bool(module and _random_module(module))
        if random or any(n.name in tails for n in node.all_input_nodes):
            tails.add(name)
    return tails


def _suffix(graph: _Graph, inputs: dict[str, str]) -> fx.GraphModule:
    """From the boundary tensors to what the model returns."""
    bound = {n for n, p in graph.prints.items() if p in inputs}
    output = [n for n, node in graph.nodes.items() if node.op == "output"]
    keep = graph.ancestors(output, stop=bound, extra=graph.unused(TRAIN))
    if any(graph.status[n] == INPUT and graph.nodes[n].op == "placeholder" for n in keep):
        raise NotSplittable("the frozen part runs differently in train and eval mode")
    return graph.subgraph(keep, inputs=inputs)


# ---------------------------------------------------------------- checks


def _check_parameters(model: nn.Module) -> None:
    flags = [p.requires_grad for p in model.parameters()]
    if all(flags):
        raise NotSplittable("nothing is frozen (every parameter trains); freeze a prefix first")
    if not any(flags):
        raise NotSplittable("every parameter is frozen; there is nothing to train")


def _check_not_empty(graph: _Graph, prefix: set[str]) -> None:
    """The prefix must run a frozen layer; a few parameter-free ops are not worth caching."""
    if not any(graph.params[n] for n in prefix):
        trained = [n for n in graph.nodes.values() if graph.status[n.name] == TRAIN]
        layers = [n.target for n in trained if graph.params[n.name]]
        where = f" ('{layers[0]}')" if layers else ""
        raise NotSplittable(
            f"the first layer to see the image trains{where}, so no frozen layer runs before "
            "the trainable ones; freeze through a later point to cache features"
        )


def _check_deterministic(model: nn.Module, graph: _Graph, prefix: set[str]) -> None:
    """No randomness and no batch statistics in the frozen part in training mode."""
    from torch.nn.modules.batchnorm import _BatchNorm

    from zoo.freezing import is_held

    seen = set()
    for name in sorted(prefix, key=graph.order.get):
        node = graph.nodes[name]
        for path, module in _modules_run(model, graph.gm, node):
            why = "is random" if _random_module(module) else None
            if isinstance(module, _BatchNorm) and not is_held(module):
                why = "normalises with batch statistics (it is not held in eval)"
            if why and path not in seen:
                raise NotSplittable(
                    f"'{path}' ({type(module).__name__}) in the frozen part {why} in training "
                    "mode, so its outputs would change every epoch and cannot be cached"
                )
            seen.add(path)
        if _random_call(node):
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


def _random_module(module: nn.Module) -> bool:
    """A dropout-like module that draws random numbers in training mode, unless held in eval."""
    from torch.nn.modules.dropout import _DropoutNd

    from zoo.freezing import is_held

    random = isinstance(module, _DropoutNd) or type(module).__name__ in RANDOM_MODULES
    probability = next((getattr(module, a) for a in PROBABILITY_ARGS if hasattr(module, a)), 1)
    return random and probability != 0 and not is_held(module)


def _random_call(node: fx.Node) -> bool:
    """A call of a random function (dropout, bernoulli_...) not switched off by its arguments."""
    if node.op not in ("call_function", "call_method"):
        return False
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if name not in RANDOM_FUNCTIONS:
        return False
    try:
        arguments = inspect.signature(node.target).bind(*node.args, **node.kwargs).arguments
    except (TypeError, ValueError):  # builtins without a signature, methods given by name
        arguments = node.kwargs
    if arguments.get("training", arguments.get("train", True)) is False:
        return False
    return next((arguments[a] for a in PROBABILITY_ARGS if a in arguments), 1) != 0


def _check_on_example(model: nn.Module, split: Split, example: Tensor) -> list[tuple[int, ...]]:
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
    with torch.no_grad(), _modes_kept(model.modules()):
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


def _parameters(gm: fx.GraphModule, node: fx.Node) -> list:
    """The parameters a node uses itself: a leaf module's, or the one it reads."""
    from torch import nn

    if node.op == "call_module":
        return list(gm.get_submodule(node.target).parameters())
    value = reduce(getattr, node.target.split("."), gm) if node.op == "get_attr" else None
    return [value] if isinstance(value, nn.Parameter) else []


@contextmanager
def _modes_kept(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Put every module back in the train/eval mode it was in."""
    modes = [(m, m.training) for m in modules]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
