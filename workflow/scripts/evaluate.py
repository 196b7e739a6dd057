"""Snakemake wrapper: test-split metrics, predictions and figures of one model on a data
set's store or on one of its test sets (logic: bioseq.evaluate)."""

import json

import pandas as pd

from bioseq.cli import run_step
from bioseq.evaluate import evaluate, write_evaluation
from bioseq.io import write_text_atomic
from bioseq.report import plots

sm = snakemake  # noqa: F821


def step() -> None:
    result = evaluate(sm.input.model, sm.input.store, split="test")
    write_evaluation(result, metrics_path=sm.output.metrics,
                     predictions_path=sm.output.predictions)
    if "val_metrics" in sm.output.keys():  # cross-validation folds choose models on val
        val = evaluate(sm.input.model, sm.input.store, split="val")
        write_text_atomic(sm.output.val_metrics, json.dumps(val.metrics, indent=2) + "\n")
    if "confusion" not in sm.output.keys():
        return
    title = f"{sm.wildcards.dataset} / {sm.wildcards.model}"
    if "test_set" in sm.wildcards.keys():
        title += f" on {sm.wildcards.test_set}"
    if "curves" in sm.output.keys():
        history = pd.read_csv(sm.input.history, sep="\t")
        with open(sm.input.summary) as handle:
            summary = json.load(handle)
        figure = plots.learning_curves(history, monitor=summary["monitor"], title=title,
                                       label_smoothing=summary.get("label_smoothing"))
        plots.save_figure(figure, sm.output.curves)
    metrics = result.metrics
    if "confusion_matrix" in metrics:
        figure = plots.confusion_matrix(metrics["confusion_matrix"], metrics["labels"],
                                        title=title)
    else:
        figure = plots.message(f"no confusion matrix for a {metrics['task']} task")
    plots.save_figure(figure, sm.output.confusion)


run_step(step, log_file=sm.log[0], threads=sm.threads)
