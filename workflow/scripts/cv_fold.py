"""Snakemake wrapper: one cross-validation fold of a store (logic: bioseq.crossval)."""

import logging

from bioseq.cli import run_step
from bioseq.crossval import write_fold_store

sm = snakemake  # noqa: F821


def step() -> None:
    cv = sm.params.cv
    meta = write_fold_store(sm.input.store, sm.output.store, fold=int(sm.wildcards.fold),
                            folds=cv.folds, val_fraction=cv.val_fraction, seed=cv.seed)
    grouped = " (homology clusters kept whole)" if meta["cv"]["grouped_by"] else ""
    logging.getLogger("bioseq").info("fold %s of %d%s: splits %s", sm.wildcards.fold, cv.folds,
                                     grouped, meta["counts"]["splits"])


run_step(step, log_file=sm.log[0], threads=sm.threads)
