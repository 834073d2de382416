"""Choosing the device and the numeric precision of a run."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo.errors import TrainingError

if TYPE_CHECKING:
    import torch


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda[:N]`` or ``mps``, checked to exist.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise TrainingError(
            f"--device '{spec}' is not a device; use auto, cpu, cuda[:N] or mps"
        ) from exc
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0 or (device.index or 0) >= count:
            raise TrainingError(
                f"--device {spec} is not available: this machine has {count} "
                "CUDA device(s); use --device auto or cpu"
            )
        return torch.device("cuda", device.index or 0)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainingError("--device mps is not available here; use --device auto or cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise TrainingError(f"--device '{spec}' is not supported; use auto, cpu, cuda[:N] or mps")
    return device


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: autocast dtype (None: fp32) and whether a scaler is needed."""

    name: str  # fp32, bf16 or fp16
    dtype: torch.dtype | None  # autocast dtype
    scaler: bool  # fp16 on CUDA needs gradient scaling


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matrix work is a real speed-up on this CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_precision(spec: str, device: torch.device, model=None) -> Precision:
    """``auto``: bf16 where the hardware does it natively, fp16 + scaler on older GPUs,
    fp32 elsewhere, and fp32 on a CPU for a ``model`` with grouped or depthwise convolutions
    (``slow_in_bf16_on_cpu``); explicit choices are checked against the device."""
    import torch

    if spec == "auto":
        spec = _auto_precision(device, model)
    if spec == "fp32":
        return Precision("fp32", None, False)
    if spec == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    if device.type == "cpu":
        raise TrainingError("--precision fp16 needs a GPU; on the CPU use bf16 or fp32")
    return Precision("fp16", torch.float16, device.type == "cuda")


def _auto_precision(device: torch.device, model) -> str:
    import torch

    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "fp32" if model is not None and slow_in_bf16_on_cpu(model) else "bf16"
    return "fp32"


def slow_in_bf16_on_cpu(model) -> bool:
    """A model with grouped or depthwise convolutions (MobileNets, EfficientNets, ResNeXts,
    ConvNeXts): oneDNN's bf16 kernels for them are slower than fp32 on AVX-512 BF16 CPUs
    (MobileNetV2 at 64 px trained 1.4x slower in bf16 on a 2-core EPYC), and fine-tuning
    real MobileNetV2 weights lost 1.5 points of accuracy there (README, "Precision")."""
    from torch import nn

    return any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules())


def memory_format(model, device: torch.device):
    """``torch.channels_last`` for convolutional models on CUDA and the CPU, else None.

    cuDNN's NHWC kernels use tensor cores under autocast; oneDNN's CPU convolutions are
    native NHWC. Measured for resnet34 training at 112 px, batch 32, 2 cores: an AVX2 EPYC
    ran 15.7-22.3 img/s NCHW and 19.8-23.4 channels_last (about 5% of an epoch end to end);
    an AVX-512 Xeon 31.3 and 29.7 (the same within its noise). MPS is left alone."""
    import torch
    from torch import nn

    if device.type not in ("cuda", "cpu"):
        return None
    if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return None
    return torch.channels_last


def prepare_backends(device: torch.device) -> None:
    """Let cuDNN time its convolution algorithms for each new input shape and keep the
    fastest (``cudnn.benchmark``, as timm's and torchvision's training scripts do): a run's
    shapes repeat every step. Nothing to do elsewhere."""
    import torch

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def use_threads(threads: int | None) -> None:
    """torch's CPU threads: as asked, else no more than the CPUs this process may use (torch
    counts the machine's cores; a container or taskset may allow fewer)."""
    import os

    import torch

    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    chosen = threads or min(torch.get_num_threads(), allowed or torch.get_num_threads())
    if chosen != torch.get_num_threads():
        torch.set_num_threads(chosen)
