"""Choosing the device, precision and memory layout of a run (zoo.compute)."""

import pytest
import torch
from torch import nn

from zoo.compute import (
    cpu_has_native_bf16,
    memory_format,
    prepare_backends,
    resolve_device,
    resolve_precision,
)
from zoo.errors import TrainingError

CPU = torch.device("cpu")


def test_auto_device_without_a_gpu_is_the_cpu():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has an accelerator")
    assert resolve_device("auto") == CPU


@pytest.mark.parametrize("spec", ["cuda:7", "tpu", "not a device"])
def test_a_device_this_machine_lacks_is_one_clear_error(spec):
    if spec.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(TrainingError, match="use"):
        resolve_device(spec)


def test_auto_precision_on_the_cpu_is_bf16_only_with_native_support():
    expected = "bf16" if cpu_has_native_bf16() else "fp32"
    assert resolve_precision("auto", CPU).name == expected
    assert resolve_precision("fp32", CPU).dtype is None
    assert resolve_precision("bf16", CPU).dtype is torch.bfloat16


def test_fp16_on_the_cpu_is_refused():
    with pytest.raises(TrainingError, match="fp16 needs a GPU"):
        resolve_precision("fp16", CPU)


def test_convolutional_models_run_channels_last_and_others_keep_their_layout():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    assert memory_format(conv, CPU) is torch.channels_last
    assert memory_format(mlp, CPU) is None
    assert memory_format(conv, torch.device("mps")) is None


def test_cudnn_times_its_algorithms_only_for_a_cuda_run(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    prepare_backends(CPU)
    assert torch.backends.cudnn.benchmark is False
    prepare_backends(torch.device("cuda", 0))  # sets a flag; no GPU needed
    assert torch.backends.cudnn.benchmark is True
