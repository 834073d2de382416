"""The compute floor of a `make bench` scenario: its epoch trained on tensors already in memory.

The same model (``zoo.create`` with the same weights, classes and freeze point), batch size,
precision (``--precision auto`` resolved as zoo resolves it) and memory format as the zoo run,
trained by the plainest loop there is: no loader, no decoding, no metrics, no host sync
until the end. An epoch is as many training steps as the run's train images make batches,
then as many evaluation batches as its valid images; ``--epochs`` of them run and the
fastest counts. With ``--cached`` only the trainable suffix runs, on stored features (the
frozen prefix's outputs for one batch, in the dtype and layout the prefix makes them), as
zoo's feature cache does from its second epoch on.

    .venv/bin/python benchmarks/floor.py --weights w.pth --train-images 320 --valid-images 160
    .venv/bin/python benchmarks/floor.py --weights w.pth --freeze-until layer3 --cached --json
"""

from __future__ import annotations

import argparse
import json
import math
import time


def build(o: argparse.Namespace):
    """(module to train, its eval twin, inputs, targets, device, precision) as zoo runs it."""
    import torch

    import zoo
    from zoo import compute

    torch.manual_seed(0)
    device = compute.resolve_device(o.device)
    model = zoo.create(
        o.arch, num_classes=o.num_classes, weights=o.weights, freeze_until=o.freeze_until
    )
    precision = compute.resolve_precision(o.precision, device, model)
    fmt = compute.memory_format(model, device)
    model.to(device, memory_format=fmt or torch.preserve_format)
    images = torch.randn(o.batch_size, 3, o.image_size, o.image_size, device=device)
    images = compute.to_device(images, device, fmt)
    targets = torch.randint(0, o.num_classes, (o.batch_size,), device=device)
    if not o.cached:
        return model, model, images, targets, device, precision
    from zoo.training.cache import split_frozen_prefix

    split = split_frozen_prefix(model, example=images[:2])
    with compute.autocast(device, precision):
        features = compute.to_device(split.features(images), device, fmt)
    return split.suffix_train, split.suffix_eval, features, targets, device, precision


def epoch_seconds(o: argparse.Namespace) -> dict:
    """The fastest of ``o.epochs`` floor epochs, and its train and valid parts."""
    import torch
    import torch.nn.functional as F

    from zoo import compute

    train_model, eval_model, inputs, targets, device, precision = build(o)
    trainable = [p for p in train_model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=o.lr, momentum=0.9)
    steps = math.ceil(o.train_images / o.batch_size), math.ceil(o.valid_images / o.batch_size)

    def train() -> None:
        train_model.train()
        for _ in range(steps[0]):
            with compute.autocast(device, precision):
                loss = F.cross_entropy(compute.forward(train_model, inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def valid() -> None:
        eval_model.eval()
        with torch.inference_mode(), compute.autocast(device, precision):
            for _ in range(steps[1]):
                compute.forward(eval_model, inputs)

    times = [(timed(train, device), timed(valid, device)) for _ in range(o.epochs)]
    best = min(times, key=sum)
    return {
        "epoch_s": sum(best),
        "train_s": best[0],
        "valid_s": best[1],
        "epochs_s": [sum(t) for t in times],
        "precision": precision.name,
    }


def timed(work, device) -> float:
    import torch

    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet34")
    parser.add_argument("--weights", default="none")
    parser.add_argument("--num-classes", type=int, default=5)
    parser.add_argument("--freeze-until")
    parser.add_argument("--cached", action="store_true", help="the suffix on stored features")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-images", type=int, default=320)
    parser.add_argument("--valid-images", type=int, default=160)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=2, help="floor epochs; the fastest counts")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    o = parser.parse_args(argv)
    result = epoch_seconds(o)
    if o.json:
        print(json.dumps(result))
    else:
        print(
            f"floor epoch {result['epoch_s']:.2f}s (train {result['train_s']:.2f}s, "
            f"valid {result['valid_s']:.2f}s), {result['precision']}"
        )
    return result


if __name__ == "__main__":
    main()
