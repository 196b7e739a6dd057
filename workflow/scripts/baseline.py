"""Snakemake wrapper: the k-mer logistic-regression baseline of a store and its test sets
(logic: bioseq.baselines)."""

import logging

from bioseq.baselines import fit_baseline, write_baseline
from bioseq.cli import run_step
from bioseq.config import BaselineConfig
from bioseq.store import EncodedStore

sm = snakemake  # noqa: F821


def step() -> None:
    options = BaselineConfig(**sm.params.baseline)
    test_sets = {name: EncodedStore(path)
                 for name, path in zip(sm.params.test_sets, sm.input.test_sets, strict=True)}
    result = fit_baseline(EncodedStore(sm.input.store), kmax=options.kmer,
                          window=options.window, C=options.C,
                          max_records=options.max_records, test_sets=test_sets,
                          select=sm.params.select)
    write_baseline(result, sm.output.folder,
                   settings={"kmer": options.kmer, "window": options.window,
                             "max_records": options.max_records})
    logging.getLogger("bioseq").info("k-mer baseline: C %g, test accuracy %.4f, %.1f s",
                                     result.C, result.metrics["accuracy"], result.seconds)


run_step(step, log_file=sm.log[0], threads=sm.threads)
