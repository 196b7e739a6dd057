"""Snakemake wrapper: train one model on one dataset (logic: bioseq.training).

With `resources: gpu` above 1 the job trains under torchrun, one process per GPU (CPU
processes on the gloo backend where there are no GPUs)."""

import tempfile
from pathlib import Path

import yaml

from bioseq.cli import run_step
from bioseq.config import model_config
from bioseq.distributed import run_torchrun
from bioseq.training import train_from_store

sm = snakemake  # noqa: F821
model = model_config(sm.wildcards.model, sm.params.model, sm.params.training)
out_dir = Path(sm.output.model).parent
processes = int(sm.resources.get("gpu", 0) or 0)


def train_processes():
    # the processes read the model's settings from a YAML of their own, as `bioseq train` does
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "model.yaml"
        config.write_text(yaml.safe_dump({"models": {model.name: dict(sm.params.model)},
                                          "training": dict(sm.params.training)}))
        threads = max(1, sm.threads // processes)  # the job's CPUs, shared by its processes
        run_torchrun(processes, ["--threads", str(threads), "train", "--config",
                                 str(config), "--model", model.name, "--store",
                                 sm.input.store, "--out", str(out_dir)], log_file=sm.log[0])


if processes > 1:
    run_step(train_processes, log_file=sm.log[0], threads=sm.threads)
else:
    run_step(lambda: train_from_store(sm.input.store, architecture=model.architecture,
                                      params=dict(model.params), train=vars(model.train),
                                      out_dir=out_dir), log_file=sm.log[0], threads=sm.threads)
