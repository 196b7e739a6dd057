"""Snakemake wrapper: encode one dataset, or one of its test sets, into a store
(logic: bioseq.store)."""

from bioseq.cli import log_encoding, run_step
from bioseq.config import dataset_config
from bioseq.store import encode_dataset, encode_test_set

sm = snakemake  # noqa: F821


def step() -> None:
    dataset = dataset_config(sm.wildcards.dataset, sm.params.dataset)
    if sm.params.test_set:
        meta = encode_test_set(dataset, sm.params.test_set, sm.output.store,
                               store_dir=sm.input.store)
    else:
        meta = encode_dataset(dataset, sm.output.store)
    log_encoding(meta)


run_step(step, log_file=sm.log[0], threads=sm.threads)
