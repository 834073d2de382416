"""``zoo transfer``: move a checkpoint's tensors into a backbone and write the result, with a
record of where it came from."""

from __future__ import annotations

import os
from pathlib import Path

from zoo.errors import TransferError
from zoo.transfer import FLAGS, TransferReport, read_key_map, transfer

# A transfer that loads less than this writes nothing, unless min_coverage says otherwise: a
# file that loaded (almost) nothing would fine-tune from random weights without a word.
COVERAGE_FLOOR = 0.5


def transfer_checkpoint(
    source: str | os.PathLike,
    into: str,
    *,
    num_classes: int | None = None,
    output: str | os.PathLike | None = None,
    prefix: str | None = None,
    key_map: list[tuple[str, str]] | None = None,
    map_file: str | os.PathLike | None = None,
    match: str = "names",
    strict: bool = False,
    min_coverage: float | None = None,
) -> TransferReport:
    """Load what fits of ``source`` into a fresh ``into`` model; optionally save the result.

    ``source`` is a weights file or a zoo run directory (its ``best.pt``).

    ``map_file``'s rules come before ``key_map``'s. Below ``min_coverage`` (default 50 %;
    0 accepts anything) nothing is written. ``strict`` allows the head that ``num_classes``
    re-initialises. The output (``.safetensors``, else a torch file) loads strictly into
    ``zoo.create(into, num_classes=num_classes, weights=None)`` and records its provenance
    (``zoo.checkpoints.read_provenance``). Errors name the options as ``zoo transfer``'s flags.

    >>> report = transfer_checkpoint("old.pth", "resnet50", num_classes=9, output="r50-9.pt")
    """
    from zoo.heads import head_modules
    from zoo.models._create import create

    source = _weights_file(source)
    model = create(into, num_classes=num_classes, weights=None)
    rules = [*(read_key_map(map_file) if map_file else []), *(key_map or [])]
    report = transfer(
        model,
        source,
        prefix=prefix,
        key_map=rules,
        match=match,
        new_heads=head_modules(model.zoo_spec.heads) if num_classes is not None else (),
        strict=strict,
        min_coverage=COVERAGE_FLOOR if min_coverage is None else min_coverage,
        option_names=FLAGS,
    )
    if output:
        record = _provenance(source, model, report, prefix=prefix, rules=rules, match=match)
        _write(model.state_dict(), record, output)
    return report


def _weights_file(source: str | os.PathLike) -> str | os.PathLike:
    """``source``, or a run directory's ``best.pt``."""
    if not Path(source).is_dir():
        return source
    best = Path(source) / "best.pt"
    if not best.is_file():
        raise TransferError(
            f"{source} is a folder without best.pt; pass a weights file or a zoo run directory"
        )
    return best


def _provenance(source, model, report: TransferReport, **how) -> dict:
    from zoo.files import sha256

    return {
        "source": str(Path(source).expanduser().resolve()),
        "sha256": sha256(source),
        "into": model.zoo_spec.id,
        "num_classes": model.zoo_spec.num_classes,
        "coverage": report.coverage,
        "loaded": len(report.loaded),
        "tensors": report.total,
        "match": how["match"],
        "prefix": how["prefix"],
        "map": [list(rule) for rule in how["rules"]],
    }


def _write(state: dict, record: dict, output: str | os.PathLike) -> None:
    from zoo.checkpoints import PROVENANCE_KEY
    from zoo.files import save_safetensors, save_torch

    if str(output).endswith(".safetensors"):
        save_safetensors(state, output, metadata={PROVENANCE_KEY: record})
    else:
        save_torch({"state_dict": state, PROVENANCE_KEY: record}, output)
