"""The traced graph a split is cut from: each node's kind (from the image, constant, training),
where the cut goes, and which operations draw random numbers."""

from __future__ import annotations

import hashlib
import inspect
from contextlib import contextmanager
from functools import reduce
from typing import TYPE_CHECKING

from zoo.errors import NotSplittable

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from torch import fx, nn

INPUT, CONST, TRAIN = "input", "const", "train"  # a node's value: from the image, fixed, trains
# Modules and functions that draw random numbers in training mode (by class or function
# name, so that no model library need be imported to recognise its own).
RANDOM_MODULES = {"DropPath", "DropBlock2d", "StochasticDepth", "RReLU"}
RANDOM_FUNCTIONS = {
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "stochastic_depth", "drop_path", "drop_block_2d", "drop_block_fast_2d", "rrelu",
    "bernoulli", "bernoulli_", "rand", "randn", "rand_like", "randn_like", "randint",
    "randint_like", "randperm", "normal", "normal_", "uniform_", "multinomial", "poisson",
    "exponential_", "geometric_", "cauchy_", "log_normal_", "random_",
}  # fmt: skip
PROBABILITY_ARGS = ("p", "drop_prob", "drop_rate")


class Graph:
    """A traced model, each node's kind (from the image, constant, training) worked out once."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm, self.nodes = gm, {node.name: node for node in gm.graph.nodes}
        self.order = {name: i for i, name in enumerate(self.nodes)}
        self.status: dict[str, str] = {}
        self.prints: dict[str, str] = {}  # what a node computes, whatever its name
        self.params = {node.name: parameters_of(gm, node) for node in gm.graph.nodes}
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


def shrink(graph: Graph, boundary: list[str]) -> list[str]:
    """Leave to the suffix the parameter-free ops at the cut whose inputs cross it anyway
    (recomputing a pooling or a concatenation costs less than caching its result too), and
    those downstream of a random op (a dropout before a flatten before the classifier)."""
    tails, moved = _random_tails(graph), set()
    while name := next((n for n in boundary if _movable(graph, n, boundary, tails)), None):
        moved.add(name)  # computed in the suffix from here on, so never a boundary again
        inputs = _image_inputs(graph, name) - moved
        boundary = sorted({*boundary, *inputs} - {name}, key=graph.order.get)
    return boundary


def _movable(graph: Graph, name: str, boundary: list[str], tails: set[str]) -> bool:
    inputs = _image_inputs(graph, name)  # constant inputs are recomputed in the suffix
    if not inputs or graph.params[name]:
        return False
    return name in tails or inputs <= set(boundary)


def _image_inputs(graph: Graph, name: str) -> set[str]:
    return {n.name for n in graph.nodes[name].all_input_nodes if graph.status[n.name] == INPUT}


def _random_tails(graph: Graph) -> set[str]:
    """Image-computed nodes reached from a random op through parameter-free ops only."""
    tails: set[str] = set()
    for name, node in graph.nodes.items():
        if graph.status[name] != INPUT or graph.params[name]:
            continue
        module = graph.gm.get_submodule(node.target) if node.op == "call_module" else None
        random = random_call(node) or bool(module and random_module(module))
        if random or any(n.name in tails for n in node.all_input_nodes):
            tails.add(name)
    return tails


def suffix_graph(graph: Graph, inputs: dict[str, str]) -> fx.GraphModule:
    """From the boundary tensors to what the model returns."""
    bound = {n for n, p in graph.prints.items() if p in inputs}
    output = [n for n, node in graph.nodes.items() if node.op == "output"]
    keep = graph.ancestors(output, stop=bound, extra=graph.unused(TRAIN))
    if any(graph.status[n] == INPUT and graph.nodes[n].op == "placeholder" for n in keep):
        raise NotSplittable("the frozen part runs differently in train and eval mode")
    return graph.subgraph(keep, inputs=inputs)


def random_module(module: nn.Module) -> bool:
    """A dropout-like module that draws random numbers in training mode, unless held in eval."""
    from torch.nn.modules.dropout import _DropoutNd

    from zoo.freezing import is_held

    random = isinstance(module, _DropoutNd) or type(module).__name__ in RANDOM_MODULES
    probability = next((getattr(module, a) for a in PROBABILITY_ARGS if hasattr(module, a)), 1)
    return random and probability != 0 and not is_held(module)


def random_call(node: fx.Node) -> bool:
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


def parameters_of(gm: fx.GraphModule, node: fx.Node) -> list:
    """The parameters a node uses itself: a leaf module's, or the one it reads."""
    from torch import nn

    if node.op == "call_module":
        return list(gm.get_submodule(node.target).parameters())
    value = reduce(getattr, node.target.split("."), gm) if node.op == "get_attr" else None
    return [value] if isinstance(value, nn.Parameter) else []


@contextmanager
def modes_kept(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Put every module back in the train/eval mode it was in."""
    modes = [(m, m.training) for m in modules]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
