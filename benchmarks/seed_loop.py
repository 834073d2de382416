"""The seeds' transfer-learning recipe, written cleanly: the reference zoo is measured against.

This is the loop people copy from the tutorials (seeds/000, 002, 004): ``ImageFolder`` on
``train`` and ``valid``, resize and normalise (no augmentation), a torchvision ResNet with
``fc`` swapped, early stages frozen with ``requires_grad`` only, SGD(lr 0.001, momentum 0.9)
and StepLR(7, 0.1), a train and a valid phase per epoch, best weights by valid accuracy. The
seeds' bugs are fixed (the scheduler steps after the optimizer; losses are averaged per image)
and nothing else is added, so zoo's accuracy and speed can be compared with it honestly.

    .venv/bin/python benchmarks/seed_loop.py --data ./pets --epochs 3 --image-size 64
    .venv/bin/python benchmarks/seed_loop.py --data ./pets --freeze-until layer3 --json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, models, transforms

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# A ResNet's top-level children in forward order; freezing stops at (and includes) one of them.
STAGES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the generator that shuffles the training set."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def load_data(
    data: str | Path, image_size: int, batch_size: int, generator=None, workers: int = 0
) -> dict[str, DataLoader]:
    """``{"train": ..., "valid": ...}`` loaders over ``data/train`` and ``data/valid`` (or val).

    >>> loaders = load_data("./pets", image_size=224, batch_size=64)
    """
    data = Path(data)
    valid_dir = data / "valid" if (data / "valid").is_dir() else data / "val"
    preprocess = transforms.Compose(
        [
            transforms.Resize((image_size, image_size)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    train_set = datasets.ImageFolder(data / "train", preprocess)
    valid_set = datasets.ImageFolder(valid_dir, preprocess)
    # ImageFolder numbers each folder's classes on its own; a class missing from one side
    # would silently shift every label after it.
    if valid_set.classes != train_set.classes:
        raise ValueError(f"classes differ: train {train_set.classes}, valid {valid_set.classes}")
    return {
        "train": DataLoader(
            train_set, batch_size, shuffle=True, num_workers=workers, generator=generator
        ),
        "valid": DataLoader(valid_set, batch_size, shuffle=False, num_workers=workers),
    }


def build_model(
    arch: str, num_classes: int, weights: str | Path | None = None, freeze_until: str | None = None
) -> nn.Module:
    """A torchvision ResNet-style model with a new ``fc``, optionally frozen up to a stage.

    >>> model = build_model("resnet18", num_classes=2, freeze_until="layer3")
    """
    model = getattr(models, arch)(weights=None)
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    if freeze_until is not None:
        if freeze_until not in STAGES:
            raise ValueError(f"freeze_until must be one of {', '.join(STAGES)}, not {freeze_until}")
        # The seeds' way: requires_grad only, so frozen BatchNorm still updates its statistics.
        for stage in STAGES[: STAGES.index(freeze_until) + 1]:
            for param in getattr(model, stage).parameters():
                param.requires_grad = False
    return model


def run_phase(model, loader, criterion, device, optimizer=None) -> tuple[float, float, float]:
    """One pass over ``loader``; trains when given an optimizer. Returns loss, acc, seconds."""
    training = optimizer is not None
    model.train(training)
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    with torch.set_grad_enabled(training):
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            if training:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            total_loss += loss.item() * inputs.size(0)
            correct += (outputs.argmax(1) == labels).sum().item()
            seen += inputs.size(0)
    return total_loss / seen, correct / seen, time.perf_counter() - start


def train(
    model, loaders, epochs=25, lr=0.001, momentum=0.9, step_size=7, gamma=0.1, device="cpu"
) -> list[dict]:
    """Train and validate each epoch, then load the best weights (by valid accuracy).

    >>> history = train(model, load_data("./pets", 224, 64), epochs=3)
    """
    model.to(device)
    criterion = nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    history, best_acc, best_state = [], -1.0, None
    for epoch in range(1, epochs + 1):
        lr_now = optimizer.param_groups[0]["lr"]
        train_loss, train_acc, train_s = run_phase(
            model, loaders["train"], criterion, device, optimizer
        )
        scheduler.step()  # after the epoch's optimizer steps, not before as the seeds did
        val_loss, val_acc, val_s = run_phase(model, loaders["valid"], criterion, device)
        if val_acc > best_acc:  # strict: the first of equal epochs is kept
            best_acc, best_state = val_acc, copy.deepcopy(model.state_dict())
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": lr_now,
            "seconds": train_s + val_s,
            "train_images_per_s": len(loaders["train"].dataset) / train_s,
        }
        history.append(row)
        print(_epoch_line(row, epochs), flush=True)
    model.load_state_dict(best_state)
    return history


def run(
    data: str | Path,
    arch: str = "resnet18",
    epochs: int = 25,
    batch_size: int = 64,
    lr: float = 0.001,
    momentum: float = 0.9,
    step_size: int = 7,
    gamma: float = 0.1,
    image_size: int = 224,
    seed: int = 0,
    weights: str | Path | None = None,
    freeze_until: str | None = None,
    workers: int = 0,
    num_classes: int | None = None,
    device: str | None = None,
) -> dict:
    """Run the whole recipe on an image folder; return a JSON-ready summary.

    ``device`` None means CUDA when available, else CPU. ``peak_rss_mb`` is the process's
    peak resident memory, so run one recipe per process when comparing it.

    >>> result = run("./pets", epochs=3, image_size=64)
    >>> result["best_val_acc"], result["best_epoch"]
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError("epochs, batch_size and lr must be positive")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    generator = seed_everything(seed)
    loaders = load_data(data, image_size, batch_size, generator, workers)
    num_classes = num_classes or len(loaders["train"].dataset.classes)
    model = build_model(arch, num_classes, weights, freeze_until)
    history = train(model, loaders, epochs, lr, momentum, step_size, gamma, device)
    best = max(history, key=lambda row: row["val_acc"])  # max keeps the first, as train does
    return {
        "arch": arch,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "epochs": history,
        "best_val_acc": best["val_acc"],
        "best_epoch": best["epoch"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    }


def _epoch_line(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs}  "
        f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
        f"valid loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  "
        f"{row['seconds']:.1f}s {row['train_images_per_s']:.1f} img/s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with train/ and valid/ (or val/)")
    parser.add_argument("--arch", default="resnet18", help="a torchvision ResNet-style model")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--step-size", type=int, default=7, help="StepLR: epochs per decay")
    parser.add_argument("--gamma", type=float, default=0.1, help="StepLR: decay factor")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", help="a state_dict file for the arch, loaded before fc")
    parser.add_argument("--freeze-until", choices=STAGES)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--num-classes", type=int, help="default: the classes in train/")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when available)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k != "json"}
    if args.json:
        # Epoch lines go to stderr so stdout is exactly one JSON document.
        with contextlib.redirect_stdout(sys.stderr):
            result = run(**options)
        print(json.dumps(result))
    else:
        result = run(**options)
        print(f"best valid acc {result['best_val_acc']:.4f} at epoch {result['best_epoch']}")


if __name__ == "__main__":
    main()
