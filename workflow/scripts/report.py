"""Snakemake wrapper: the HTML report of every dataset x model (logic: bioseq.report)."""

from bioseq.cli import run_step
from bioseq.report import build_report

sm = snakemake  # noqa: F821
run_step(lambda: build_report("results", sm.output.html, config=sm.params.config),
         log_file=sm.log[0])
