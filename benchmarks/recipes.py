"""`make bench-recipes`: zoo's recipes on a real few-shot set, from real ImageNet weights.

torchvision's MobileNetV2 ``IMAGENET1K_V1`` (the real file: ``scripts/fetch_weights.py``, or
the tests' copy in ``~/.cache/zoo-test-weights``) fine-tuned at 64 px on scikit-learn's digits
(1,797 real 8x8 scans of handwritten digits, upscaled): 10 training images per class from the
even positions, every odd-position image (898) for validation. Each recipe runs with seeds 0,
1, 2 for a fixed number of epochs; printed: the mean and spread (population standard
deviation) of the best valid accuracy, and the mean time of a run (on a shared machine, times
are noisy).

    .venv/bin/python benchmarks/recipes.py
    .venv/bin/python benchmarks/recipes.py --epochs 10 --seeds 0 1 2 --json recipes.json
    .venv/bin/python benchmarks/recipes.py --only modern --extra no-mix="--recipe modern --mixup 0"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = "mobilenet_v2-b0353104.pth"
RECIPES = {
    "seeds": "--recipe seeds",
    "adamw-cosine": "--optimizer adamw --lr 0.001 --scheduler cosine",
    "adamw-cosine-16": "--optimizer adamw --lr 0.001 --scheduler cosine --batch-size 16",
    "modern": "--recipe modern",
    "fastai-style": "--freeze-until backbone --unfreeze-after 1 --layer-decay 0.8 "
    "--optimizer adamw --lr 0.002 --scheduler cosine",
}


def make_digits(root: Path, per_class: int = 10, size: int = 32) -> Path:
    """root/train/<digit>/*.png (``per_class`` each, from the even positions) and
    root/valid/<digit>/*.png (every odd position)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    taken: dict[int, int] = {}
    for i, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        if i % 2 == 0 and taken.get(label, 0) >= per_class:
            continue
        part = "valid" if i % 2 else "train"
        taken[label] = taken.get(label, 0) + (part == "train")
        gray = (pixels / 16 * 255).astype(np.uint8)
        image = Image.fromarray(gray).resize((size, size), Image.BILINEAR).convert("RGB")
        path = root / part / str(label) / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    return root


def place_weights(torch_home: Path) -> None:
    """The real MobileNetV2 file in ``torch_home``'s hub cache, where zoo looks for it."""
    dest = torch_home / "hub" / "checkpoints"
    dest.mkdir(parents=True, exist_ok=True)
    if (dest / WEIGHTS).is_file():
        return
    cached = Path(os.environ.get("ZOO_TEST_WEIGHTS") or Path.home() / ".cache/zoo-test-weights")
    if (cached / WEIGHTS).is_file():
        shutil.copyfile(cached / WEIGHTS, dest / WEIGHTS)
        return
    fetch = [sys.executable, str(ROOT / "scripts/fetch_weights.py"), "mobilenet_v2"]
    subprocess.run([*fetch, "--dest", str(dest)], check=True)


def run_one(data: Path, out: Path, args: str, seed: int, epochs: int, env: dict, size: int) -> dict:
    """One ``zoo finetune`` in a child process: its best valid accuracy and wall time."""
    command = [sys.executable, "-m", "zoo", "finetune", "mobilenet_v2.IMAGENET1K_V1"]
    command += ["--data", str(data), "-o", str(out), "--epochs", str(epochs)]
    command += ["--seed", str(seed), "--image-size", str(size)]  # each recipe's batch size
    command += shlex.split(args)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"seed": seed, "best_val_acc": summary["best_val_acc"], "seconds": seconds}


def bench(
    recipes: dict[str, str], seeds: list[int], epochs: int, work: Path, size: int
) -> list[dict]:
    env = {**os.environ, "TORCH_HOME": str(work / "torch"), "ZOO_HOME": str(work / "zoo")}
    env.update(ZOO_OFFLINE="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    place_weights(work / "torch")
    data = make_digits(work / "digits", size=size)
    rows = []
    for name, args in recipes.items():
        runs = [run_one(data, work / f"{name}-{s}", args, s, epochs, env, size) for s in seeds]
        accs = [r["best_val_acc"] for r in runs]
        rows.append({
            "recipe": name, "args": args, "runs": runs,
            "mean": statistics.mean(accs), "spread": statistics.pstdev(accs),
            "seconds": statistics.mean(r["seconds"] for r in runs),
        })  # fmt: skip
        print(_line(rows[-1]), flush=True)
    return rows


def _line(row: dict) -> str:
    each = ", ".join(f"{r['best_val_acc']:.1%}" for r in row["runs"])
    return (
        f"{row['recipe']:<14} {row['mean']:6.1%} ± {row['spread']:4.1%}  "
        f"{row['seconds']:5.0f} s/run  ({each})  {row['args']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=64, help="Digits upscaled to this.")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=sorted(RECIPES),
        help="These recipes only (none: --extra only).",
    )
    parser.add_argument("--extra", nargs="*", default=[], help='NAME="ARGS" to compare too.')
    parser.add_argument("--json", help="Write the rows to this file.")
    args = parser.parse_args(argv)
    recipes = {k: v for k, v in RECIPES.items() if args.only is None or k in args.only}
    recipes.update(dict(item.split("=", 1) for item in args.extra))
    seeds = " ".join(map(str, args.seeds))
    print(f"mobilenet_v2.IMAGENET1K_V1 on digits at {args.image_size} px, 10 images a class, "
          f"{args.epochs} epochs, "
          f"seeds {seeds}: best valid accuracy, mean ± spread")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="zoo-bench-recipes-") as work:
        rows = bench(recipes, args.seeds, args.epochs, Path(work), args.image_size)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
