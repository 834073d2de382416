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
    ``interpolation``, ``crop_pct``, ``description``, and the default weights' metadata:
    ``params`` (int), ``gflops`` (one image at ``input_size``, a multiply-add counted once),
    ``top1`` and ``top5`` (ImageNet-1k accuracy, %), ``license``. A weights spec given as a
    dict may carry the same keys for its own tag.

    Optional code fields, for families whose models zoo's generic rules do not fit (they are
    not kept in the index; zoo fetches them with the factory when it builds a model):

    - ``adapt_head(model, num_classes)``: give the model ``num_classes`` outputs its own way
      (every head, headless models too); zoo then initialises the heads it finds and adapts,
      as usual, any that still has another size. Raise ``zoo.errors.HeadError`` to refuse.
    - ``load_filter(state, model)``: a state dict converted to fit ``model`` (an original
      checkpoint's layout), or None; tried when a tag or run does not load as it is.
    - ``fx_leaves``: module types and functions ``torch.fx`` must not trace into (the feature
      cache's split), or a no-argument callable returning them.
    - ``size_kwargs(image_size)``: the factory's keyword arguments that build the model for
      square images of ``image_size`` pixels (``{"img_size": 64}`` for a ViT); used when a run
      asks for another size than ``input_size``. A ``load_filter`` then resamples what the
      size changes in pretrained weights (position embeddings).

        register("plainnet", PlainNet, head="classifier", stages=["stem", "block1"])
    """
