"""Snakemake wrapper: in-silico saturation mutagenesis of one region with one model, and
its heat map (logic: bioseq.mutagenesis)."""

import logging
from pathlib import Path

from bioseq.checkpoint import load_model
from bioseq.cli import run_step
from bioseq.genome import Genome
from bioseq.mutagenesis import genome_window, saturation_mutagenesis, write_ism
from bioseq.report import plots
from bioseq.variants import check_variant_model

sm = snakemake  # noqa: F821


def step() -> None:
    settings = sm.params.settings
    predictor = load_model(sm.input.model)
    width = check_variant_model(predictor, window=settings.window, path=sm.input.model)
    with Genome(settings.reference, aliases=settings.contig_aliases) as genome:
        sequence, region = genome_window(genome, sm.params.region, width)
    if region != sm.params.region.replace(",", ""):
        logging.getLogger("bioseq").warning("the model reads %d bp: mutating %s, the window "
                                            "centred on %s", width, region, sm.params.region)
    result = saturation_mutagenesis(predictor, sequence, rc_average=settings.rc_average,
                                    region=region)
    write_ism(result, Path(sm.output.meta).parent)
    title = f"{sm.wildcards.dataset}/{sm.wildcards.model}: {region}"
    plots.save_figure(plots.ism_heatmap(result, title=title), sm.output.heatmap)


run_step(step, log_file=sm.log[0], threads=sm.threads)
