"""Data-parallel training under torchrun, in a few explicit lines (nanoGPT's set-up): one process per device.

    torchrun --nproc_per_node=2 -m linformer_edu.train --preset cpu --out runs/ddp    # 2 processes, gloo on CPU

torchrun starts N copies of the trainer and sets RANK, LOCAL_RANK and WORLD_SIZE in each one's environment;
`setup` reads them, joins the process group (NCCL on CUDA, gloo on the CPU) and gives each rank its device,
cuda:LOCAL_RANK on a GPU. Without torchrun (no WORLD_SIZE, or 1) nothing changes: rank 0 of a world of 1.

How the trainer shares the work (train.py):
- batches: every rank draws the same global batch of grad_accum * world_size * batch_size windows from the same
  seeded generator and takes its own slice (`rank_slice`), so N ranks with batch B train on exactly the windows
  of one process with batch N * B, and every rank's random states stay equal: rank 0's resume them all;
- gradients: DistributedDataParallel averages them in the backward pass of the last micro-step only;
- the loss logged, the clock and a stop (Ctrl-C, SIGTERM on any rank) are agreed by one all-reduce per step
  (`mean`, `agree`), so every rank takes the same learning rate and stops at the same step;
- evaluation: every rank evaluates the same fixed windows with the same weights (the same numbers, so all ranks
  agree on a NaN); rank 0 alone prints, writes checkpoints and metrics.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank among world_size processes, and its device."""
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints, evaluates into the history, writes checkpoints and metrics."""
        return self.rank == 0


def launched() -> bool:
    """Whether torchrun started this process as one of several (WORLD_SIZE > 1 in the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    """This process's rank from torchrun's environment, known before the group is joined (0 when not launched)."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def setup(device: torch.device) -> World:
    """Join torchrun's process group (once) and return this rank's World; World(device=device) when not launched.

    device: what the config asked for (pick_device); on CUDA each rank takes cuda:LOCAL_RANK instead.
    """
    if not launched():
        return World(device=device)
    if device.type == "mps":
        raise ValueError("device: 'mps' cannot train data-parallel (no collective backend for Apple GPUs); "
                         "under torchrun use 'cpu' or 'cuda'")
    rank, local_rank, world_size = (int(os.environ[name]) for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return World(rank, world_size, device)


def rank_slice(world: World, micro_step: int, batch_size: int) -> slice:
    """The rows of the global batch (grad_accum * world_size * batch_size windows) that this rank trains on in
    `micro_step`: micro-steps in order, ranks in order within each, batch_size rows apiece."""
    start = (micro_step * world.world_size + world.rank) * batch_size
    return slice(start, start + batch_size)


def mean(world: World, value: torch.Tensor) -> float:
    """The mean of a scalar tensor over all ranks, as a float (the value itself in a world of 1)."""
    if world.world_size > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= world.world_size
    return value.item()


def agree(world: World, elapsed: float, signum: int | None) -> tuple[float, int | None]:
    """One all-reduce per step: the latest clock of all ranks and any rank's stop signal (its number), so that all
    ranks take the same learning rate under a time budget and stop at the same step."""
    if world.world_size == 1:
        return elapsed, signum
    both = torch.tensor([elapsed, signum or 0], dtype=torch.float64, device=world.device)
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    return both[0].item(), int(both[1].item()) or None


def teardown(world: World) -> None:
    """Leave the process group that `setup` joined (nanoGPT's destroy_process_group at the end of a run)."""
    if world.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
