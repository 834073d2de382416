"""Building a model for another image size: its plugin's factory arguments for that size, and
a shape check on the meta device that refuses a size the model cannot take (inception_v3's
auxiliary head below 299 px, alexnet below 63) with the smallest size that works.

The check costs no memory and no weights: the model is built on PyTorch's ``meta`` device
and runs one train-mode forward there, where every layer checks shapes as
it would on real tensors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.errors import ImageSizeError, one_line

if TYPE_CHECKING:
    from zoo.registry import Backbone


def default_size(backbone: Backbone) -> int:
    """The image size the backbone is made for (its ``input_size``), 224 if not given."""
    return int(backbone.input_size[-1]) if backbone.input_size else 224


def size_kwargs(backbone: Backbone, image_size: int | None) -> dict:
    """The factory arguments that build ``backbone`` for ``image_size`` px (none for a family
    that runs at any size)."""
    if not image_size or backbone.size_kwargs is None:
        return {}
    return dict(backbone.size_kwargs(image_size))


def check_image_size(backbone: Backbone, image_size: int, kwargs: dict | None = None) -> None:
    """Raise ImageSizeError when ``backbone`` (built with ``kwargs`` and the arguments for the
    size) cannot run on ``image_size`` px images, naming the smallest size that works.

    A model whose own size fails on the meta device too is not judged (an operation the meta
    device lacks is no reason to refuse).

    >>> check_image_size(registry.get("inception_v3")[0], 64)
    ImageSizeError: torchvision:inception_v3 cannot take 64 px images ...
    """
    default = default_size(backbone)
    if image_size == default:
        return
    error = _failure(backbone, image_size, kwargs)
    if error is None or _failure(backbone, default, kwargs) is not None:
        return
    if image_size > default:
        works = f"{default} px works"
    else:
        works = f"the smallest size that works is {_smallest(backbone, image_size, kwargs)} px"
    raise ImageSizeError(
        f"{backbone.id} cannot take {image_size} px images; {works}: pass it to "
        f"--image-size, or leave that out for the backbone's own size ({error})"
    )


def _smallest(backbone: Backbone, failing: int, kwargs: dict | None) -> int:
    """The smallest size above ``failing`` that runs, by bisection up to the backbone's own
    size (sizes above the smallest that works run too, for every family zoo knows)."""
    working = default_size(backbone)
    while working - failing > 1:
        middle = (failing + working) // 2
        if _failure(backbone, middle, kwargs) is None:
            working = middle
        else:
            failing = middle
    return working


_FAILURES: dict[tuple[str, str, int], str | None] = {}  # probes already run in this process


def _failure(backbone: Backbone, size: int, kwargs: dict | None) -> str | None:
    """Why ``backbone`` built for ``size`` px fails a train-mode forward, or None (train mode
    runs every branch: inception's auxiliary head too; eval mode runs a part of it)."""
    key = (backbone.id, repr(sorted((kwargs or {}).items())), size)
    if key not in _FAILURES:
        _FAILURES[key] = _probe(backbone, size, kwargs)
    return _FAILURES[key]


def _probe(backbone: Backbone, size: int, kwargs: dict | None) -> str | None:
    import torch

    try:
        with torch.device("meta"):
            model = backbone.factory(**{**(kwargs or {}), **size_kwargs(backbone, size)})
            model.train()(torch.empty(2, 3, size, size))
    except Exception as exc:  # noqa: BLE001 - any layer's shape complaint, in its words
        return one_line(str(exc))[:120] or type(exc).__name__
    return None
