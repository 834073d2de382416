"""``zoo transfer``: move a checkpoint's tensors into a backbone and write the result."""

from __future__ import annotations


def transfer_checkpoint(
    source: str,
    into: str,
    *,
    num_classes: int | None = None,
    output: str | None = None,
    prefix: str | None = None,
    key_map: list[tuple[str, str]] | None = None,
    strict: bool = False,
    min_coverage: float | None = None,
):
    """Load what fits of ``source`` into a fresh ``into`` model; optionally save the result.

    The output (``.safetensors``, else a torch state dict) loads strictly into
    ``zoo.create(into, num_classes=num_classes, weights=None)``. Its errors name the options
    as ``zoo transfer``'s flags (``--map``, ``--min-coverage``), since that is who calls it.

    >>> report = transfer_checkpoint("old.pth", "resnet50", num_classes=9, output="r50-9.pt")
    """
    from zoo.models._create import create
    from zoo.transfer import FLAGS, transfer

    model = create(into, num_classes=num_classes, weights=None)
    report = transfer(
        model,
        source,
        prefix=prefix,
        key_map=key_map,
        strict=strict,
        min_coverage=min_coverage,
        option_names=FLAGS,
    )
    if output:
        from zoo.files import save_safetensors, save_torch

        state = model.state_dict()
        if str(output).endswith(".safetensors"):
            save_safetensors(state, output)
        else:
            save_torch(state, output)
    return report
