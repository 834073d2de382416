"""The backbone registry: every plugin's backbones under ``SOURCE:ARCH`` ids.

Plugins fill it through their ``register_backbones`` hook. Rows of installed plugins are
kept in an on-disk index (``zoo.registry._index``) so listing does not import the big sources every
time; a backbone's code (its factory and the hooks below) is fetched from its plugin only when
a model is built.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from zoo import plugins
from zoo.errors import PluginError, UnknownBackboneError
from zoo.registry import _index as index
from zoo.registry._metadata import check_metadata

log = logging.getLogger("zoo")

BUILTIN_ORDER = tuple(name for name, _ in plugins.DEFAULT_PLUGINS)  # first, in load order


@dataclass
class Backbone:
    """One registered backbone: how to build it and what it was trained with."""

    source: str  # the plugin's name: torchvision, timm, or an entry-point name
    arch: str  # the architecture name inside that source
    factory: Callable | None = None  # builds the nn.Module; None until the plugin is called
    head: str | None = None  # dotted path of the classifier module; None: found by zoo
    stages: list[str] | None = None  # ordered freeze points; None: found by zoo
    weights: dict[str, dict] = field(default_factory=dict)  # tag -> spec; the first is default
    input_size: tuple[int, int, int] | None = None  # (C, H, W) the backbone expects
    mean: tuple[float, ...] | None = None  # normalisation mean, 0..1 scale
    std: tuple[float, ...] | None = None  # normalisation std, 0..1 scale
    interpolation: str | None = None  # resize filter
    crop_pct: float | None = None  # crop size / resize size
    description: str = ""  # one line for zoo info
    # Metadata of the default tag, as the source publishes it; None where it does not.
    params: int | None = None  # parameter count
    gflops: float | None = None  # one forward pass at input_size, a multiply-add counted once
    top1: float | None = None  # ImageNet-1k top-1 accuracy, %
    top5: float | None = None  # ImageNet-1k top-5 accuracy, %
    license: str | None = None  # the weights' license
    # Code, like the factory: never in the index, set once the plugin is called.
    adapt_head: Callable | None = None  # (model, num_classes): resets the heads its own way
    load_filter: Callable | None = None  # (state, model) -> a converted state dict, or None
    fx_leaves: Callable | tuple | None = None  # () -> module types and functions fx keeps whole
    size_kwargs: Callable | None = None  # (image_size) -> factory arguments for that size

    @property
    def id(self) -> str:
        return f"{self.source}:{self.arch}"

    @property
    def tags(self) -> list[str]:
        return list(self.weights)

    @property
    def default_tag(self) -> str | None:
        return next(iter(self.weights), None)

    def to_row(self) -> dict:
        """The JSON-ready fields the index keeps (everything but the code)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in CODE}

    @classmethod
    def from_row(cls, row: dict) -> Backbone:
        known = {f.name for f in fields(cls)}
        row = {k: v for k, v in row.items() if k in known}  # a row an older zoo wrote
        for key in ("input_size", "mean", "std"):
            if row.get(key) is not None:
                row[key] = tuple(row[key])
        return cls(**row)


METADATA_FIELDS = ("params", "gflops", "top1", "top5", "license")
# Fetched from the plugin, never kept in the index.
CODE = ("factory", "adapt_head", "load_filter", "fx_leaves", "size_kwargs")
FIELDS = {
    "head",
    "stages",
    "weights",
    "input_size",
    "mean",
    "std",
    "interpolation",
    "crop_pct",
    "description",
    *METADATA_FIELDS,
    "adapt_head",
    "load_filter",
    "fx_leaves",
    "size_kwargs",
}


def _normalise_weights(weights) -> dict[str, dict]:
    """A plugin's weights mapping (tag -> path, URL or spec dict) as tag -> spec dict."""
    out = {}
    for tag, spec in (weights or {}).items():
        if isinstance(spec, str):
            key = "url" if "://" in spec else "path"
            spec = {key: spec}
        out[str(tag)] = dict(spec)
    return out


def collect(source: str, hook: Callable) -> dict[str, Backbone]:
    """Call one plugin's hook and return its backbones by arch name."""
    found: dict[str, Backbone] = {}

    def register(name: str, factory: Callable, **extra) -> None:
        _check_fields(name, factory, extra)
        if name in found:
            raise PluginError(f"duplicate backbone id '{source}:{name}'")
        extra["weights"] = _normalise_weights(extra.get("weights"))
        for key in ("input_size", "mean", "std"):
            if extra.get(key) is not None:
                extra[key] = tuple(extra[key])
        found[name] = Backbone(source=source, arch=name, factory=factory, **extra)

    hook(register=register)
    return found


def _check_fields(name: str, factory: Callable, extra: dict) -> None:
    unknown = set(extra) - FIELDS
    if unknown:
        raise PluginError(
            f"register('{name}'): unknown field(s) {sorted(unknown)}; known: {sorted(FIELDS)}"
        )
    if not callable(factory):
        raise PluginError(f"register('{name}'): factory must be callable")
    check_metadata(name, extra)
    for key in ("adapt_head", "load_filter", "size_kwargs"):
        if extra.get(key) is not None and not callable(extra[key]):
            raise PluginError(f"register('{name}'): {key} must be callable")
    leaves = extra.get("fx_leaves")
    if not (leaves is None or callable(leaves) or isinstance(leaves, tuple | list)):
        raise PluginError(f"register('{name}'): fx_leaves must be callable or a tuple")


