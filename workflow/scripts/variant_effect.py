"""Snakemake wrapper: score the configured VCF with one model, and plot the scores
(logic: bioseq.variants)."""

from pathlib import Path

from bioseq.checkpoint import file_checksum, load_model
from bioseq.cli import log_variant_warnings, run_step
from bioseq.genome import Genome
from bioseq.report import plots, variant_score_digest
from bioseq.variants import VariantOptions, score_vcf

sm = snakemake  # noqa: F821


def step() -> None:
    settings = sm.params.settings
    options = VariantOptions(ref_mismatch=settings.ref_mismatch,
                             rc_average=settings.rc_average, window=settings.window,
                             epsilon=settings.epsilon)
    name = f"{sm.wildcards.dataset}/{sm.wildcards.model}"
    predictor = load_model(sm.input.model)
    with Genome(settings.reference, aliases=settings.contig_aliases) as genome:
        summary = score_vcf(predictor, settings.vcf, genome, Path(sm.output.scores).parent,
                            options=options, model_name=name,
                            model_checksum=file_checksum(sm.input.model))
    log_variant_warnings(summary)
    _, plotted = variant_score_digest(sm.output.scores)  # bounded memory for any VCF size
    plots.save_figure(plots.variant_scores(plotted, title=name), sm.output.figure)


run_step(step, log_file=sm.log[0], threads=sm.threads)
