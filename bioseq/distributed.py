"""Multi-process (DDP) training under `torchrun`: one process per GPU, or CPU processes
on the gloo backend. Every process runs the same training loop on its part of each batch;
rank 0 alone writes checkpoints, histories and logs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.distributed as dist

from .errors import BioseqError


class Distributed(NamedTuple):
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Distributed()


def from_environment(environ: Mapping[str, str] | None = None) -> Distributed:
    """The process's place in a `torchrun` job (RANK, WORLD_SIZE, LOCAL_RANK); a single
    process when they are unset."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return SINGLE
    return Distributed(int(environ.get("RANK", 0)), int(environ["WORLD_SIZE"]),
                       int(environ.get("LOCAL_RANK", 0)))


def process_device(context: Distributed, device: str | torch.device | None) -> torch.device:
    """The device of this process: its own GPU (cuda:LOCAL_RANK) in a multi-GPU job."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and context.world > 1 and device.index is None:
        device = torch.device("cuda", context.local_rank)
    return device


@contextmanager
def process_group(context: Distributed, device: torch.device) -> Iterator[None]:
    """Join the job's process group (NCCL on GPUs, gloo on CPUs) for the duration."""
    if context.world == 1 or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                            rank=context.rank, world_size=context.world)
    try:
        yield
    finally:
        dist.destroy_process_group()


def sum_over_processes(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum across processes (a copy of `values` in a single process)."""
    values = values.clone()
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(values)
    return values


def from_main(flag: bool, device: torch.device) -> bool:
    """Rank 0's value of `flag` on every process (decisions must not diverge)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def torchrun_command(processes: int, bioseq_args: list[str]) -> list[str]:
    """`bioseq <args>` as a one-node torchrun job of `processes` processes (one per GPU)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", "-m", "bioseq", *bioseq_args]


def run_torchrun(processes: int, bioseq_args: list[str], *, log_file: str | None) -> None:
    """Run `torchrun_command` to completion, its output appended to `log_file`."""
    command = torchrun_command(processes, bioseq_args)
    with open(log_file or os.devnull, "a") as log:
        log.write(f"running {processes} processes: {shlex.join(command)}\n")
        log.flush()
        status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    if status != 0:
        raise BioseqError(f"torchrun with {processes} processes failed (exit status {status}; "
                          "the log above has the processes' errors)")
