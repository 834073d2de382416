"""The hook markers and the hook specifications a zoo plugin implements."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def register_backbones(register: Callable[..., None]) -> None:
    """Register backbones by calling ``register(name, factory, **fields)`` once per backbone.

    ``factory()`` takes no arguments and returns an ``nn.Module``. Optional fields: ``head``
    (dotted path of the classifier), ``stages`` (ordered freeze points), ``weights`` (mapping
    tag -> file path or URL, the first is the default), ``input_size``, ``mean``, ``std``,
    ``description``.
    """
