"""Snakemake wrapper: join the variant-effect shards of one model and plot the scores
(logic: bioseq.variants.merge_variant_shards)."""

from pathlib import Path

from bioseq.cli import log_variant_warnings, run_step
from bioseq.report import plots, variant_score_digest
from bioseq.variants import merge_variant_shards

sm = snakemake  # noqa: F821


def step() -> None:
    summary = merge_variant_shards(list(sm.input.shards), Path(sm.output.scores).parent,
                                   vcf_path=sm.params.vcf)
    log_variant_warnings(summary)
    _, plotted = variant_score_digest(sm.output.scores)  # bounded memory for any VCF size
    name = f"{sm.wildcards.dataset}/{sm.wildcards.model}"
    plots.save_figure(plots.variant_scores(plotted, title=name), sm.output.figure)


run_step(step, log_file=sm.log[0], threads=1)
