"""`make bench-gpu`: zoo's training step on synthetic images, in images per second.

Full fine-tuning (every parameter trains) of resnet50 at 224 px, on random images already on
the device, so the figure is the training step alone, not the input pipeline. Measured twice,
the same model, batch and optimizer: as zoo runs it (``--precision auto``: bf16 autocast on GPUs
that have it, fp16 with a gradient scaler on older ones, fp32 on a CPU without native bf16;
``channels_last``), and in plain fp32 NCHW, as the seeds' loop runs. The step is zoo's own
(``zoo.compute.train_epoch``). Prints the device's name with the figures. On a GPU it then
fine-tunes end to end on generated JPEGs (``end_to_end.py``: img/s, the input pipeline's
share, peak memory). Without a GPU (and without ``--device cpu``) it says so and stops.

    python benchmarks/throughput.py
    python benchmarks/throughput.py --arch resnet18 --image-size 64 --batch-size 16 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import end_to_end

# (label, precision spec, channels_last)
SETTINGS = (("zoo", "auto", True), ("fp32 NCHW", "fp32", False))


def measure(
    arch: str,
    *,
    image_size: int,
    batch_size: int,
    steps: int,
    warmup: int,
    device,
    precision: str,
    channels_last: bool,
    num_classes: int = 1000,
    compile: bool = False,
) -> dict:
    """Images per second of ``steps`` training steps after ``warmup`` untimed ones (with
    ``compile``, the model goes through torch.compile: the warm-up steps compile it)."""
    import torch

    import zoo
    from zoo import compute
    from zoo.compute import memory_format, prepare_backends, resolve_precision
    from zoo.training import TrainConfig, build_optimizer

    torch.manual_seed(0)
    prepare_backends(device)
    model = zoo.create(arch, num_classes=num_classes, weights=None)
    layout = memory_format(model, device) if channels_last else None
    model.to(device, memory_format=layout or torch.preserve_format)
    chosen = resolve_precision(precision, device)
    scaler = torch.amp.GradScaler(device.type) if chosen.scaler else None
    optimizer = build_optimizer(model.parameters(), TrainConfig(lr=0.01))
    model = torch.compile(model) if compile else model
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    targets = torch.randint(0, num_classes, (batch_size,), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def run(count: int) -> None:
        compute.train_epoch(
            model,
            [(images, targets)] * count,
            optimizer,
            device=device,
            precision=chosen,
            scaler=scaler,
            epoch=1,
            memory_format=layout,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    run(warmup)
    start = time.perf_counter()
    run(steps)
    seconds = time.perf_counter() - start
    return {
        "precision": chosen.name,
        "layout": "channels_last" if layout is not None else "NCHW",
        "images_per_s": steps * batch_size / seconds,
        "peak_memory_mb": (
            torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        ),
    }


def device_name(device) -> str:
    """The GPU's name, or the CPU's model and usable cores."""
    import os

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = "CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {torch.get_num_threads()} threads of {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="examples:\n" + __doc__.split("\n\n")[-1].rstrip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before them")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N]")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--no-end-to-end", action="store_true", help="skip the fine-tune on generated JPEGs"
    )
    o = parser.parse_args(argv)
    import torch

    from zoo.compute import resolve_device

    if o.device == "auto" and not torch.cuda.is_available():
        print(
            "no CUDA GPU on this machine: make bench-gpu is meant for one and is ready to run "
            "there (`--device cpu` times the step on this CPU instead)"
        )
        return {"device": None}
    device = resolve_device(o.device)
    results = {
        "device": device_name(device),
        "torch": torch.__version__,
        "arch": o.arch,
        "image_size": o.image_size,
        "batch_size": o.batch_size,
        "steps": o.steps,
        "settings": {},
    }
    print(
        f"{o.arch} full fine-tuning at {o.image_size} px, batch {o.batch_size}, "
        f"{o.steps} steps after {o.warmup}; {results['device']}; torch {torch.__version__}"
    )
    print("| setting | precision | layout | img/s | peak GPU MB |\n|---|---|---|---|---|")
    compiled = (("zoo --compile", "auto", True),) if device.type == "cuda" else ()
    for label, precision, channels_last in SETTINGS + compiled:
        r = results["settings"][label] = measure(
            o.arch,
            image_size=o.image_size,
            batch_size=o.batch_size,
            steps=o.steps,
            warmup=o.warmup,
            device=device,
            precision=precision,
            channels_last=channels_last,
            compile=label.endswith("--compile"),
        )
        peak = "-" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:,.0f}"
        print(
            f"| {label} | {r['precision']} | {r['layout']} | {r['images_per_s']:,.1f} | {peak} |",
            flush=True,
        )
    settings = results["settings"]
    results["speedup"] = settings["zoo"]["images_per_s"] / settings["fp32 NCHW"]["images_per_s"]
    print(f"\nzoo / fp32 NCHW: {results['speedup']:.2f}x")
    if device.type == "cuda" and not o.no_end_to_end:
        results["end_to_end"] = end_to_end.main(
            ["--arch", o.arch, "--image-size", str(o.image_size), "--device", str(device)]
            + ["--batch-size", str(o.batch_size)],
            step_images_per_s=settings["zoo"]["images_per_s"],
        )
    if o.json:
        Path(o.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
