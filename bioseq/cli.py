"""Command line: `bioseq encode|train|evaluate|predict|variant-effect|ism|report` (and
`merge-variant-shards`).

Every failure the user can fix is one line on stderr (`bioseq: error: ...`) and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch

from . import __version__
from .allocator import keep_freed_memory
from .config import dataset_config, expand_models, load_yaml, model_config
from .errors import BioseqError

log = logging.getLogger("bioseq")


def _section(config: dict, key: str, name: str, path: str) -> dict:
    entries = config.get(key) or {}
    if name not in entries:
        raise BioseqError(f"no {key[:-1]} named '{name}' (have: {', '.join(entries) or 'none'})",
                          path=path)
    return entries[name]


def cmd_encode(args: argparse.Namespace) -> None:
    from .store import encode_dataset, encode_test_set

    config = load_yaml(args.config)
    dataset = dataset_config(args.dataset, _section(config, "datasets", args.dataset, args.config))
    if args.test_set:
        if not args.store:
            raise BioseqError("--test-set needs --store (the data set's own store)")
        meta = encode_test_set(dataset, args.test_set, args.out, store_dir=args.store)
    else:
        meta = encode_dataset(dataset, args.out)
    log_encoding(meta)


def log_encoding(meta: dict) -> None:
    counts = meta["counts"]
    log.info("encoded %d records (%d duplicates and %d conflicting-label records dropped; "
             "dropped for being in a test set: %s; splits %s)", counts["records"],
             counts["duplicates_dropped"], counts["conflicting_label_records_dropped"],
             counts.get("test_set_overlap_dropped") or 0, counts["splits"])


def cmd_train(args: argparse.Namespace) -> None:
    from .distributed import from_environment
    from .training import train_from_store

    config = load_yaml(args.config)
    models = {"models": expand_models(config.get("models") or {}).entries}  # cnn.g1, ...
    model = model_config(args.model, _section(models, "models", args.model, args.config),
                         config.get("training"))
    result = train_from_store(args.store, architecture=model.architecture,
                              params=dict(model.params), train=vars(model.train),
                              out_dir=args.out, device=args.device,
                              distributed=from_environment())
    log.info("best epoch %d, %s %.4f, %.1f s on %s", result.best_epoch, result.monitor,
             result.best_score, result.seconds, result.device)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate, write_evaluation

    models = args.model_file[0] if len(args.model_file) == 1 else args.model_file
    evaluation = evaluate(models, args.store, split=args.split, device=args.device,
                          rc_average=args.rc_average)
    out = Path(args.out)
    prefix = "" if args.split == "test" else f"{args.split}_"  # test keeps the plain names
    write_evaluation(evaluation, metrics_path=out / f"{prefix}metrics.json",
                     predictions_path=out / f"{args.split}_predictions.tsv")
    shown = {k: v for k, v in evaluation.metrics.items() if isinstance(v, float)}
    log.info("%s", json.dumps(shown))


def cmd_predict(args: argparse.Namespace) -> None:
    import pandas as pd

    from .checkpoint import load_model
    from .evaluate import write_table
    from .predict import residue_long_form, write_residue_fasta

    predictor = load_model(args.model_file, device=args.device)
    if args.fasta_out and predictor.task != "per_residue":
        raise BioseqError("--fasta-out is for per-residue models (predicted label strings)")
    frames = [predictor.predict_fasta(path, batch_size=args.batch_size,
                                      rc_average=args.rc_average, records=records)
              for path, records in fasta_shard(args.fasta, args.shard)]
    frame = pd.concat(frames, ignore_index=True) if frames else predictor.predict([])
    if predictor.task == "per_residue":
        if args.fasta_out:
            write_residue_fasta(frame, args.fasta_out)
        frame = residue_long_form(frame, predictor.label_names)
    write_table(frame, args.out)
    log.info("wrote %d predictions to %s", len(frame), args.out)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise BioseqError(f"--shard must look like K/N (e.g. 2/8), not '{text}'") from None
    return k, n


def fasta_shard(paths: list[str], shard: str | None
                ) -> list[tuple[str, tuple[int, int] | None]]:
    """(file, [begin, end) of its records) of shard `K/N` of the files' records taken in
    order; every file whole without a shard."""
    from .io import count_records, shard_bounds

    if shard is None:
        return [(path, None) for path in paths]
    k, n = parse_shard(shard)
    counts = [count_records(path) for path in paths]
    begin, end = shard_bounds(sum(counts), k, n)
    log.info("shard %d/%d: records %d-%d of %d", k, n, begin + 1, end, sum(counts))
    pieces, offset = [], 0
    for path, count in zip(paths, counts, strict=True):
        low, high = max(begin - offset, 0), min(end - offset, count)
        if low < high:
            pieces.append((path, (low, high)))
        offset += count
    return pieces


def cmd_variant_effect(args: argparse.Namespace) -> None:
    from .checkpoint import file_checksum, load_model
    from .genome import Genome, parse_aliases
    from .io import shard_bounds
    from .variants import VariantOptions, count_vcf_records, score_vcf

    options = VariantOptions(ref_mismatch=args.ref_mismatch, rc_average=args.rc_average,
                             window=args.window, batch_size=args.batch_size,
                             info_prefix=args.info_prefix, epsilon=args.epsilon)
    predictor = load_model(args.model_file, device=args.device)
    name = args.model_name or str(Path(args.model_file))
    records = None
    if args.shard:
        total = count_vcf_records(args.vcf)
        records = shard_bounds(total, *parse_shard(args.shard))
        log.info("shard %s: records %d-%d of %d", args.shard, records[0] + 1, records[1], total)
    with Genome(args.reference, aliases=parse_aliases(args.contig_alias)) as genome:
        summary = score_vcf(predictor, args.vcf, genome, args.out, options=options,
                            model_name=name, model_checksum=file_checksum(args.model_file),
                            records=records)
    log.info("%d records, %d alleles: %d scored, skipped %s; REF mismatches %d", summary.records,
             summary.alleles, summary.scored, summary.skipped or "none", summary.ref_mismatches)
    log_variant_warnings(summary)


def cmd_merge_variant_shards(args: argparse.Namespace) -> None:
    from .variants import merge_variant_shards

    summary = merge_variant_shards(args.parts, args.out)
    log.info("merged %d shards: %d records, %d alleles scored", len(args.parts),
             summary.records, summary.scored)


def log_variant_warnings(summary) -> None:
    if not summary.records:
        log.warning("the VCF has no records: empty tables written")
    if summary.missing_contigs:
        log.warning("VCF contigs not in the reference (records skipped): %s; map names with "
                    "--contig-alias VCF_NAME=FASTA_NAME", summary.missing_contigs)
    for name, (in_vcf, in_fasta) in summary.contig_length_mismatches.items():
        log.warning("contig %s is %d bp in the VCF header but %d bp in the reference: are "
                    "they the same genome build?", name, in_vcf, in_fasta)


def cmd_ism(args: argparse.Namespace) -> None:
    from .checkpoint import load_model
    from .genome import Genome, parse_aliases
    from .mutagenesis import region_mutagenesis, saturation_mutagenesis, write_ism

    predictor = load_model(args.model_file, device=args.device)
    if bool(args.sequence) == bool(args.region):
        raise BioseqError("give --sequence, or --region with --reference")
    if args.sequence:
        result = saturation_mutagenesis(predictor, args.sequence, rc_average=args.rc_average)
    elif not args.reference:
        raise BioseqError("--region needs --reference")
    else:
        with Genome(args.reference, aliases=parse_aliases(args.contig_alias)) as genome:
            result = region_mutagenesis(predictor, genome, args.region, window=args.window,
                                        rc_average=args.rc_average,
                                        model_path=args.model_file)
    write_ism(result, args.out)
    log.info("scored %d substitutions of a %d-long sequence%s", result.effects.shape[0] *
             (len(result.letters) - 1), len(result.sequence),
             f" ({result.region})" if result.region else "")


def cmd_report(args: argparse.Namespace) -> None:
    from .report import build_report

    config = load_yaml(args.config) if args.config else None
    build_report(args.results, args.out, config=config)
    log.info("wrote %s", args.out)


def configure(*, log_file: str | None = None, threads: int | None = None) -> None:
    """Logging (and stderr, for progress bars and warnings) to `log_file`; torch threads."""
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_file, "a", buffering=1)  # noqa: SIM115  lives for the process
    # under torchrun, rank 0 speaks for the job; the other ranks report only problems
    level = logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, force=True,
                        format="%(asctime)s %(name)s: %(message)s")
    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory()  # batches reuse their activations' pages (bioseq.allocator)


def run_step(step, *, log_file: str | None = None, threads: int | None = None) -> None:
    """Run one workflow step: bad input ends as one line in the log and exit status 1."""
    configure(log_file=log_file, threads=threads)
    try:
        step()
    except BioseqError as err:
        log.error("bioseq: error: %s", err)
        sys.exit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bioseq", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"bioseq {__version__}")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("encode", help="FASTA + labels -> encoded store")
    p.add_argument("--config", required=True, help="YAML with a 'datasets' section")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="store directory to write")
    p.add_argument("--test-set", default=None, help="encode this test set of the data set")
    p.add_argument("--store", default=None, help="with --test-set: the data set's own store")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("train", help="train a model on an encoded store")
    p.add_argument("--config", required=True, help="YAML with 'models' (and 'training')")
    p.add_argument("--model", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True, help="directory for model.pt, history.tsv")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA if present)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a model (or an ensemble) on a store split")
    p.add_argument("--model-file", required=True, nargs="+",
                   help="checkpoint; several are scored as an ensemble (mean probability)")
    p.add_argument("--store", required=True)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--out", required=True, help="directory for metrics.json and predictions")
    p.add_argument("--device", default=None)
    p.add_argument("--rc-average", action="store_true", help="average both strands (DNA)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="predict every record of FASTA file(s)")
    p.add_argument("--model-file", required=True)
    p.add_argument("--fasta", required=True, nargs="+")
    p.add_argument("--out", required=True,
                   help="TSV to write (per-residue models: one row per residue)")
    p.add_argument("--fasta-out", default=None,
                   help="per-residue models: also write the predicted label strings as FASTA")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--rc-average", action="store_true", help="average both strands (DNA)")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="predict only the K-th of N equal runs of the records (1-based), "
                        "for jobs that split a large input; concatenating the N outputs "
                        "in order gives the whole table")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("variant-effect", help="score REF vs ALT of every VCF variant")
    p.add_argument("--model-file", required=True, help="a DNA per-sequence checkpoint")
    p.add_argument("--vcf", required=True, help="VCF, VCF.gz (bgzip or gzip) or BCF")
    p.add_argument("--reference", required=True,
                   help="reference FASTA: plain, or bgzip with .fai and .gzi")
    p.add_argument("--out", required=True, help="directory for scores.tsv, skipped.tsv, "
                   "annotated.vcf.gz(.tbi) and summary.json")
    p.add_argument("--contig-alias", nargs="+", default=None, metavar="VCF_NAME=FASTA_NAME",
                   help="VCF contig names that the reference spells differently")
    p.add_argument("--ref-mismatch", default="skip", choices=("skip", "score"),
                   help="REF differs from the genome: skip the variant, or score it anyway")
    p.add_argument("--rc-average", action="store_true",
                   help="average forward and reverse-complement scores")
    p.add_argument("--window", type=int, default=None,
                   help="window width, for models that pad to the longest sequence")
    p.add_argument("--batch-size", type=int, default=None,
                   help="windows per forward pass (default: 128 on CPU, 512 on CUDA)")
    p.add_argument("--info-prefix", default="BIOSEQ", help="prefix of the INFO fields added")
    p.add_argument("--epsilon", type=float, default=1e-6,
                   help="probabilities are clipped to [eps, 1 - eps] for log_odds")
    p.add_argument("--model-name", default=None, help="name in the VCF header (default: path)")
    p.add_argument("--device", default=None)
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="score only the K-th of N equal runs of the records (1-based); "
                        "join the N output folders with merge-variant-shards")
    p.set_defaults(func=cmd_variant_effect)

    p = sub.add_parser("merge-variant-shards",
                       help="join variant-effect --shard output folders, in shard order")
    p.add_argument("--parts", required=True, nargs="+", help="the shards' --out folders")
    p.add_argument("--out", required=True, help="folder for the joined outputs")
    p.set_defaults(func=cmd_merge_variant_shards)

    p = sub.add_parser("ism", help="in-silico saturation mutagenesis of a sequence or region")
    p.add_argument("--model-file", required=True)
    p.add_argument("--sequence", default=None, help="the sequence to mutate")
    p.add_argument("--region", default=None,
                   help="contig:start-end (1-based); the model window centred on it")
    p.add_argument("--reference", default=None, help="with --region: reference FASTA")
    p.add_argument("--contig-alias", nargs="+", default=None, metavar="NAME=FASTA_NAME")
    p.add_argument("--window", type=int, default=None,
                   help="window width, for models that pad to the longest sequence")
    p.add_argument("--rc-average", action="store_true")
    p.add_argument("--out", required=True, help="directory for ism.tsv, ism.npy, ism.json")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_ism)

    p = sub.add_parser("report", help="HTML report of a results folder")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default="results/report.html")
    p.add_argument("--config", default=None, help="config to show in the report")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure(threads=args.threads)
    try:
        args.func(args)
    except BioseqError as err:
        print(f"bioseq: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bioseq: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
