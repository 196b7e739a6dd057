"""Snakemake wrapper: mean and s.d. over folds of every model, family choice, baseline and
ensemble (logic: bioseq.crossval)."""

import json
from pathlib import Path

import pandas as pd

from bioseq.cli import run_step
from bioseq.crossval import summarize_cv_results, summary_table
from bioseq.evaluate import write_table
from bioseq.io import write_text_atomic

sm = snakemake  # noqa: F821


def step() -> None:
    summary = summarize_cv_results(Path(sm.output.summary).parent, folds=sm.params.folds,
                                   models=sm.params.models, family=sm.params.family,
                                   select=sm.params.select, settings=sm.params.settings,
                                   folds_total=sm.params.cv.folds,
                                   baseline=sm.params.baseline.enabled,
                                   ensemble=bool(sm.params.cv.ensemble))
    summary["dataset"] = sm.wildcards.dataset
    write_table(pd.DataFrame(summary_table(summary)), sm.output.table)
    write_text_atomic(sm.output.summary, json.dumps(summary, indent=2) + "\n")


run_step(step, log_file=sm.log[0], threads=sm.threads)
