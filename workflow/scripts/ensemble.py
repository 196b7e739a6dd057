"""Snakemake wrapper: score the mean of a fold's top-N models, ranked on the fold's val
split (logic: bioseq.crossval.rank_models, bioseq.evaluate)."""

import json
import logging
from pathlib import Path

from bioseq.cli import run_step
from bioseq.crossval import rank_models
from bioseq.evaluate import evaluate, write_evaluation

sm = snakemake  # noqa: F821


def step() -> None:
    val = {Path(path).parent.name: json.loads(Path(path).read_text())
           for path in sm.input.val_metrics}
    members = rank_models(val, select=sm.params.select)[: sm.params.top]
    checkpoints = {Path(path).parent.name: path for path in sm.input.models}
    result = evaluate([checkpoints[m] for m in members], sm.input.store, split="test")
    result.metrics["ensemble"] = members
    logging.getLogger("bioseq").info("ensemble of %s (top %d by val %s)", ", ".join(members),
                                     sm.params.top, sm.params.select)
    write_evaluation(result, metrics_path=sm.output.metrics,
                     predictions_path=sm.output.predictions)


run_step(step, log_file=sm.log[0], threads=sm.threads)
