"""Running under ``torchrun``: one process per device, DistributedDataParallel, rank 0 writes.

Outside torchrun (no ``WORLD_SIZE`` above 1 in the environment) every function here is a
no-op and the run is a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo.errors import TrainingError

if TYPE_CHECKING:
    import torch


@dataclass
class Dist:
    """This process's place in the job."""

    rank: int = 0  # global rank
    world: int = 1  # number of processes
    local_rank: int = 0  # rank on this node: picks the GPU

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> Dist:
    """The job torchrun describes in the environment (a single process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(dist: Dist, device_spec: str) -> torch.device:
    """Start the process group (gloo on CPU, nccl on CUDA) and pick this rank's device."""
    import torch
    import torch.distributed as td

    from zoo.compute import resolve_device

    device = resolve_device(device_spec)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if dist.local_rank >= count:
            raise TrainingError(
                f"torchrun started more processes per node than the {count} "
                "GPU(s) here; use --nproc-per-node at most that, or --device cpu"
            )
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise TrainingError(f"torchrun on {device.type} is not supported; use cuda or cpu")
    if not td.is_initialized():
        # torch.distributed.nn.functional's collectives take ``group=group.WORLD`` as a default
        # argument, evaluated at import: imported after the group starts (building an optimizer
        # imports torch._dynamo, which imports them), they would hold the group past
        # destroy_process_group into interpreter shutdown, where tearing down gloo's threads can
        # abort the process ("terminate called without an active exception"). Imported first,
        # they hold None.
        import torch.distributed.nn.functional  # noqa: F401

        td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(model, dist: Dist, device: torch.device):
    """The model to train: DistributedDataParallel over the trainable parameters, or itself."""
    if not dist.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sum_across(dist: Dist, values: list[float]) -> list[float]:
    """Element-wise sums over all ranks."""
    if not dist.enabled:
        return values
    import torch
    import torch.distributed as td

    tensor = torch.tensor(values, dtype=torch.float64)
    if td.get_backend() == "nccl":
        tensor = tensor.cuda()
    td.all_reduce(tensor)
    return tensor.tolist()


def broadcast(dist: Dist, value):
    """Rank 0's ``value`` on every rank."""
    if not dist.enabled:
        return value
    import torch.distributed as td

    box = [value]
    td.broadcast_object_list(box, src=0)
    return box[0]


def share_buffers(dist: Dist, model) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every rank, in place.

    DistributedDataParallel sends them at the start of each training forward, but every rank
    then updates its own from its own shard; validating with those would report a model that
    is not the one rank 0 saves.
    """
    if not dist.enabled:
        return
    import torch.distributed as td

    for buffer in model.buffers():
        td.broadcast(buffer.data, src=0)


def barrier(dist: Dist) -> None:
    if dist.enabled:
        import torch.distributed as td

        td.barrier()


def shutdown(dist: Dist) -> None:
    if dist.enabled:
        import torch.distributed as td

        if td.is_initialized():
            td.destroy_process_group()
