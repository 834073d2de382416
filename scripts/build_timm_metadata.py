"""Rebuild zoo/default_plugins/timm_metadata.json, the part of timm's published results that
zoo ships: each pretrained tag's ImageNet-1k top-1 and top-5 at each image size, parameter
counts, and each architecture's GMACs at each benchmarked image size.

The CSV files are timm's own tables, from the ``results/`` folder of
https://github.com/huggingface/pytorch-image-models at commit aa4b585 (2026-08-08):

- ``results-imagenet.csv``: one row per ``arch.tag`` and image size (top1, top5, param_count
  in millions);
- ``benchmark-infer-amp-nchw-pt291-cu130-5090.csv`` and
  ``benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv``: one row per architecture and
  image size (param_count in millions, infer_gmacs). GMACs do not depend on the machine;
  where both tables have a size, the first one's figure is kept.

    python scripts/build_timm_metadata.py /path/to/timm/results
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "zoo" / "default_plugins" / "timm_metadata.json"
RESULTS = "results-imagenet.csv"
BENCHMARKS = (
    "benchmark-infer-amp-nchw-pt291-cu130-5090.csv",
    "benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv",
)
SOURCE = (
    "timm results/ at commit aa4b585 (2026-08-08), "
    "https://github.com/huggingface/pytorch-image-models: " + ", ".join((RESULTS, *BENCHMARKS))
)


def number(text: str) -> float:
    """A table's number; the tables write thousands with commas (``1,014.45``)."""
    return float(text.replace(",", ""))


def read_results(folder: Path) -> dict:
    """``arch.tag`` -> image size -> [top1, top5, params in millions]."""
    out: dict[str, dict[str, list[float]]] = {}
    with open(folder / RESULTS, newline="") as f:
        for row in csv.DictReader(f):
            sizes = out.setdefault(row["model"], {})
            sizes[row["img_size"]] = [
                number(row["top1"]),
                number(row["top5"]),
                number(row["param_count"]),
            ]
    return out


def read_benchmarks(folder: Path) -> dict:
    """arch -> {"params_m": params in millions, "gmacs": image size -> GMACs}."""
    out: dict[str, dict] = {}
    for name in BENCHMARKS:
        with open(folder / name, newline="") as f:
            for row in csv.DictReader(f):
                arch = out.setdefault(row["model"], {"params_m": None, "gmacs": {}})
                if row.get("param_count") and arch["params_m"] is None:
                    arch["params_m"] = number(row["param_count"])
                if row.get("infer_gmacs"):
                    arch["gmacs"].setdefault(row["infer_img_size"], number(row["infer_gmacs"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the folder holding timm's CSV files")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data = {
        "source": SOURCE,
        "results": read_results(args.folder),
        "benchmarks": read_benchmarks(args.folder),
    }
    args.out.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {args.out}: {len(data['results'])} tags, {len(data['benchmarks'])} architectures")


if __name__ == "__main__":
    main()