class Registry:
    """Every backbone of every loaded plugin, with name resolution and listing."""

    def __init__(self) -> None:
        self.by_source: dict[str, dict[str, Backbone]] = {}
        self._build()

    def _build(self) -> None:
        cache = index.load()
        for source, hook in plugins.hook_functions():
            key = index.plugin_key(source)
            rows = cache.rows(source, key) if key else None
            if rows is not None:
                self.by_source[source] = {r["arch"]: Backbone.from_row(r) for r in rows}
                continue
            found = self._call(source, hook)
            if found is not None:
                self.by_source[source] = found
                if key:
                    cache.put(source, key, [b.to_row() for b in found.values()])
        cache.save()

    def _call(self, source: str, hook: Callable) -> dict[str, Backbone] | None:
        try:
            return collect(source, hook)
        except Exception as exc:  # a plugin that raises must not break the others
            info = plugins.plugin_info(source) or plugins.PluginInfo(source)
            plugins.fail(info, f"register_backbones raised {type(exc).__name__}: {exc}")
            return None

    def sources(self) -> list[str]:
        """Source names in precedence order: torchvision, timm, then plugins by name."""
        builtin = [s for s in BUILTIN_ORDER if s in self.by_source]
        return builtin + sorted(s for s in self.by_source if s not in BUILTIN_ORDER)

    def all(self) -> list[Backbone]:
        return [b for s in self.sources() for b in self.by_source[s].values()]

    def candidates(self, arch: str) -> list[Backbone]:
        """Every backbone named ``arch``, in precedence order."""
        return [self.by_source[s][arch] for s in self.sources() if arch in self.by_source[s]]

    def get(self, name: str) -> tuple[Backbone, str | None]:
        """Resolve ``[SOURCE:]ARCH[.TAG]`` to a backbone and the tag (None if not given)."""
        source, arch, tag = split_name(name)
        if source is not None and source not in self.by_source:
            raise UnknownBackboneError(
                f"unknown source '{source}' in '{name}'; sources: {', '.join(self.sources())}"
            )
        pool = [self.by_source[source]] if source else [self.by_source[s] for s in self.sources()]
        for backbones in pool:
            if arch in backbones:
                return backbones[arch], tag
            if tag is not None and f"{arch}.{tag}" in backbones:  # an arch with a dot in it
                return backbones[f"{arch}.{tag}"], None
        raise UnknownBackboneError(self._unknown_message(name, arch, pool))

    def _unknown_message(self, name: str, arch: str, pool) -> str:
        names = sorted({a for backbones in pool for a in backbones})
        close = difflib.get_close_matches(arch, names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "see `zoo list`"
        return f"unknown backbone '{name}'; {hint}"

    def load_factory(self, backbone: Backbone) -> Backbone:
        """The backbone with its factory (and its other code fields), calling its plugin's
        hook if the index served it; a hook that fails now is a PluginError."""
        if backbone.factory is not None:
            return backbone
        hook = dict(plugins.hook_functions()).get(backbone.source)
        if hook is None:
            raise PluginError(
                f"plugin '{backbone.source}' is no longer loaded; see `zoo plugins`, then run "
                "`zoo list --refresh`"
            )
        try:
            found = collect(backbone.source, hook)
        except Exception as exc:  # as in _call: a plugin's bug is one line, not a traceback
            raise PluginError(
                f"plugin '{backbone.source}' failed building {backbone.id}: register_backbones "
                f"raised {type(exc).__name__}: {_first_line(exc)}; fix or remove the plugin"
            ) from exc
        self.by_source[backbone.source] = {
            arch: found.get(arch, row) for arch, row in self.by_source[backbone.source].items()
        }
        if backbone.arch not in found:
            raise PluginError(
                f"plugin '{backbone.source}' no longer registers "
                f"'{backbone.arch}'; run `zoo list --refresh`"
            )
        return found[backbone.arch]

    def list(
        self, patterns=(), source: str | None = None, pretrained: bool = False
    ) -> list[Backbone]:
        """Backbones matching any fnmatch pattern (all if none), optionally by source (one
        that no installed package provides is an UnknownBackboneError listing the sources)."""
        if source and source not in self.by_source:
            raise UnknownBackboneError(
                f"unknown source '{source}'; sources: {', '.join(self.sources())}"
            )
        out = []
        for b in self.all():
            if source and b.source != source:
                continue
            if pretrained and not b.weights:
                continue
            if patterns and not any(_matches(p, b) for p in patterns):
                continue
            out.append(b)
        return out


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _matches(pattern: str, b: Backbone) -> bool:
    target = b.id if ":" in pattern else b.arch
    return fnmatch.fnmatchcase(target, pattern)


def split_name(name: str) -> tuple[str | None, str, str | None]:
    """``'timm:resnet34.a1_in1k'`` -> ``('timm', 'resnet34', 'a1_in1k')``."""
    source, _, rest = name.rpartition(":") if ":" in name else (None, "", name)
    arch, dot, tag = rest.partition(".")
    return (source or None), arch, (tag if dot else None)


_registry: Registry | None = None
_generation = -1


def get_registry() -> Registry:
    """The process-wide registry, rebuilt when plugins are registered or removed."""
    global _registry, _generation
    plugins.load_plugins()
    if _registry is None or _generation != plugins.generation:
        _registry = Registry()
        _generation = plugins.generation
    return _registry
