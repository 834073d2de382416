"""Choosing what to export where, writing it to a temporary path, checking it, and only then
putting it in place."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from zoo.errors import ExportError, ExtraMissingError, RunError

FORMATS = ("onnx", "pt2", "hf")
DEFAULT_NAMES = {"onnx": "model.onnx", "pt2": "model.pt2", "hf": "hf"}
OTHER = {"onnx": "pt2", "pt2": "onnx"}


def export(
    run: str | Path,
    format: str,
    out: str | Path | None = None,
    *,
    force: bool = False,
    check: str | Path | None = None,
) -> dict:
    """Export ``run`` (a run directory or its best.pt) to ``out`` (default ``RUN/model.onnx``,
    ``RUN/model.pt2`` or ``RUN/hf``), then check it on the run's validation images (or the
    images under ``check``); a failed check removes the file and raises ExportError.

    >>> zoo.export.export("runs/demo", "onnx")["check"]["max_abs_diff"]
    3.2e-07
    """
    best = _best(Path(run), format)
    out = Path(out) if out else best.parent / DEFAULT_NAMES[format]
    if out.exists() and not force:
        raise ExportError(f"{out} exists; pass --force to replace it, or choose another -o")
    if format == "onnx":
        _need_onnx()
    from zoo.export._check import check_export
    from zoo.runs import load_trained

    trained = load_trained(best, "cpu")
    tmp = out.with_name(f".tmp-{time.time_ns()}-{out.name}")  # keeps the suffix
    start = time.perf_counter()
    try:
        _write(trained, format, tmp)
        seconds = time.perf_counter() - start
        report = check_export(trained, tmp, best.parent, check)
    except BaseException:
        _remove(tmp)
        raise
    _remove(out)
    tmp.rename(out)
    return {
        "format": format,
        "path": str(out),
        "seconds": seconds,
        "bytes": _size(out),
        "check": report,
    }


def _best(run: Path, format: str) -> Path:
    if format not in FORMATS:
        raise ExportError(f"unknown --format '{format}'; choose one of {', '.join(FORMATS)}")
    best = run / "best.pt" if run.is_dir() else run
    if not best.is_file():
        raise RunError(
            f"{run} has no best.pt (the run finished no epoch, or it is not a zoo run); "
            "pass a run directory that `zoo finetune` wrote"
        )
    return best


def _need_onnx() -> None:
    for package in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(package)
        except ImportError:
            raise ExtraMissingError("export", package, "--format onnx") from None


def _write(trained, format: str, path: Path) -> None:
    from zoo.export import _formats

    if format == "hf":
        from zoo.export._hf import write_hf

        return write_hf(trained, path)
    writer = _formats.write_onnx if format == "onnx" else _formats.write_pt2
    try:
        writer(trained, path, metadata(trained))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(
            f"cannot export {trained.model.zoo_spec.id} to {format}: {_first_line(exc)}; "
            f"try --format {OTHER[format]}"
        ) from exc


def metadata(trained) -> dict[str, str]:
    """What an exported file carries: ``class_names`` and ``preprocessing`` (JSON), the
    backbone ``id``, and ``multi_label`` and ``threshold`` (JSON: a multi-label model's
    outputs are each label's sigmoid probability)."""
    return {
        "class_names": json.dumps(trained.classes),
        "preprocessing": json.dumps(trained.preprocessing.to_dict()),
        "id": trained.model.zoo_spec.id,
        "multi_label": json.dumps(trained.multi_label),
        "threshold": json.dumps(trained.threshold),
    }


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
