"""The real pipeline on a real SLURM cluster, through Snakemake's SLURM executor plugin and
workflow/profiles/slurm, compared with a local run of the same config.

Needs a cluster: `bash tests/cluster/local_slurm.sh up` starts a single-node one here (CI
does). Without one these tests are skipped, except under CI=true, where that fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from test_workflow import REPO, TINY_MODELS, snakemake, write_slice

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = str(REPO / "workflow" / "profiles" / "slurm")
# where tests/cluster/local_slurm.sh writes its config (BIOSEQ_SLURM_DIR changes it)
LOCAL_CONF = Path(os.environ.get("BIOSEQ_SLURM_DIR", "/tmp/bioseq-slurm")) / "slurm.conf"
# The first status check 5 s after a submission (the profile's 20 s suits a real queue);
# the local cluster keeps finished jobs visible to squeue for 300 s (MinJobAge >= 3 x 5).
FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "5")
RULES = ["encode", "train", "evaluate", "predict", "report"]  # one job each
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: .*/rule_(\w+?)/")


def cluster_env() -> dict[str, str]:
    """SLURM_CONF as set, else the local test cluster's when it is there."""
    if "SLURM_CONF" not in os.environ and LOCAL_CONF.is_file():
        return {"SLURM_CONF": str(LOCAL_CONF)}
    return {}


def cluster_problem(env: dict[str, str]) -> str | None:
    """Why no SLURM job can run here, or None when a node is up."""
    if shutil.which("sinfo") is None:
        return "no sinfo: SLURM is not installed (tests/cluster/local_slurm.sh up)"
    result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=60, check=False)
    states = result.stdout.split()
    if result.returncode != 0 or not {"idle", "mix", "alloc"} & set(states):
        return (f"no SLURM node is up (sinfo: {result.stderr.strip() or states}); start "
                "one with: bash tests/cluster/local_slurm.sh up")
    return None


@pytest.fixture(scope="module")
def slurm_env() -> dict[str, str]:
    env = cluster_env()
    problem = cluster_problem(env)
    if problem and os.environ.get("CI"):
        pytest.fail(f"CI runs the SLURM tests on a local cluster: {problem}")
    if problem:
        pytest.skip(problem)
    return env


def slurm_cli(env: dict[str, str], *command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60,
                            env={**os.environ, **env})
    return result.stdout


