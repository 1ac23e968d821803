"""Data-parallel training across processes (PyTorch DDP), as launched by ``torchrun``.

``torchrun --nproc_per_node=N -m mt.train ...`` starts N processes with RANK, WORLD_SIZE and
LOCAL_RANK in their environment; :func:`init_distributed` turns that into a process group
(gloo for CPU tensors, NCCL for CUDA tensors) and a :class:`DistContext`. Without those
variables (or with WORLD_SIZE=1) nothing is initialised and every helper here is a no-op, so
single-process training runs exactly the code it ran before.

Each rank trains on its own share of every step's batches; :func:`data_parallel` wraps the
model's loss so that DDP averages the gradients during ``backward``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

if TYPE_CHECKING:
    from mt.data.collate import Batch

# Rank 0 may prepare data or validate for a long while as the others wait in a collective.
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (the defaults: a single process)."""

    rank: int = 0  # global rank, 0 .. world_size - 1
    world_size: int = 1
    local_rank: int = 0  # rank on this machine (= CUDA device index)
    is_main: bool = True  # rank 0: the one that writes checkpoints, logs and plots
    enabled: bool = False  # a process group exists (world_size > 1)


def init_distributed(device_type: str) -> DistContext:
    """Join the process group torchrun describes in the environment; idempotent.

    ``device_type`` ("cpu" or "cuda") is where training will run: "cuda" sets this process's
    CUDA device to LOCAL_RANK and adds NCCL for CUDA tensors; gloo always serves CPU tensors
    (object broadcasts, barriers, the per-step counters). Without RANK/WORLD_SIZE, or with
    WORLD_SIZE=1, nothing is initialised.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistContext()
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world_size <= 1:
        return DistContext(local_rank=local_rank)
    if not dist.is_initialized():
        if device_type == "cuda":
            if local_rank < torch.cuda.device_count():  # else train() explains the missing GPU
                torch.cuda.set_device(local_rank)
            backend = "cpu:gloo,cuda:nccl"
        else:
            backend = "gloo"
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    return DistContext(rank, world_size, local_rank, is_main=rank == 0, enabled=True)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait until every rank arrives here (no-op for a single process)."""
    if ctx.enabled:
        dist.barrier()


def all_reduce_sum(ctx: DistContext, values: Sequence[float]) -> list[float]:
    """Sum ``values`` element-wise over all ranks (float64 on CPU, exact for counts below 2**53)."""
    if not ctx.enabled:
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64)  # (K,)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast_object(ctx: DistContext, obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (it must pickle); other ranks pass anything."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


@contextlib.contextmanager
def main_first(ctx: DistContext) -> Iterator[None]:
    """Run the block on rank 0 first and on the other ranks after it finished (e.g. to fill caches)."""
    if ctx.enabled and not ctx.is_main:
        barrier(ctx)
    yield
    if ctx.enabled and ctx.is_main:
        barrier(ctx)


def rank_seed(seed: int, rank: int, step: int) -> int:
    """A torch seed for rank ``rank`` > 0 from step ``step`` on, so ranks draw different dropout masks."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


class LossForward(nn.Module):
    """Makes ``model.loss`` the module's forward, so DDP's forward hooks see the training loss."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, batch: Batch, label_smoothing: float = 0.0, teacher_forcing: float = 1.0, **extra: float
    ) -> tuple[Tensor, Tensor]:
        """``model.loss(batch, ...)`` (looked up at call time): (loss_sum, nll_sum); ``extra`` are
        the loss's other terms, e.g. ``coverage_weight``."""
        return self.model.loss(
            batch, label_smoothing=label_smoothing, teacher_forcing=teacher_forcing, **extra
        )


def data_parallel(model: nn.Module, device: torch.device) -> nn.parallel.DistributedDataParallel:
    """Wrap ``model.loss`` in DDP; calling the result with a ``Batch`` computes the loss, and its
    backward averages gradients over ranks. Rank 0's parameters are copied to every rank here."""
    return nn.parallel.DistributedDataParallel(
        LossForward(model),
        device_ids=[device.index] if device.type == "cuda" else None,
        gradient_as_bucket_view=True,  # gradients live in the communication buckets: no extra copy
    )
