"""`make bench-precision`: bf16 against fp32 when fine-tuning real pretrained weights.

scikit-learn's digits (1,797 images of 8x8 px, 10 classes), written as JPEGs scaled to the
image size and split 80/20 per class (1,438 train, 359 valid), are fine-tuned by `zoo
finetune` in a child process for each backbone, precision and seed: MobileNetV2 from
torchvision's real IMAGENET1K_V1 file (``~/.cache/zoo-test-weights``, ``make weights``) and
resnet34 from the stand-in of `make bench` (``bench.make_weights``) unless ``--resnet34``
names a real file. Printed per backbone and precision: each seed's best validation
accuracy, their mean, the fastest steady epoch (mean of epochs 2..N), and what
``--precision auto`` picks for the backbone on this machine.

    .venv/bin/python benchmarks/precision.py
    .venv/bin/python benchmarks/precision.py --archs mobilenet_v2 --seeds 0 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench import child, make_weights

WEIGHTS = Path.home() / ".cache" / "zoo-test-weights" / "mobilenet_v2-b0353104.pth"


def make_digits(root: Path, size: int) -> Path:
    """scikit-learn's digits as DIR/{train,valid}/<digit>/*.jpg, 80/20 per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    by_class: dict[int, list] = {}
    for image, label in zip(digits.images, digits.target, strict=True):
        by_class.setdefault(int(label), []).append(image)
    for label, images in by_class.items():
        cut = round(len(images) * 0.8)
        for i, pixels in enumerate(images):
            folder = root / ("train" if i < cut else "valid") / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            grey = Image.fromarray((pixels * 255 / 16).astype("uint8"), mode="L")
            grey.resize((size, size), Image.BILINEAR).convert("RGB").save(folder / f"{i}.jpg")
    return root


def run(arch: str, weights, data: Path, o, precision: str, seed: int, out: Path) -> dict:
    args = ["zoo", "finetune", arch, "--data", str(data), "--weights", str(weights)]
    args += ["--epochs", str(o.epochs), "--lr", str(o.lr), "--image-size", str(o.image_size)]
    args += ["--batch-size", str(o.batch_size), "--seed", str(seed), "--no-augment"]
    args += ["--precision", precision, "-o", str(out)]
    child(args)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    later = [r["seconds"] for r in rows[1:]] or [rows[0]["seconds"]]
    config = json.loads((out / "config.json").read_text())
    return {
        "best_val_acc": max(r["val_acc"] for r in rows),
        "steady_epoch_s": sum(later) / len(later),
        "precision": config["options"]["precision"],
    }


def real_weights(arch: str, o) -> Path | str | None:
    """The real file of ``arch``: MobileNetV2 from the tests' cache, else its tag, which zoo
    finds in the torch hub cache (``make weights``); None for the stand-in resnet34."""
    if arch == "mobilenet_v2":
        return WEIGHTS if WEIGHTS.is_file() else "IMAGENET1K_V1"
    return o.resnet34


def auto_choice(arch: str) -> str:
    """What --precision auto resolves to for ``arch`` on this machine's CPU."""
    import zoo
    from zoo.compute import resolve_device, resolve_precision

    model = zoo.create(arch, num_classes=10, weights=None)
    return resolve_precision("auto", resolve_device("cpu"), model).name


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="mobilenet_v2,resnet34")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--resnet34", type=Path, help="a real resnet34 file instead of the stand-in"
    )
    parser.add_argument("--json", help="also write the results here")
    o = parser.parse_args(argv)
    seeds = [int(s) for s in o.seeds.split(",")]
    results: dict = {}
    print("| backbone | precision | val acc per seed | mean | steady epoch | auto picks |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="zoo-precision-") as tmp:
        data = make_digits(Path(tmp) / "digits", o.image_size)
        for arch in o.archs.split(","):
            weights = real_weights(arch, o) or make_weights(
                data, o.image_size, Path(tmp) / f"{arch}.pth"
            )
            results[arch] = {"auto": auto_choice(arch)}
            for precision in ("fp32", "bf16"):
                runs = [
                    run(arch, weights, data, o, precision, s, Path(tmp) / f"{arch}-{precision}-{s}")
                    for s in seeds
                ]
                results[arch][precision] = row = summarise(runs)
                print_row(arch, precision, row, results[arch]["auto"])
    if o.json:
        Path(o.json).write_text(json.dumps(results, indent=2))
    return results


def summarise(runs: list[dict]) -> dict:
    accs = [r["best_val_acc"] for r in runs]
    return {
        "best_val_acc_runs": accs,
        "best_val_acc": sum(accs) / len(accs),
        "steady_epoch_s": min(r["steady_epoch_s"] for r in runs),
    }


def print_row(arch: str, precision: str, row: dict, auto: str) -> None:
    accs = ", ".join(f"{a:.1%}" for a in row["best_val_acc_runs"])
    print(
        f"| {arch} | {precision} | {accs} | {row['best_val_acc']:.1%} | "
        f"{row['steady_epoch_s']:.1f}s | {auto if precision == 'fp32' else ''} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
