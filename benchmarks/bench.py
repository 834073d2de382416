"""`make bench`: zoo finetune against the seeds' hand-written loop, same data, model and batch.

For each scenario both run one after the other, each in a child process of this one, on a
generated image folder, from the same stand-in pretrained weights (``make_weights``):
(a) resnet34 frozen through layer3, (b) full fine-tuning. Printed:
steady-state epoch time (mean of epochs 2..N, train + valid phases), the first epoch's time,
the ratio seed loop / zoo, best validation accuracy, and peak memory of each process; then
each scenario's compute floor (``floor.py``: the same model, batch, precision and memory
format trained on tensors already in memory; for the frozen scenario the trainable suffix on
stored features) and zoo's steady epoch as a ratio of it; last, what one DataLoader worker
decodes and augments per second (``decode.py``). Each
scenario runs ``--repeat`` times, the loops taking turns, with seeds 0, 1, ...: times are each
loop's fastest run (the one other work on the machine disturbed least), accuracy the mean over
the seeds; every run's time and accuracy is printed too.

    .venv/bin/python benchmarks/bench.py
    .venv/bin/python benchmarks/bench.py --epochs 4 --per-class 80 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import decode

HERE = Path(__file__).resolve().parent
CLASSES = ("circle", "cross", "square", "star", "triangle")
HUES = ((230, 60, 60), (60, 200, 60), (60, 90, 230), (230, 200, 40), (170, 60, 220))
# Run a module, then print this process's peak RSS (MB) as the last line on stderr.
PEAK = (
    "import atexit, resource, runpy, sys; "
    "atexit.register(lambda: print('peak_rss_mb=%.0f' % (resource.getrusage("
    "resource.RUSAGE_SELF).ru_maxrss / 1024), file=sys.stderr)); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__') "
    "if sys.argv[0].endswith('.py') else runpy.run_module(sys.argv[0], run_name='__main__', "
    "alter_sys=True)"
)


def make_data(root: Path, per_class: int, size: int) -> Path:
    """A train/valid folder of the embedded dataset's shapes as JPEG files, each class tinted
    with its own hue: no pretrained weights exist offline, and a randomly initialised network
    learns this within a few epochs, so both loops' accuracies mean something."""
    from PIL import Image

    from zoo.data import draw_shape

    for part, count, offset in (("train", per_class, 0), ("valid", per_class // 2, 50_000)):
        for k, c in enumerate(CLASSES):
            (root / part / c).mkdir(parents=True, exist_ok=True)
            tint = Image.new("RGB", (size, size), HUES[k])
            for i in range(count):
                shape = draw_shape(c, seed=(offset + i,), size=size)
                Image.blend(shape, tint, 0.6).save(root / part / c / f"{i}.jpg")
    return root


def make_weights(data: Path, image_size: int, path: Path) -> Path:
    """Stand-in pretrained weights: a seeded random resnet34 whose BatchNorm statistics are
    measured on the training images. Both loops start from this file, as they would from
    ImageNet weights; with the default statistics (mean 0, variance 1) a frozen random
    network's features are meaningless to zoo, which keeps frozen BatchNorm in eval mode."""
    import torch
    from PIL import Image
    from torchvision import models
    from torchvision.transforms import functional as F

    torch.manual_seed(0)
    model = models.resnet34(weights=None)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a cumulative average over every batch
    files = sorted((data / "train").glob("*/*.jpg"))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    model.train()
    with torch.no_grad():
        for i in range(0, len(files), 32):
            images = [Image.open(f).convert("RGB") for f in files[i : i + 32]]
            size = [image_size, image_size]
            batch = torch.stack(
                [F.normalize(F.to_tensor(F.resize(x, size)), mean, std) for x in images]
            )
            model(batch)
    torch.save(model.state_dict(), path)
    return path


def child(args: list[str]) -> tuple[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "ZOO_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    peak = float(done.stderr.strip().splitlines()[-1].split("=")[1])
    return done.stdout, peak


def recipe(data: Path, o: argparse.Namespace, freeze: str | None, seed: int) -> list[str]:
    """The options both loops take, spelt the same: one recipe for both."""
    args = ["--data", str(data), "--weights", str(o.weights), "--epochs", str(o.epochs)]
    args += ["--batch-size", str(o.batch_size), "--image-size", str(o.image_size)]
    args += ["--lr", str(o.lr), "--seed", str(seed)]
    return args + (["--freeze-until", freeze] if freeze else [])


def seed_loop(data: Path, o: argparse.Namespace, freeze: str | None, seed: int) -> dict:
    args = [str(HERE / "seed_loop.py"), "--arch", "resnet34", "--json"]
    out, peak = child(args + recipe(data, o, freeze, seed) + ["--workers", str(o.workers)])
    result = json.loads(out)
    return summarise(result["epochs"], result["best_val_acc"], peak)


def zoo_run(
    data: Path,
    o: argparse.Namespace,
    freeze: str | None,
    seed: int,
    run: Path,
    cache: bool = True,
) -> dict:
    args = ["zoo", "finetune", "resnet34", "--no-augment", "-o", str(run)]
    args += recipe(data, o, freeze, seed)
    args += [] if cache else ["--no-cache-features"]
    _, peak = child(args + o.zoo_args)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = json.loads((run / "summary.json").read_text())["best_val_acc"]
    return summarise(rows, best, peak)


def floor_run(data: Path, o: argparse.Namespace, freeze: str | None) -> dict:
    """The scenario's compute floor (``floor.py``): the whole model for full fine-tuning, the
    trainable suffix on stored features when frozen (what zoo's cached epochs train)."""
    args = [str(HERE / "floor.py"), "--json", "--weights", str(o.weights)]
    args += ["--num-classes", str(len(CLASSES)), "--image-size", str(o.image_size)]
    args += ["--batch-size", str(o.batch_size), "--lr", str(o.lr)]
    args += ["--train-images", str(count_images(data / "train"))]
    args += ["--valid-images", str(count_images(data / "valid"))]
    if "--precision" in o.zoo_args:
        args += ["--precision", o.zoo_args[o.zoo_args.index("--precision") + 1]]
    args += ["--freeze-until", freeze, "--cached"] if freeze else []
    out, peak = child(args)
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mb": peak}


def count_images(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*/*.jpg"))


def fastest(runs: list[dict]) -> dict:
    """One loop's runs of a scenario (seeds 0, 1, ...) as one: the fastest steady and first
    epochs, the mean best accuracy over the seeds, the largest peak memory."""
    return {
        "first_epoch_s": min(r["first_epoch_s"] for r in runs),
        "steady_epoch_s": min(r["steady_epoch_s"] for r in runs),
        "steady_epoch_s_runs": [r["steady_epoch_s"] for r in runs],
        "best_val_acc": sum(r["best_val_acc"] for r in runs) / len(runs),
        "best_val_acc_runs": [r["best_val_acc"] for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def summarise(rows: list[dict], best: float, peak: float) -> dict:
    later = [r["seconds"] for r in rows[1:]] or [rows[0]["seconds"]]
    return {
        "first_epoch_s": rows[0]["seconds"],
        "steady_epoch_s": sum(later) / len(later),
        "best_val_acc": best,
        "peak_rss_mb": peak,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--per-class", type=int, default=64, help="training images per class")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="seed loop's DataLoader workers")
    parser.add_argument("--scenarios", default="frozen,full")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each loop, in turns, with seeds 0..N-1"
    )
    parser.add_argument("--zoo-args", default="", help="extra zoo finetune options")
    parser.add_argument("--json", help="also write the results here")
    o = parser.parse_args(argv)
    o.zoo_args = o.zoo_args.split()
    results = {}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        data = make_data(Path(tmp) / "data", o.per_class, int(o.image_size * 8 / 7))
        o.weights = make_weights(data, o.image_size, Path(tmp) / "resnet34-calibrated.pth")
        for name in o.scenarios.split(","):
            freeze = "layer3" if name == "frozen" else None
            runs: dict[str, list[dict]] = {"seed_loop": [], "zoo": [], "zoo_uncached": []}
            floors = []
            for i in range(o.repeat):
                runs["seed_loop"].append(seed_loop(data, o, freeze, seed=i))
                runs["zoo"].append(zoo_run(data, o, freeze, i, Path(tmp) / f"run-{name}-{i}"))
                if freeze:  # what the caching epoch costs over an epoch that does not cache
                    plain = Path(tmp) / f"run-{name}-plain-{i}"
                    runs["zoo_uncached"].append(zoo_run(data, o, freeze, i, plain, cache=False))
                floors.append(floor_run(data, o, freeze))
            r = results[name] = {k: fastest(v) for k, v in runs.items() if v}
            r["floor"] = min(floors, key=lambda f: f["epoch_s"])
            r["floor"]["epoch_s_runs"] = [f["epoch_s"] for f in floors]
            r["speedup"] = r["seed_loop"]["steady_epoch_s"] / r["zoo"]["steady_epoch_s"]
            r["zoo_over_floor"] = r["zoo"]["steady_epoch_s"] / r["floor"]["epoch_s"]
            if freeze:
                r["caching_epoch_ratio"] = (
                    r["zoo"]["first_epoch_s"] / r["zoo_uncached"]["first_epoch_s"]
                )
            print_row(name, r)
    print_notes(results)
    results["decode"] = json.loads(child([str(HERE / "decode.py"), "--json"])[0])
    print(f"\nDecode and augment, {decode.describe(results['decode'])}")
    if o.json:
        Path(o.json).write_text(json.dumps(results, indent=2))


def print_row(name: str, r: dict) -> None:
    s, z = r["seed_loop"], r["zoo"]
    if not getattr(print_row, "header", False):
        print(
            "| scenario | seed loop epoch (first) | zoo epoch (first) | speed-up | val acc "
            "seed / zoo | peak MB seed / zoo |"
        )
        print("|---|---|---|---|---|---|")
        print_row.header = True
    print(
        f"| {name} | {s['steady_epoch_s']:.1f}s ({s['first_epoch_s']:.1f}s) | "
        f"{z['steady_epoch_s']:.1f}s ({z['first_epoch_s']:.1f}s) | {r['speedup']:.2f}x | "
        f"{s['best_val_acc']:.1%} / {z['best_val_acc']:.1%} | "
        f"{s['peak_rss_mb']:.0f} / {z['peak_rss_mb']:.0f} |",
        flush=True,
    )
    if "zoo_uncached" in r:
        u = r["zoo_uncached"]
        print(
            f"| {name}, zoo --no-cache-features | | {u['steady_epoch_s']:.1f}s "
            f"({u['first_epoch_s']:.1f}s) | {s['steady_epoch_s'] / u['steady_epoch_s']:.2f}x | "
            f"{u['best_val_acc']:.1%} | {u['peak_rss_mb']:.0f} |",
            flush=True,
        )


def print_floors(results: dict) -> None:
    print(
        "\n| scenario | floor epoch (train + valid) | precision | zoo epoch | zoo / floor "
        "| seed loop / floor |\n|---|---|---|---|---|---|"
    )
    for name, r in results.items():
        f, z, s = r["floor"], r["zoo"]["steady_epoch_s"], r["seed_loop"]["steady_epoch_s"]
        what = "suffix on stored features" if name == "frozen" else "whole model"
        print(
            f"| {name} ({what}) | {f['epoch_s']:.2f}s ({f['train_s']:.2f}s + "
            f"{f['valid_s']:.2f}s) | {f['precision']} | {z:.2f}s | {r['zoo_over_floor']:.2f}x "
            f"| {s / f['epoch_s']:.2f}x |"
        )


def print_notes(results: dict) -> None:
    print_floors(results)
    print()
    for name, r in results.items():
        if "caching_epoch_ratio" in r:
            print(
                f"Caching epoch / uncached epoch (first epochs, {name}): "
                f"{r['caching_epoch_ratio']:.2f}x"
            )
        for loop, label in (("seed_loop", "seed loop"), ("zoo", "zoo")):
            times = ", ".join(f"{t:.1f}s" for t in r[loop]["steady_epoch_s_runs"])
            accs = ", ".join(f"{a:.1%}" for a in r[loop]["best_val_acc_runs"])
            print(f"{name}, {label}, seed 0, 1, ...: steady epochs {times}; val acc {accs}")


if __name__ == "__main__":
    main()
