"""Multi-process training under torchrun (2 CPU processes, gloo) and resuming killed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from bioseq.checkpoint import read_checkpoint
from bioseq.data import BatchLoader
from bioseq.distributed import Distributed, from_environment, process_device
from bioseq.training import RESUME_FILE

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]

# dropout 0: dropout masks are drawn per process, so only a deterministic model can match
# single-process training number for number
MODELS = {
    "cnn": {"architecture": "cnn",
            "params": {"channels": [16, 16], "kernel_sizes": [7, 5], "pool": [2, 2],
                       "dropout": 0.0, "head_pool": "flatten", "head_hidden": 16,
                       "head_dropout": 0.0},
            "train": {"rc_augment": True}},
    "transformer": {"architecture": "transformer",
                    "params": {"d_model": 16, "heads": 2, "layers": 1, "kernel_size": 5,
                               "dropout": 0.0, "head_dropout": 0.0}},
    "cnn_dropout": {"architecture": "cnn",
                    "params": {"channels": [16, 16], "kernel_sizes": [7, 5], "pool": [2, 2],
                               "dropout": 0.2, "head_pool": "flatten", "head_hidden": 16,
                               "head_dropout": 0.3},
                    "train": {"rc_augment": True}},
}
# lr 0.001: at 0.003 the cnn's trajectory is sensitive enough that float rounding alone
# (two half-batch gradients summed instead of one) grew to 4e-3 in the weights on an AVX2
# CPU in 2 epochs, while at 0.001 and 0.0003 the two runs stay 2e-7 apart
TRAINING = {"epochs": 2, "batch_size": 64, "lr": 0.001, "patience": 5, "seed": 3}


def write_config(tmp_path: Path, **training) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"models": MODELS, "training": {**TRAINING, **training}}))
    return path


def train_command(config: Path, model: str, store: Path, out: Path, processes: int = 1):
    launcher = ([str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={processes}",
                 "-m", "bioseq"] if processes > 1 else [str(BIN / "bioseq")])
    return [*launcher, "--threads", "1", "train", "--config", str(config), "--model", model,
            "--store", str(store), "--out", str(out), "--device", "cpu"]


def run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["state_dict"]


# ---------------------------------------------------------------- sharding


def test_shards_split_every_global_batch_between_processes(splice):
    index = splice.indices("train")[:203]  # 203 = 3 x 64 + 11

    def loader(rank, world):
        return BatchLoader(splice.tokens, splice.starts, splice.lengths, index,
                           targets=splice.labels, batch_size=64, shuffle=True, seed=7,
                           shard=(rank, world))

    whole = [b.index for b in loader(0, 1)]
    parts = [[b for b in loader(rank, 3)] for rank in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    for k, global_batch in enumerate(whole):
        pieces = [parts[rank][k] for rank in range(3)]
        assert np.array_equal(np.concatenate([p.index for p in pieces]), global_batch)
        assert [p.offset for p in pieces] == [0, len(pieces[0].index),
                                               len(pieces[0].index) + len(pieces[1].index)]
        assert all(p.global_size == len(global_batch) for p in pieces)


def test_a_last_batch_smaller_than_the_world_joins_the_one_before(splice):
    index = splice.indices("train")[:129]  # 2 x 64 + 1: one process would get nothing
    loader = BatchLoader(splice.tokens, splice.starts, splice.lengths, index,
                         batch_size=64, shuffle=True, seed=0, shard=(1, 2))
    assert [b.global_size for b in loader] == [64, 65]
    with pytest.raises(ValueError, match="rank"):
        BatchLoader(splice.tokens, splice.starts, splice.lengths, index, shard=(2, 2))


def test_set_epoch_makes_the_order_a_function_of_seed_and_epoch(splice):
    index = splice.indices("train")[:300]

    def order(loader):
        return np.concatenate([b.index for b in loader])

    a = BatchLoader(splice.tokens, splice.starts, splice.lengths, index, batch_size=50,
                    shuffle=True, seed=1)
    b = BatchLoader(splice.tokens, splice.starts, splice.lengths, index, batch_size=50,
                    shuffle=True, seed=1)
    a.set_epoch(1)
    first = order(a)
    a.set_epoch(2)
    second = order(a)
    b.set_epoch(2)  # a fresh loader jumping straight to epoch 2, as a resumed run does
    assert np.array_equal(order(b), second)
    assert not np.array_equal(first, second)


def test_torchrun_environment_is_read():
    assert from_environment({}) == Distributed(0, 1, 0)
    context = from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert context == Distributed(3, 4, 1) and not context.is_main
    assert process_device(context, "cpu") == torch.device("cpu")


# ---------------------------------------------------------------- torchrun


@pytest.mark.slow
@pytest.mark.parametrize(("model", "ema_decay"), [("cnn", None), ("transformer", None),
                                                  ("cnn", 0.9)])
def test_two_processes_train_the_same_model_as_one(tmp_path, splice_store, model, ema_decay):
    config = write_config(tmp_path, ema_decay=ema_decay)
    single, double = tmp_path / "single", tmp_path / "double"
    run(train_command(config, model, splice_store, single))
    result = run(train_command(config, model, splice_store, double, processes=2))
    assert "epoch 2:" in result.stderr  # rank 0 logs
    a, b = weights(single / "model.pt"), weights(double / "model.pt")
    assert a.keys() == b.keys()
    for key in a:
        if key.endswith("in_proj_bias"):
            # the key bias cannot change attention (softmax ignores a constant): its gradient
            # is rounding noise, which Adam scales up to lr-sized steps either way
            third = len(a[key]) // 3
            a[key][third : 2 * third] = b[key][third : 2 * third]
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-5), key
    history = [pd.read_csv(p / "history.tsv", sep="\t") for p in (single, double)]
    np.testing.assert_allclose(history[0]["val_loss"], history[1]["val_loss"], rtol=1e-4)
    assert read_checkpoint(double / "model.pt")["training"]["processes"] == 2
    assert not (double / RESUME_FILE).exists()


# ---------------------------------------------------------------- resume


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_run_resumes_and_ends_with_the_uninterrupted_weights(tmp_path, splice_store):
    config = write_config(tmp_path, epochs=4, patience=10, batch_size=16)
    model = "cnn_dropout"  # dropout masks and RC flips replay from (seed, epoch)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run(train_command(config, model, splice_store, straight))
    process = subprocess.Popen(train_command(config, model, splice_store, killed),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(killed / RESUME_FILE, process)  # epoch 1 done, epoch 2 under way
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "model.pt").exists()
    epoch = torch.load(killed / RESUME_FILE, weights_only=True)["epoch"]
    assert 1 <= epoch < 4
    result = run(train_command(config, model, splice_store, killed))
    assert f"resuming after epoch {epoch}" in result.stderr
    a, b = weights(straight / "model.pt"), weights(killed / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = [pd.read_csv(p / "history.tsv", sep="\t").drop(columns="seconds")
               for p in (straight, killed)]
    pd.testing.assert_frame_equal(*history)
    assert not (killed / RESUME_FILE).exists()


def test_a_resume_state_of_other_settings_is_ignored(tmp_path, splice_store):
    config = write_config(tmp_path, epochs=1)
    out = tmp_path / "out"
    out.mkdir()
    torch.save({"fingerprint": "other settings", "epoch": 5}, out / RESUME_FILE)
    result = run(train_command(config, "cnn", splice_store, out))
    assert "belongs to other settings" in result.stderr
    assert pd.read_csv(out / "history.tsv", sep="\t")["epoch"].tolist() == [1]


# ---------------------------------------------------------------- the train rule


def pipeline_config(workdir: Path, *, gpu: int, epochs: int, batch_size: int = 64) -> None:
    from test_workflow import write_slice

    write_slice(workdir / "splice_slice.fa", every=2)
    config = {"datasets": {"splice": {"fasta": "splice_slice.fa", "length": {"length": 60},
                                      "models": ["cnn_dropout"]}},
              "models": {"cnn_dropout": MODELS["cnn_dropout"]},
              "training": {**TRAINING, "epochs": epochs, "patience": 10,
                           "batch_size": batch_size},
              "resources": {"threads": 1, "gpu": gpu}}  # as train_command
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


MODEL_PT = "results/splice/cnn_dropout/model.pt"


@pytest.mark.slow
def test_the_train_rule_runs_torchrun_for_several_gpus(tmp_path):
    from test_workflow import snakemake

    pipeline_config(tmp_path, gpu=2, epochs=1)
    result = snakemake(tmp_path, "--cores", "2", MODEL_PT)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs/splice/cnn_dropout/train.log").read_text()
    assert "running 2 processes" in log and "torch.distributed.run" in log
    assert read_checkpoint(tmp_path / MODEL_PT)["training"]["processes"] == 2


def training_processes(workdir: Path) -> list[int]:
    """PIDs of the Snakemake train jobs running in `workdir` (their script's path)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(workdir).encode() in w and w.endswith(b"train.py") for w in words):
            pids.append(int(cmdline.parent.name))
    return pids


@pytest.mark.slow
def test_a_killed_train_job_resumes_when_the_rule_reruns(tmp_path):
    from test_workflow import snakemake

    pipeline_config(tmp_path, gpu=1, epochs=6, batch_size=8)  # epochs of about a second
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
               str(tmp_path), "--cores", "2", MODEL_PT]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)
    state = tmp_path / "results/splice/cnn_dropout" / RESUME_FILE
    wait_for(state, process)
    jobs = training_processes(tmp_path)
    assert len(jobs) == 1
    os.kill(jobs[0], signal.SIGKILL)  # the training job, mid-epoch (as an OOM killer would)
    assert process.wait(timeout=120) != 0  # Snakemake reports the failed job and stops
    epoch = torch.load(state, weights_only=True)["epoch"]
    assert not (tmp_path / MODEL_PT).exists() and epoch < 6
    result = snakemake(tmp_path, "--cores", "2", MODEL_PT)  # the rule reruns, and resumes
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs/splice/cnn_dropout/train.log").read_text()
    assert f"resuming after epoch {epoch}" in log
    # the same training straight through, outside the workflow
    config = write_config(tmp_path)
    config.write_text(yaml.safe_dump({"models": {"cnn_dropout": MODELS["cnn_dropout"]},
                                      "training": {**TRAINING, "epochs": 6, "patience": 10,
                                                   "batch_size": 8}}))
    straight = tmp_path / "straight"
    run(train_command(config, "cnn_dropout", tmp_path / "results/splice/encoded", straight))
    a, b = weights(straight / "model.pt"), weights(tmp_path / MODEL_PT)
    assert all(torch.equal(a[k], b[k]) for k in a)
