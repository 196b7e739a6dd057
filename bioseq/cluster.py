"""Preflight of a SLURM run: the partition, GPUs, CPUs, memory and time each job asks for,
checked against the cluster (`sinfo`) before Snakemake submits anything.

Without it sbatch refuses a job asking for an unknown partition or for more than any node
has only when that job's turn comes, possibly hours into the run; a job asking for more
time than its partition allows may even pend forever. What sinfo cannot tell is left to
sbatch: whether the account exists (clusters without an accounting database accept any),
QOS and association limits, and partition limits below the nodes' size (MaxMemPerNode,
MaxCPUsPerNode).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BioseqError

UNTYPED = ""  # the model of GPUs declared as plain `gpu:N`
SINFO_FORMAT = "%P|%c|%m|%l|%G"  # partition, CPUs, memory (MB), time limit, gres per node


@dataclass(frozen=True)
class Partition:
    """The most one node of a partition offers (0 / None: nothing known, not checked)."""

    name: str
    default: bool = False
    gpus: Mapping[str, int] = field(default_factory=dict)  # model -> most on one node
    cpus: int = 0
    mem_mb: int = 0
    max_minutes: int | None = None  # None: infinite


@dataclass(frozen=True)
class JobRequest:
    """What one job asks for, from its Snakemake threads and resources."""

    rule: str
    partition: str | None  # None: the cluster's default partition
    gpus: int = 0
    model: str | None = None  # None: any GPU
    cpus: int = 1
    mem_mb: int = 0  # 0: not given
    minutes: int = 0  # 0: not given


def parse_gres(text: str) -> dict[str, int]:
    """GPUs per model in a node's sinfo %G field: 'gpu:a100:4(S:0-1),shard:2' ->
    {'a100': 4}; 'gpu:1' -> {'': 1}; '(null)' -> {}."""
    gpus: dict[str, int] = {}
    for item in text.split(","):
        parts = item.split("(")[0].strip().split(":")
        if parts[0] != "gpu" or len(parts) < 2 or not parts[-1].isdigit():
            continue
        model = parts[1] if len(parts) == 3 else UNTYPED
        gpus[model] = max(gpus.get(model, 0), int(parts[-1]))
    return gpus


def parse_minutes(text: str) -> int | None:
    """A SLURM time limit in minutes: 'infinite' -> None, '2-01:00:00' -> 2940, '30:00' ->
    30 (minutes:seconds), '1:30:00' -> 90."""
    text = text.strip()
    if not text or text.lower() in ("infinite", "unlimited", "n/a"):
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, (minutes, seconds) = 0, (parts + [0])[:2]
    return int(days or 0) * 1440 + hours * 60 + minutes + (seconds > 0)


def _number(text: str) -> int:
    digits = "".join(c for c in text if c.isdigit())  # '24105', '64+' -> 64
    return int(digits) if digits else 0


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions from `sinfo -h -N -o SINFO_FORMAT` lines (one per node and partition;
    the default partition's name ends in '*'), keeping the most any one node offers."""
    found: dict[str, Partition] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 5:
            continue
        name, cpus, mem, limit, gres = fields
        old = found.get(name.rstrip("*"), Partition(name.rstrip("*")))
        gpus = dict(old.gpus)
        for model, count in parse_gres(gres).items():
            gpus[model] = max(gpus.get(model, 0), count)
        found[old.name] = Partition(old.name, old.default or name.endswith("*"), gpus,
                                    max(old.cpus, _number(cpus)), max(old.mem_mb, _number(mem)),
                                    parse_minutes(limit))
    return found


