"""Data-parallel training on PyTorch's own engine: DistributedDataParallel under ``torchrun``.

    torchrun --standalone --nproc_per_node 2 -m qsnnkit.train.cli --threads 1 ...   # 2 CPU processes
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv-endpoint HOST:29400 -m qsnnkit.train.cli ...

Every process draws the same permutation, augmentation and initialisation (same seed); each
global batch of ``--batch-size`` clips is cut into one contiguous shard per process, and the
gradients are averaged by DDP (gloo on CPU, NCCL on CUDA). The update equals a single process
on the whole batch, up to float summation order:

- cross-entropy is a mean over the shard: rank k's term is scaled by ``n_k * world / n``, so
  DDP's average over ranks is the mean over the global batch even when the last batch does
  not split evenly;
- the WS-DR spike-rate term is not linear in the batch (it squares the batch's firing rate):
  the per-layer rates are averaged over the global batch with an autograd all-reduce before
  the square, so every rank's loss holds the global term and its gradient reaches every
  shard exactly once.

Only rank 0 evaluates on validation, keeps the best epoch and writes the checkpoint.
tests/test_train.py runs 2 processes on gloo against one process with the same global batch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    backend: str

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of a global batch (np.array_split: sizes differ by at most 1)."""
        return np.array_split(idx, self.world)[self.rank]

    def ce_scale(self, n_local: int, n_global: int) -> float:
        """Factor on this rank's mean loss so that DDP's average over ranks is the global mean."""
        return n_local * self.world / n_global

    def global_rates(self, rates: list[torch.Tensor], n_local: int, n_global: int) -> list[torch.Tensor]:
        """Per-layer firing rates over the global batch (autograd flows back to every shard)."""
        from torch.distributed.nn.functional import all_reduce

        local = torch.stack(rates) * (n_local / n_global)
        return list(all_reduce(local).unbind(0))

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks of a few numbers (logging: loss, correct clips, rates)."""
        t = torch.tensor(values, dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return t.tolist()


def from_env(device: str) -> Dist | None:
    """The process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, ...), joined; None
    when run as a single process (no WORLD_SIZE, or 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), backend=backend)


def close(d: Dist | None) -> None:
    if d is not None and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
