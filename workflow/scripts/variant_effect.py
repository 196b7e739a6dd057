"""Snakemake wrapper: score one shard of the configured VCF with one model
(logic: bioseq.variants)."""

from bioseq.checkpoint import file_checksum, load_model
from bioseq.cli import log_variant_warnings, run_step
from bioseq.genome import Genome
from bioseq.io import shard_bounds
from bioseq.variants import VariantOptions, count_vcf_records, score_vcf

sm = snakemake  # noqa: F821


def step() -> None:
    settings = sm.params.settings
    options = VariantOptions(ref_mismatch=settings.ref_mismatch,
                             rc_average=settings.rc_average, window=settings.window,
                             epsilon=settings.epsilon)
    shard, shards = int(sm.wildcards.shard), int(sm.wildcards.shards)
    records = (None if shards == 1
               else shard_bounds(count_vcf_records(settings.vcf), shard, shards))
    predictor = load_model(sm.input.model)
    with Genome(settings.reference, aliases=settings.contig_aliases) as genome:
        summary = score_vcf(predictor, settings.vcf, genome, sm.output.shard, options=options,
                            model_name=f"{sm.wildcards.dataset}/{sm.wildcards.model}",
                            model_checksum=file_checksum(sm.input.model), records=records)
    log_variant_warnings(summary)


run_step(step, log_file=sm.log[0], threads=sm.threads)
