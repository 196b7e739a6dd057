"""The SLURM preflight (bioseq.cluster) on sinfo output as real clusters print it; the
real cluster run is tests/test_slurm.py."""

from __future__ import annotations

import pytest

from bioseq.cluster import (
    JobRequest,
    Partition,
    check_request,
    job_request,
    parse_gres,
    parse_minutes,
    parse_sinfo,
)
from bioseq.errors import BioseqError

# `sinfo -h -N -o '%P|%c|%m|%l|%G'`: one line per node and partition
SINFO = """cpu*|64|256000|2-00:00:00|(null)
cpu*|128|512000|2-00:00:00|(null)
gpu|32|512000|1-00:00:00|gpu:a100:4(S:0-1)
gpu|32|256000|1-00:00:00|gpu:v100:2(S:0),shard:8
debug|2|24105|30:00|gpu:1
"""


@pytest.mark.parametrize(("text", "gpus"), [
    ("(null)", {}),
    ("gpu:1", {"": 1}),
    ("gpu:a100:4(S:0-1)", {"a100": 4}),
    ("shard:8,gpu:h100:8(S:0-3)", {"h100": 8}),
    ("gpu:a100:2,gpu:a100:4", {"a100": 4}),
    ("gpu", {}),  # no count: nothing to compare with
])
def test_gres_field_gives_gpus_per_model(text, gpus):
    assert parse_gres(text) == gpus


@pytest.mark.parametrize(("text", "minutes"), [
    ("infinite", None), ("30:00", 30), ("45", 45), ("1:30:00", 90), ("2-01:00:00", 2940),
    ("10:30", 11),  # 10 min 30 s: a job of 11 minutes does not fit
])
def test_time_limits_in_minutes(text, minutes):
    assert parse_minutes(text) == minutes


def test_sinfo_lines_are_merged_per_partition():
    assert parse_sinfo(SINFO) == {
        "cpu": Partition("cpu", default=True, cpus=128, mem_mb=512000, max_minutes=2880),
        "gpu": Partition("gpu", gpus={"a100": 4, "v100": 2}, cpus=32, mem_mb=512000,
                         max_minutes=1440),
        "debug": Partition("debug", gpus={"": 1}, cpus=2, mem_mb=24105, max_minutes=30),
    }


def test_job_resources_read_like_the_plugin():
    assert job_request("train", 4, {"gpu": 2, "gpu_model": "a100", "slurm_partition": "gpu",
                                    "mem_mb": 8000, "runtime": 120}) \
        == JobRequest("train", "gpu", 2, "a100", 4, 8000, 120)
    assert job_request("predict", 1, {"gres": "gpu:v100:1"}) \
        == JobRequest("predict", None, 1, "v100")
    # a value Snakemake cannot know before the job runs is not checked
    assert job_request("encode", 1, {"mem_mb": "<TBD>"}) == JobRequest("encode", None)


@pytest.mark.parametrize("request_", [
    JobRequest("encode", None, cpus=100, mem_mb=400000, minutes=2880),  # default partition
    JobRequest("train", "gpu", 4, "a100"),
    JobRequest("train", "gpu", 2),  # any model
    JobRequest("predict", "debug", 1, cpus=2, mem_mb=1000, minutes=30),
])
def test_requests_the_cluster_can_hold_pass(request_):
    check_request(request_, parse_sinfo(SINFO))


@pytest.mark.parametrize(("request_", "message"), [
    (JobRequest("train", "gpus", 1),
     "rule train: SLURM partition 'gpus' does not exist (the cluster has: cpu, debug, gpu); "
     "check resources.partition / gpu_partition in the config and slurm_partition in the "
     "profile"),
    (JobRequest("train", None, 1),
     "rule train asks for 1 GPU(s) but partition 'cpu' has none: set resources.gpu_partition "
     "to a GPU partition, or resources.gpu / resources.predict_gpu to 0"),
    (JobRequest("train", "gpu", 8),
     "rule train asks for 8 GPU(s) but no node of partition 'gpu' has more than 4; lower "
     "resources.gpu / resources.predict_gpu"),
    (JobRequest("train", "gpu", 4, "v100"),
     "rule train asks for 4 GPU(s) but no node of partition 'gpu' has more than 2; lower "
     "resources.gpu / resources.predict_gpu"),
    (JobRequest("predict", "gpu", 1, "h100"),
     "rule predict asks for GPU model 'h100' but partition 'gpu' has: a100, v100; change "
     "resources.gpu_model"),
    (JobRequest("predict", "debug", 1, "a100"),
     "rule predict asks for GPU model 'a100' but partition 'debug' has: untyped; change "
     "resources.gpu_model"),
    (JobRequest("train", "debug", cpus=4),
     "rule train asks for 4 CPUs but no node of partition 'debug' has more than 2; lower "
     "resources.threads"),
    (JobRequest("train", "gpu", mem_mb=600000),
     "rule train asks for 600000 MB of memory but no node of partition 'gpu' has more than "
     "512000 MB; lower resources.mem_mb (training) or the profile's mem_mb"),
    (JobRequest("train", "debug", minutes=120),
     "rule train asks for 120 minutes but partition 'debug' allows at most 30; lower "
     "resources.runtime (training) or the profile's runtime"),
])
def test_requests_the_cluster_cannot_hold_are_one_line(request_, message):
    with pytest.raises(BioseqError) as err:
        check_request(request_, parse_sinfo(SINFO))
    assert str(err.value) == message


def test_no_default_partition_is_an_error_only_for_gpu_jobs():
    partitions = parse_sinfo("cpu|4|1000|infinite|(null)\n")
    check_request(JobRequest("encode", None), partitions)
    with pytest.raises(BioseqError, match="names no partition, and the cluster has no default"):
        check_request(JobRequest("train", None, 1), partitions)
