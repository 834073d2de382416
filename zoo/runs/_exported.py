"""Reading a model ``zoo export`` wrote (``.onnx``, ``.pt2``) back, for ``zoo predict``: each
is a function from uint8 images ``(N, 3, H, W)`` to probabilities, with its class names."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import ExportError, ExtraMissingError

EXPORTED_SUFFIXES = (".onnx", ".pt2")


@dataclass
class Exported:
    """An exported model, ready to run."""

    run: Callable  # uint8 tensor (N, 3, H, W) -> float tensor (N, classes) on the CPU
    classes: list[str]
    preprocessing: dict
    path: Path
    multi_label: bool = False  # outputs are each label's probability (sigmoid)
    threshold: float = 0.5  # multi-label: the run's --threshold


def is_exported(path: str | Path) -> bool:
    return Path(path).suffix.lower() in EXPORTED_SUFFIXES and Path(path).is_file()


def load_exported(path: str | Path, device: str = "auto") -> Exported:
    """An ``.onnx`` file (onnxruntime: the CUDA provider when present, else the CPU) or a
    ``.pt2`` file (``torch.export.load``); an ExportError when it cannot be read.

    >>> load_exported("model.onnx").classes
    ['cat', 'dog']
    """
    path = Path(path)
    opener = _open_onnx if path.suffix.lower() == ".onnx" else _open_pt2
    try:
        return opener(path, device)
    except (ExtraMissingError, ExportError):
        raise
    except Exception as exc:  # a damaged file: whatever the reader says, on one line
        raise ExportError(
            f"cannot read {path} as an exported model ({type(exc).__name__}: {exc}); "
            "is it damaged? Export the run again with `zoo export`"
        ) from exc


def _metadata(path: Path, meta: dict) -> tuple[list[str], dict, bool, float]:
    """Class names, preprocessing, multi-label mode and threshold from a file's metadata."""
    if "class_names" not in meta:
        raise ExportError(f"{path} has no class_names in its metadata; was it written by zoo?")
    return (
        json.loads(meta["class_names"]),
        json.loads(meta.get("preprocessing") or "{}"),
        bool(json.loads(meta.get("multi_label") or "false")),
        float(json.loads(meta.get("threshold") or "0.5")),
    )


def _open_onnx(path: Path, device: str) -> Exported:
    import torch

    try:
        import onnxruntime as ort
    except ImportError:
        raise ExtraMissingError("export", "onnxruntime", "running an .onnx file") from None
    available = ort.get_available_providers()
    wanted = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in available:
        wanted.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), providers=wanted)
    found = _metadata(path, session.get_modelmeta().custom_metadata_map)
    name = session.get_inputs()[0].name

    def run(images):
        return torch.from_numpy(session.run(None, {name: images.cpu().numpy()})[0])

    classes, pre, multi_label, threshold = found
    return Exported(run, classes, pre, path, multi_label, threshold)


def _open_pt2(path: Path, device: str) -> Exported:
    import torch

    from zoo.compute import resolve_device

    extra = {"class_names": "", "preprocessing": "", "multi_label": "", "threshold": ""}
    logger = logging.getLogger("torch.export")
    level, logger.level = logger.level, logging.CRITICAL  # its warning repeats our error
    try:
        program = torch.export.load(str(path), extra_files=extra)
    finally:
        logger.setLevel(level)
    classes, pre, multi_label, threshold = _metadata(path, {k: v for k, v in extra.items() if v})
    target = resolve_device(device)
    module = program.module().to(target)

    def run(images):
        with torch.inference_mode():
            return module(images.to(target)).float().cpu()

    return Exported(run, classes, pre, path, multi_label, threshold)
