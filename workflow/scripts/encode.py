"""Snakemake wrapper: encode one dataset into a store (logic: bioseq.store)."""

from bioseq.cli import run_step
from bioseq.config import dataset_config
from bioseq.store import encode_dataset

run_step(
    lambda: encode_dataset(
        dataset_config(snakemake.wildcards.dataset, snakemake.params.dataset),  # noqa: F821
        snakemake.output.store,  # noqa: F821
    ),
    log_file=snakemake.log[0],  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
