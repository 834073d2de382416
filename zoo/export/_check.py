"""The check after every export: the exported model against zoo's PyTorch path, image by
image and on a batch, on the run's validation images (or a folder given)."""

from __future__ import annotations

from pathlib import Path

from zoo.errors import ExportError

TOLERANCE = 1e-4  # the largest probability difference an export may have
BATCH = 8  # images in the batch check


def check_export(trained, path: Path, run_dir: Path, folder: str | Path | None = None) -> dict:
    """Run the images through the exported model at ``path`` and through zoo's deployable
    module; ``max_abs_diff`` (probabilities) and ``top_class_mismatches``, counted over each
    image alone and a batch of several. An ExportError when they differ too much.

    >>> check_export(trained, Path("model.onnx"), Path("runs/demo"))["images"]
    150
    """
    import torch

    from zoo.runs import deployable, open_classifier

    images = _check_images(run_dir, folder)
    reference = deployable(trained)
    exported, _ = open_classifier(path, "cpu")
    diffs, mismatches = [], 0
    with torch.inference_mode():
        for batch in [x[None] for x in images] + [_batch(images)]:
            want, got = reference(batch), exported(batch)
            diffs.append(float((want - got).abs().max()))
            mismatches += int((want.argmax(1) != got.argmax(1)).sum())
    report = {"images": len(images), "max_abs_diff": max(diffs), "top_class_mismatches": mismatches}
    if report["max_abs_diff"] > TOLERANCE or mismatches:
        raise ExportError(
            f"the exported model disagrees with zoo on {len(images)} images: largest probability "
            f"difference {report['max_abs_diff']:.2e} (allowed {TOLERANCE:g}), {mismatches} "
            "different top classes; nothing was written"
        )
    return report


def _check_images(run_dir: Path, folder) -> list:
    from zoo.data import load_rgb, to_uint8, walk_images

    paths = walk_images(folder)[0] if folder else _valid_paths(run_dir)
    if not paths:
        where = folder or f"the validation folder of {run_dir}"
        raise ExportError(f"no images to check the export on in {where}; pass --check DIR")
    return [to_uint8(load_rgb(p)) for p in paths]


def _valid_paths(run_dir: Path) -> list[str]:
    """The run's validation images, as its config.json's data folder and split name them."""
    from zoo.data import embedded_dataset, scan_image_folder
    from zoo.runs import RunDir

    try:
        config = RunDir.open(run_dir).read_config()
    except Exception as exc:
        raise ExportError(
            f"cannot find the run's validation images ({exc}); pass --check DIR"
        ) from None
    options = config["options"]
    data = config["data"] or str(embedded_dataset())
    if not Path(data).is_dir():
        raise ExportError(f"the run's data folder {data} is gone; pass --check DIR")
    split = scan_image_folder(data, val_split=options["val_split"], seed=options["seed"])
    return [path for path, _ in split.valid]


def _batch(images: list):
    """Up to ``BATCH`` images at the first one's size (a batch needs one size)."""
    import torch
    import torch.nn.functional as F

    size = images[0].shape[-2:]
    same = [
        F.interpolate(x[None].float(), size=tuple(size)).round().to(torch.uint8)[0]
        for x in images[:BATCH]
    ]
    return torch.stack(same)
