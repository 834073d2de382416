"""The plugin manager: built-in plugins first, then every entry point in group ``zoo``.

Set ``ZOO_NO_PLUGINS=1`` to load only the built-ins (entry points are then skipped);
``ZOO_NO_PLUGINS=0`` (or empty) leaves them on, as ``zoo.env.flag`` reads every flag.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

import pluggy

from zoo import hookspecs
from zoo.env import flag
from zoo.errors import PluginError, one_line

log = logging.getLogger("zoo")

DEFAULT_PLUGINS = (
    ("torchvision", "zoo.default_plugins.torchvision"),
    ("timm", "zoo.default_plugins.timm"),
)
ENTRY_POINT_GROUP = "zoo"

pm = pluggy.PluginManager("zoo")
pm.add_hookspecs(hookspecs)


@dataclass
class PluginInfo:
    """What ``zoo plugins`` shows about one plugin."""

    name: str  # the source name its backbones are listed under
    distribution: str | None = None  # the installed distribution it came from
    version: str | None = None  # that distribution's version
    builtin: bool = False  # shipped inside zoo
    error: str | None = None  # why it was kept out; None when it loaded

    @property
    def status(self) -> str:
        return "ok" if self.error is None else self.error


_infos: dict[str, PluginInfo] = {}
_loaded = False


def load_plugins() -> None:
    """Register the built-in plugins and the installed entry points, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name, module_name in DEFAULT_PLUGINS:
        register(importlib.import_module(module_name), name, builtin=True)
    if flag("ZOO_NO_PLUGINS"):
        return
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        _load_entry_point(ep)


def _load_entry_point(ep) -> None:
    dist = getattr(ep, "dist", None)
    info = PluginInfo(ep.name, dist.name if dist else None, dist.version if dist else None)
    if ep.name in _infos:
        return fail(info, f"the name '{ep.name}' is already taken by another plugin")
    try:
        module = ep.load()
    except Exception as exc:  # a broken plugin must not break zoo
        return fail(info, f"failed to import: {type(exc).__name__}: {exc}")
    try:
        register(module, ep.name, info=info)
    except PluginError as exc:
        fail(info, str(exc))


def register(
    plugin: object, name: str, *, builtin: bool = False, info: PluginInfo | None = None
) -> None:
    """Register a plugin object (usually a module) under a source name.

    Raises PluginError for a hook implementation that no spec knows (a misspelt hook).

    >>> import zoo.plugins, my_plugin
    >>> zoo.plugins.register(my_plugin, "mine")
    """
    load_plugins()
    if pm.get_plugin(name) is not None:
        raise PluginError(f"a plugin named '{name}' is already registered")
    pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(name=name)
        raise PluginError(f"plugin '{name}': {exc}; the hook is 'register_backbones'") from exc
    if info is None:
        from zoo import __version__

        info = PluginInfo(
            name, "zoo" if builtin else None, __version__ if builtin else None, builtin=builtin
        )
    _infos[name] = info
    _bump()


def unregister(name: str) -> None:
    """Remove a plugin registered under ``name`` (its backbones disappear)."""
    pm.unregister(name=name)
    _infos.pop(name, None)
    _bump()


def fail(info: PluginInfo, message: str) -> None:
    """Record why a plugin was kept out, and say so on stderr, in one line."""
    info.error = one_line(message)
    _infos[info.name] = info
    log.warning("plugin '%s' was skipped: %s", info.name, info.error)


def plugin_infos() -> list[PluginInfo]:
    """Every plugin zoo knows, loaded or kept out, built-ins first."""
    load_plugins()
    return list(_infos.values())


def plugin_info(name: str) -> PluginInfo | None:
    load_plugins()
    return _infos.get(name)


def hook_functions() -> list[tuple[str, object]]:
    """(source name, register_backbones function) for each loaded plugin, in load order."""
    load_plugins()
    order = list(_infos)
    impls = pm.hook.register_backbones.get_hookimpls()
    impls = sorted(impls, key=lambda impl: order.index(impl.plugin_name))
    return [(impl.plugin_name, impl.function) for impl in impls]


def reload_plugins() -> None:
    """Forget every plugin and load them again (after installing one in this process)."""
    global _loaded
    for name in list(_infos):
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
    _infos.clear()
    _loaded = False
    _bump()
    load_plugins()


generation = 0  # bumped on every change, so the registry knows to rebuild


def _bump() -> None:
    global generation
    generation += 1
