"""Snakemake wrapper: train one model on one dataset (logic: bioseq.training)."""

from pathlib import Path

from bioseq.cli import run_step
from bioseq.config import model_config
from bioseq.training import train_from_store

sm = snakemake  # noqa: F821
model = model_config(sm.wildcards.model, sm.params.model, sm.params.training)
run_step(
    lambda: train_from_store(
        sm.input.store,
        architecture=model.architecture,
        params=dict(model.params),
        train=vars(model.train),
        out_dir=Path(sm.output.model).parent,
    ),
    log_file=sm.log[0],
    threads=sm.threads,
)