def read_partitions() -> dict[str, Partition]:
    """The cluster's partitions, asked of `sinfo` (a clear error when it cannot answer)."""
    if shutil.which("sinfo") is None:
        raise BioseqError("the SLURM executor needs the SLURM commands (sinfo, sbatch) on "
                          "PATH: run Snakemake on a login node of the cluster")
    try:
        result = subprocess.run(["sinfo", "-h", "-N", "-o", SINFO_FORMAT], capture_output=True,
                                text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise BioseqError("sinfo did not answer within 60 s: is slurmctld up?") from None
    if result.returncode != 0:
        message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise BioseqError(f"sinfo failed, so the cluster cannot be reached: {message}")
    return parse_sinfo(result.stdout)


def job_request(rule: str, threads: int, resources: Mapping[str, Any]) -> JobRequest:
    """A job's request, read as the SLURM plugin reads it: partition, `gpu` (+ `gpu_model`)
    or `gres: gpu:N` / `gpu:model:N`, threads (--cpus-per-task), mem_mb and runtime."""
    gpus, model = int(resources.get("gpu") or 0), resources.get("gpu_model") or None
    gres = parse_gres(str(resources.get("gres") or ""))
    if gres and not gpus:
        gres_model, gpus = next(iter(gres.items()))
        model = gres_model or None

    def whole(key: str) -> int:  # unset, or not known before the job runs: not checked
        value = resources.get(key)
        return int(value) if isinstance(value, (int, float)) else 0

    partition = resources.get("slurm_partition")
    return JobRequest(rule, str(partition) if partition else None, gpus,
                      str(model) if model else None, int(threads), whole("mem_mb"),
                      whole("runtime"))


def _partition_of(request: JobRequest, partitions: Mapping[str, Partition]) -> Partition | None:
    where = f"rule {request.rule}"
    name = request.partition
    if name is None:
        default = [p for p in partitions.values() if p.default]
        if default:
            return default[0]
        if request.gpus:
            raise BioseqError(f"{where} asks for GPUs but names no partition, and the "
                              "cluster has no default one: set resources.gpu_partition")
        return None  # sbatch may still place it (e.g. a job_submit plugin picks one)
    if name not in partitions:
        raise BioseqError(f"{where}: SLURM partition '{name}' does not exist (the cluster "
                          f"has: {', '.join(sorted(partitions)) or 'none'}); check "
                          "resources.partition / gpu_partition in the config and "
                          "slurm_partition in the profile")
    return partitions[name]


def _check_gpus(request: JobRequest, partition: Partition) -> None:
    where, name = f"rule {request.rule}", partition.name
    if not partition.gpus:
        raise BioseqError(f"{where} asks for {request.gpus} GPU(s) but partition '{name}' "
                          "has none: set resources.gpu_partition to a GPU partition, or "
                          "resources.gpu / resources.predict_gpu to 0")
    available = [n for m, n in partition.gpus.items() if request.model in (None, m)]
    if not available:
        models = ", ".join(sorted(m or "untyped" for m in partition.gpus))
        raise BioseqError(f"{where} asks for GPU model '{request.model}' but partition "
                          f"'{name}' has: {models}; change resources.gpu_model")
    if request.gpus > max(available):
        raise BioseqError(f"{where} asks for {request.gpus} GPU(s) but no node of partition "
                          f"'{name}' has more than {max(available)}; lower resources.gpu / "
                          "resources.predict_gpu")


def check_request(request: JobRequest, partitions: Mapping[str, Partition]) -> None:
    """One job's request against the cluster; the first problem in one line."""
    partition = _partition_of(request, partitions)
    if partition is None:
        return
    if request.gpus:
        _check_gpus(request, partition)
    where, name = f"rule {request.rule}", partition.name
    if partition.cpus and request.cpus > partition.cpus:
        raise BioseqError(f"{where} asks for {request.cpus} CPUs but no node of partition "
                          f"'{name}' has more than {partition.cpus}; lower resources.threads")
    if partition.mem_mb and request.mem_mb > partition.mem_mb:
        raise BioseqError(f"{where} asks for {request.mem_mb} MB of memory but no node of "
                          f"partition '{name}' has more than {partition.mem_mb} MB; lower "
                          "resources.mem_mb (training) or the profile's mem_mb")
    if partition.max_minutes is not None and request.minutes > partition.max_minutes:
        raise BioseqError(f"{where} asks for {request.minutes} minutes but partition "
                          f"'{name}' allows at most {partition.max_minutes}; lower "
                          "resources.runtime (training) or the profile's runtime")


def check_slurm_requests(requests: Iterable[JobRequest],
                         partitions: Mapping[str, Partition] | None = None) -> None:
    """Every job's request against the cluster, each distinct request checked once."""
    partitions = read_partitions() if partitions is None else partitions
    for request in dict.fromkeys(requests):
        check_request(request, partitions)
