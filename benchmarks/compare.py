"""`make bench-compare`: `zoo compare` of five torchvision backbones on the embedded dataset,
against the sum of one plain inference pass per backbone over the same images.

- Weights: mobilenet_v2's real IMAGENET1K_V1 file where scripts/fetch_weights.py's cache holds
  it; for the others (and mobilenet_v2 otherwise) stand-ins, seeded random weights saved at the
  default tag's expected name in a temporary TORCH_HOME: the time does not depend on the values,
  the accuracy does (the leaderboard says which is which). No EfficientNet: torchvision's have
  stochastic depth in their body, which zoo finetune does not cache (it would run 10 passes).
- Compare: ``python -m zoo compare NAMES --json`` in a child process; its wall time, python's
  start and imports included.
- Baseline: another child process that, per backbone, builds the model, loads the file and runs
  it once over every train and valid image (an ImageFolder-style dataset and DataLoader with
  zoo's preprocessing, workers, precision and memory format), under ``inference_mode``; timed
  from the build to the last batch, summed over the backbones (imports not counted). It runs
  before and after the compare, and the ratio takes the mean of the two, so a machine that
  slows down or speeds up during the benchmark moves both sides alike.
- Printed: both times, their ratio (goal: at most 1.5x), and the leaderboard.

    .venv/bin/python benchmarks/compare.py
    .venv/bin/python benchmarks/compare.py --image-size 128 --epochs 10 --json bench-compare.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARCHS = ("mobilenet_v2", "resnet18", "mobilenet_v3_small", "shufflenet_v2_x1_0", "regnet_x_400mf")
REAL = {"mobilenet_v2": "IMAGENET1K_V1"}  # the tag whose real file the test cache may hold


def names() -> list[str]:
    return [f"torchvision:{a}.{REAL[a]}" if a in REAL else f"torchvision:{a}" for a in ARCHS]


def make_weights(torch_home: Path) -> dict[str, str]:
    """Each backbone's file in ``torch_home``: real where the test cache has it, else a stand-in."""
    import shutil

    import torch
    import torchvision

    from zoo.registry import get_registry
    from zoo.weights import check_tag, chosen_tag, expected_path

    os.environ["TORCH_HOME"] = str(torch_home)
    cache = Path(os.environ.get("ZOO_TEST_WEIGHTS") or Path.home() / ".cache" / "zoo-test-weights")
    kinds = {}
    for name in names():
        backbone, tag = get_registry().get(name)
        path = expected_path(check_tag(backbone, chosen_tag(backbone, tag)))
        path.parent.mkdir(parents=True, exist_ok=True)
        if (cache / path.name).is_file():
            shutil.copyfile(cache / path.name, path)
            kinds[backbone.id] = "real ImageNet weights"
        else:
            torch.manual_seed(0)
            torch.save(torchvision.models.get_model(backbone.arch).state_dict(), path)
            kinds[backbone.id] = "stand-in (random)"
    return kinds


def run_compare(o: argparse.Namespace, out: Path) -> tuple[float, list[dict]]:
    args = [sys.executable, "-m", "zoo", "compare", *names(), "--epochs", str(o.epochs)]
    args += ["--image-size", str(o.image_size)] if o.image_size else []
    start = time.perf_counter()
    done = subprocess.run([*args, "-o", str(out), "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"zoo compare failed:\n{done.stderr}")
    return seconds, json.loads(done.stdout)


def run_baseline(o: argparse.Namespace) -> dict[str, float]:
    args = [sys.executable, __file__, "--baseline"]
    args += ["--image-size", str(o.image_size)] if o.image_size else []
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the baseline failed:\n{done.stderr}")
    return json.loads(done.stdout)


def inference_pass(name: str, image_size: int | None) -> float:
    """Seconds to build ``name``, load its file and run it once over every image."""
    import torch

    from zoo.compute import autocast, memory_format, resolve_device, resolve_precision
    from zoo.data import build_transform, default_workers, embedded_dataset, scan_image_folder
    from zoo.models import create

    split = scan_image_folder(embedded_dataset())
    device = resolve_device("auto")
    start = time.perf_counter()
    model = create(name).eval()
    precision = resolve_precision("auto", device, model)  # as zoo resolves it for this model
    pre = model.zoo_spec.preprocessing
    pre = pre.with_image_size(image_size) if image_size else pre
    fmt = memory_format(model, device)
    model.to(device, memory_format=fmt or torch.preserve_format)
    images = torch.utils.data.DataLoader(
        _Files([p for p, _ in split.train + split.valid], build_transform(pre, train=False)),
        batch_size=64,
        num_workers=default_workers(),
    )
    with torch.inference_mode(), autocast(device, precision):
        for batch in images:
            batch = batch.to(device, memory_format=fmt) if fmt else batch.to(device)
            model(batch)
    return time.perf_counter() - start


class _Files:
    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, help="default: each backbone's own")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    o = parser.parse_args(argv)
    if o.baseline:
        print(json.dumps({n: inference_pass(n, o.image_size) for n in names()}))
        return
    with tempfile.TemporaryDirectory(prefix="zoo-bench-compare-") as tmp:
        kinds = make_weights(Path(tmp) / "torch")
        from zoo.data import embedded_dataset

        embedded_dataset()  # drawn once, before either side is timed
        before = run_baseline(o)
        seconds, rows = run_compare(o, Path(tmp) / "out")
        after = run_baseline(o)
    baseline = {name: (before[name] + after[name]) / 2 for name in before}
    report(o, seconds, rows, baseline, kinds, (sum(before.values()), sum(after.values())))


def report(o, seconds, rows: list[dict], baseline: dict, kinds: dict, sums: tuple) -> None:
    total = sum(baseline.values())
    size = f"{o.image_size} px" if o.image_size else "each backbone's own size"
    print(f"zoo compare, 5 backbones, {o.epochs} epochs, {size}: {seconds:.1f}s wall")
    print(f"one inference pass per backbone, summed: {total:.1f}s (mean of {sums[0]:.1f}s "
          f"before the compare and {sums[1]:.1f}s after)")  # fmt: skip
    print(f"ratio compare / inference: {seconds / total:.2f}x\n")
    print(f"{'id':<32} {'val_acc':>7} {'img/s':>7} {'seconds':>7} {'pass s':>7}  weights")
    for r in rows:
        name = f"{r['id']}.{r['tag']}"
        print(
            f"{r['id']:<32} {r['val_acc']:>7.2%} {r['images_per_s']:>7.0f} {r['seconds']:>7.1f} "
            f"{baseline[name if name in baseline else r['id']]:>7.1f}  {kinds[r['id']]}"
        )
    if o.json:
        figures = {"wall_s": seconds, "baseline_s": baseline, "ratio": seconds / total,
                   "baseline_sums_s": {"before": sums[0], "after": sums[1]}}  # fmt: skip
        o.json.write_text(json.dumps({**figures, "leaderboard": rows}, indent=2))


if __name__ == "__main__":
    main()
