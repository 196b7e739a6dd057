"""Snakemake wrapper: concatenate prediction shards in order (logic: bioseq.io.concatenate)."""

from bioseq.cli import run_step
from bioseq.io import concatenate

sm = snakemake  # noqa: F821


def merge() -> None:
    concatenate(list(sm.input.tables), sm.output.predictions, header_lines=1)
    if "labels" in sm.output.keys():
        concatenate(list(sm.input.labels), sm.output.labels)


run_step(merge, log_file=sm.log[0])
