"""The model card: ``README.md`` in every run (and in an ``hf`` export), written from
``config.json``, ``summary.json`` and the last ``zoo evaluate`` (``evaluation.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from zoo.files import atomic_write_bytes, write_json

RECIPE = (
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "scheduler",
    "freeze_until",
    "augment",
    "image_size",
    "precision",
    "seed",
)


def write_card(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write the model card of ``run_dir`` to ``path`` (default ``RUN/README.md``), atomically.

    >>> write_card("runs/demo")
    PosixPath('runs/demo/README.md')
    """
    run_dir = Path(run_dir)
    path = Path(path) if path else run_dir / "README.md"
    atomic_write_bytes(path, card_text(run_dir).encode())
    return path


def card_text(run_dir: Path) -> str:
    config, summary = _read(run_dir / "config.json"), _read(run_dir / "summary.json")
    evaluation = _read(run_dir / "evaluation.json")
    options, weights = config.get("options", {}), config.get("weights") or {}
    classes = config.get("class_names", [])
    lines = [
        f"# {run_dir.name}: {config.get('id')} fine-tuned on {len(classes)} classes",
        "",
        f"- Backbone: `{config.get('id')}`; weights: {_weights(weights)}",
        f"- Data: `{config.get('data') or options.get('labels')}`; "
        f"{'labels (multi-label)' if options.get('multi_label') else 'classes'}: "
        f"{', '.join(classes)}",
        f"- Preprocessing: `{json.dumps(config.get('preprocessing'))}`",
        "- Recipe: " + ", ".join(f"{k} {options[k]}" for k in RECIPE if k in options),
        "",
        "## Results",
        "",
        f"- Best validation accuracy: {summary.get('best_val_acc', 0):.4f} "
        f"(epoch {summary.get('best_epoch')} of {summary.get('epochs_run')})"
        + (f"; mAP {summary['best_val_map']:.4f}" if "best_val_map" in summary else ""),
        f"- Training time: {summary.get('seconds', 0):.1f} s; "
        f"{summary.get('train_images_per_s', 0):.1f} train images/s",
        f"- Parameters: {summary.get('frozen_params', 0):,} frozen, "
        f"{summary.get('trainable_params', 0):,} trainable",
    ]
    return "\n".join(lines + _evaluation(evaluation) + _usage(run_dir)) + "\n"


def save_evaluation(run_dir: Path, report: dict) -> None:
    """Keep ``zoo evaluate``'s report as the run's last evaluation and redraw the card."""
    write_json(run_dir / "evaluation.json", report)
    if (run_dir / "config.json").is_file():
        write_card(run_dir)


def _evaluation(report: dict) -> list[str]:
    if not report:
        return ["", "Per-class figures: run `zoo evaluate RUN --data DIR` (they appear here)."]
    lines = [
        "",
        f"## Last evaluation: `{report.get('data')}`",
        "",
        f"Accuracy {report['accuracy']:.4f}, loss {report['loss']:.4f}, "
        f"{report['images']} images{' (TTA)' if report.get('tta') else ''}.",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    if "per_label" in report:
        return lines[:-2] + _label_table(report)
    for name, m in report["per_class"].items():
        lines.append(
            f"| {name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} "
            f"| {m['support']} |"
        )
    for name in ("macro", "weighted"):
        m = report[name]
        lines.append(f"| *{name}* | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | |")
    return lines


def _label_table(report: dict) -> list[str]:
    """A multi-label evaluation's per-label figures, at its threshold."""
    lines = [
        f"mAP {report['map']:.4f}, F1 micro {report['f1_micro']:.4f}, macro "
        f"{report['f1_macro']:.4f} at threshold {report['threshold']}.",
        "",
        "| label | precision | recall | F1 | AP | support |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in report["per_label"].items():
        cells = [_cell(m[k]) for k in ("precision", "recall", "f1", "ap")]
        lines.append(f"| {name} | {' | '.join(cells)} | {m['support']} |")
    return lines


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _usage(run_dir: Path) -> list[str]:
    return [
        "",
        "## Use",
        "",
        "```",
        f"zoo predict {run_dir} image.jpg",
        f"zoo evaluate {run_dir} --data DIR",
        f"zoo export {run_dir} --format onnx   # or pt2, hf",
        "```",
        "",
        "In Python: `model = zoo.create(ID, weights=RUN)`; `best.pt` loads with "
        "`torch.load(path, weights_only=True)`.",
    ]


def _weights(weights: dict) -> str:
    if not weights:
        return "random initialisation"
    return f"tag `{weights.get('tag')}`, `{weights.get('path')}` (sha256 {weights.get('sha256')})"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def hf_config(meta: dict) -> dict:
    """timm's pretrained-config keys for a run's ``best.pt`` meta."""
    pre = meta["preprocessing"]
    return {
        "architecture": meta["id"].split(":", 1)[1],
        "num_classes": meta["num_classes"],
        "label_names": list(meta["class_names"]),
        "input_size": list(pre["input_size"]),
        "mean": list(pre["mean"]),
        "std": list(pre["std"]),
        "crop_pct": pre["crop_pct"],
        "interpolation": pre["interpolation"],
    }


def read_run_meta(best: Path) -> dict:
    from zoo.checkpoints import read_checkpoint

    return dict(read_checkpoint(best)["meta"])
