"""Snakemake wrapper: in-silico saturation mutagenesis of one region with one model, and
its heat map (logic: bioseq.mutagenesis)."""

from pathlib import Path

from bioseq.checkpoint import load_model
from bioseq.cli import run_step
from bioseq.genome import Genome
from bioseq.mutagenesis import region_mutagenesis, write_ism
from bioseq.report import plots

sm = snakemake  # noqa: F821


def step() -> None:
    settings = sm.params.settings
    predictor = load_model(sm.input.model)
    with Genome(settings.reference, aliases=settings.contig_aliases) as genome:
        result = region_mutagenesis(predictor, genome, sm.params.region,
                                    window=settings.window, rc_average=settings.rc_average,
                                    model_path=sm.input.model)
    write_ism(result, Path(sm.output.meta).parent)
    title = f"{sm.wildcards.dataset}/{sm.wildcards.model}: {result.region}"
    plots.save_figure(plots.ism_heatmap(result, title=title), sm.output.heatmap)


run_step(step, log_file=sm.log[0], threads=sm.threads)