def write_tiny(workdir: Path, **resources) -> None:
    """One data set (a fifth of splice), one small CNN, 2 epochs: 5 jobs; training on 2
    GPUs, i.e. torchrun with 2 processes inside its job (CPU processes here)."""
    write_slice(workdir / "splice_slice.fa")
    config = {"datasets": {"splice": {"fasta": "splice_slice.fa", "length": {"length": 60}}},
              "models": {"cnn": TINY_MODELS["cnn"]},
              "training": {"epochs": 2, "batch_size": 32},
              "resources": {"threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 2,
                            **resources}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def runs(slurm_env, tmp_path_factory):
    """The same config run on SLURM and locally: (slurm dir, its output, local dir)."""
    on_slurm = tmp_path_factory.mktemp("on_slurm")
    write_tiny(on_slurm)
    result = snakemake(on_slurm, "--profile", PROFILE, *FAST_STATUS, env=slurm_env,
                       timeout=360, interrupt=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    local = tmp_path_factory.mktemp("local")
    write_tiny(local)
    result = snakemake(local, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return on_slurm, output, local


def submitted_jobs(output: str) -> dict[str, list[str]]:
    """Rule -> the SLURM job IDs Snakemake reported submitting for it."""
    jobs: dict[str, list[str]] = {}
    for job_id, rule in SUBMITTED.findall(output):
        jobs.setdefault(rule, []).append(job_id)
    return jobs


def test_every_job_ran_as_a_slurm_job(runs, slurm_env):
    _, output, _ = runs
    jobs = submitted_jobs(output)
    assert sorted(jobs) == sorted(RULES) and all(len(ids) == 1 for ids in jobs.values()), jobs
    # squeue still lists finished jobs (MinJobAge): each one completed, named by its rule
    table = slurm_cli(slurm_env, "squeue", "--states=all", "-h", "-o", "%i|%T|%k")
    listed = {job_id: (state, comment) for job_id, state, comment
              in (line.split("|", 2) for line in table.splitlines())}
    for rule, (job_id,) in jobs.items():
        assert listed[job_id][0] == "COMPLETED", (rule, listed.get(job_id))
        assert listed[job_id][1].startswith(f"rule_{rule}"), (rule, listed[job_id])


def test_gpu_jobs_got_their_gpu_and_cpu_jobs_none(runs, slurm_env):
    jobs = submitted_jobs(runs[1])
    for rule, (job_id,) in jobs.items():
        details = slurm_cli(slurm_env, "scontrol", "show", "job", job_id)
        asked = re.findall(r"TresPer(?:Job|Node)=(\S+)", details)
        if rule == "train":  # resources.gpu
            assert asked == ["gres:gpu:2"], (rule, details)
        elif rule in ("evaluate", "predict"):  # resources.predict_gpu
            assert asked == ["gres:gpu:1"], (rule, details)
        else:
            assert asked == [], (rule, details)


def test_results_equal_a_local_run(runs):
    on_slurm, _, local = runs
    folder = Path("results/splice/cnn")
    tables = [pd.read_csv(run / folder / "predictions.tsv", sep="\t") for run in (on_slurm,
                                                                               local)]
    pd.testing.assert_frame_equal(*tables, check_exact=True)
    metrics = [json.loads((run / folder / "metrics.json").read_text())
               for run in (on_slurm, local)]
    assert metrics[0] == metrics[1]
    # seeded training on the CPU, one thread in both runs: the same weights, bit for bit
    checkpoints = [torch.load(run / folder / "model.pt", map_location="cpu", weights_only=True)
                   for run in (on_slurm, local)]
    # both trained as 2 processes (resources.gpu 2): torchrun inside the SLURM job
    assert [c["training"]["processes"] for c in checkpoints] == [2, 2]
    assert "running 2 processes" in (on_slurm / "logs/splice/cnn/train.log").read_text()
    weights = [c["state_dict"] for c in checkpoints]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    histories = [pd.read_csv(run / folder / "history.tsv", sep="\t").drop(columns="seconds")
                 for run in (on_slurm, local)]
    pd.testing.assert_frame_equal(*histories)
    assert (on_slurm / "results/report.html").is_file()


def job_state(env: dict[str, str], job_id: str, wait: float = 30) -> str:
    """A job's state once it has ended (scancel returns before the job is gone)."""
    deadline = time.monotonic() + wait
    while True:
        state = slurm_cli(env, "squeue", "--states=all", "-h", "-j", job_id, "-o", "%T")
        if state.strip() not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING") \
                or time.monotonic() > deadline:
            return state.strip()
        time.sleep(0.5)


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_cancels_the_submitted_jobs(slurm_env, tmp_path):
    """SIGINT (Ctrl-C, `timeout -s INT`) makes Snakemake scancel the jobs it submitted."""
    write_tiny(tmp_path)
    env = {**os.environ, **slurm_env}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--profile", PROFILE, *FAST_STATUS]
    lines: list[str] = []
    # in CI a SIGINT never reached Snakemake (the whole run went on) although it does when
    # this test runs alone: an ignored or blocked SIGINT is inherited across exec (a runner
    # starting the tests in the background, or a library of an earlier test in this
    # process), so Snakemake gets the terminal's default back, as under a real Ctrl-C
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, env=env, preexec_fn=default_sigint) as run:
        reader = threading.Thread(target=lambda: lines.extend(run.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while not any(SUBMITTED.search(line) for line in list(lines)):
            assert run.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.2)
        time.sleep(3)  # Snakemake registers a job for cancelling just after submitting it
        run.send_signal(signal.SIGINT)
        run.wait(timeout=120)
        reader.join(timeout=60)
    output = "".join(lines)
    assert run.returncode is not None, output[-3000:]
    jobs = [job_id for job_id, _ in SUBMITTED.findall(output)]
    states = {job_id: job_state(slurm_env, job_id) for job_id in jobs}
    assert list(states.values()) == ["CANCELLED"], (states, output[-3000:])
    assert not (tmp_path / "results/report.html").exists()  # the run did not go on


def no_job_submitted(result: subprocess.CompletedProcess, workdir: Path) -> None:
    assert result.returncode != 0
    assert "submitted with SLURM jobid" not in result.stdout + result.stderr
    assert not (workdir / "results").exists()


def refusal(env: dict[str, str], workdir: Path, **resources) -> str:
    """The one error line of a SLURM run of the tiny config with these resources, which
    must stop before submitting any job."""
    write_tiny(workdir, **resources)
    result = snakemake(workdir, "--profile", PROFILE, env=env, timeout=120, interrupt=True)
    no_job_submitted(result, workdir)
    errors = [line for line in result.stderr.splitlines() if line.startswith("bioseq: error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0].removeprefix("bioseq: error: ")


@pytest.mark.parametrize(("resources", "error"), [
    ({"partition": "nope"}, r"rule \w+: SLURM partition 'nope' does not exist \(the cluster "
                            r"has: debug\); check resources.partition.*"),
    ({"gpu": 3}, r"rule train asks for 3 GPU\(s\) but no node of partition 'debug' has more "
                 r"than 2; lower resources.gpu.*"),
    ({"gpu_model": "a100"}, r"rule \w+ asks for GPU model 'a100' but partition 'debug' has: "
                            r"untyped; change resources.gpu_model"),
], ids=["partition", "gpu_count", "gpu_model"])
def test_requests_the_cluster_cannot_hold_stop_before_any_job(slurm_env, tmp_path,
                                                               resources, error):
    assert re.fullmatch(error, refusal(slurm_env, tmp_path, **resources))


def test_more_cpus_than_a_node_has_stop_before_any_job(slurm_env, tmp_path):
    cpus = max(int(n.rstrip("+")) for n in slurm_cli(slurm_env, "sinfo", "-h", "-o", "%c")
               .split())
    assert re.fullmatch(rf"rule \w+ asks for {cpus + 1} CPUs but no node of partition 'debug' "
                        rf"has more than {cpus}; lower resources.threads",
                        refusal(slurm_env, tmp_path, threads=cpus + 1))


def test_without_the_plugin_snakemake_names_the_missing_executor(tmp_path):
    """What a user without the `cluster` extra sees: Snakemake's own usage error, before
    the Snakefile is read (so the workflow cannot word it). Simulated by hiding the
    plugin from Snakemake's plugin discovery (pkgutil)."""
    write_tiny(tmp_path)
    hide = ("import pkgutil, sys; found = pkgutil.iter_modules; "
            "pkgutil.iter_modules = lambda *a, **k: [m for m in found(*a, **k) "
            "if not m.name.startswith('snakemake_executor_plugin_slurm')]; "
            "from snakemake.cli import main; sys.argv[0] = 'snakemake'; main()")
    command = [sys.executable, "-c", hide, "-s", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--profile", PROFILE]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    no_job_submitted(result, tmp_path)
    assert "argument --executor/-e: invalid choice: 'slurm'" in result.stderr
