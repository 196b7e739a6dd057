"""Variant effects: a VCF and a reference genome in, model scores of REF vs ALT windows out.

Window policy (one rule for every variant type, so REF and ALT windows line up): with a
model window of W positions and c = W // 2, the REF window holds genome bases
[start - c, start - c + W) where `start` is the 0-based first base of REF, so REF begins at
window position c. The ALT window keeps the same c left-flank bases, then ALT, then the
genome after REF, cut to W. A deletion pulls in more right flank; an insertion pushes it
out. Positions beyond a contig end are N (encoded under the model's ambiguity policy).

Scores per class (or target), in the TSV and as INFO fields of the annotated VCF:
`ref`, `alt`, `diff` = alt - ref, `abs_diff`, and `log_odds` = logit(alt) - logit(ref) with
both clipped to [eps, 1 - eps] (classifiers) or `log2_fc` = log2(max(alt, eps) /
max(ref, eps)) (regression); `max_abs_diff` over all classes ranks the variants.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gc
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TextIO

import numpy as np
import pandas as pd

from .edits import score_edits
from .errors import BioseqError
from .genome import Genome
from .io import atomic_path, concatenate
from .predict import Predictor
from .vcf import AnnotatedVcf, VcfReader, info_id, join_annotated_vcfs

REF_MISMATCH_POLICIES = ("skip", "score")
EPSILON = 1e-6
_BASES = re.compile(r"^[ACGTNacgtn]+$")
_CANONICAL = re.compile(r"^[ACGTacgt]*$")


class Allele(NamedTuple):
    """One REF/ALT pair of a VCF record (a multi-allelic record gives one per ALT)."""

    chrom: str  # as in the VCF
    pos: int  # 1-based, as in the VCF
    id: str
    ref: str
    alt: str
    contig: str  # the reference's name for chrom
    ref_match: bool


def variant_window(genome: Genome, allele: Allele, width: int) -> tuple[str, str]:
    """(REF window, ALT window) of `width` bases; REF/ALT begin at position width // 2."""
    centre, start = width // 2, allele.pos - 1
    right = max(width - centre - len(allele.alt), 0)
    ref_end = centre + len(allele.ref)  # in window coordinates
    # one read covers the REF window and the right flank the ALT window takes after REF
    span = genome.fetch(allele.contig, start - centre,
                        start - centre + max(width, ref_end + right))
    ref_window = span[:width]
    # ALT takes the case of the genome's REF bases, so that a soft-masked region stays
    # soft-masked in both windows (models with `soft_masked: zeros` see no false change)
    alt = allele.alt.lower() if span[centre : centre + 1].islower() else allele.alt.upper()
    alt_window = (span[:centre] + alt + span[ref_end : ref_end + right])[:width]
    return ref_window, alt_window


def ref_matches(genome: Genome, contig: str, pos: int, ref: str) -> bool:
    """Does the genome hold REF at 1-based `pos` (case-insensitive)?"""
    return genome.fetch(contig, pos - 1, pos - 1 + len(ref)).upper() == ref.upper()


def effect_columns(task: str, label_names: Sequence[str], ref: np.ndarray, alt: np.ndarray, *,
                   epsilon: float = EPSILON) -> dict[str, np.ndarray]:
    """Scores (n, outputs) of REF and ALT windows -> named score columns (see module doc).
    Binary models report their positive class only (the other is its complement)."""
    if task == "binary":
        ref, alt, label_names = ref[:, 1:], alt[:, 1:], label_names[1:]
    columns: dict[str, np.ndarray] = {}
    diff = alt - ref
    for j, name in enumerate(label_names):
        columns[f"ref_{name}"] = ref[:, j]
        columns[f"alt_{name}"] = alt[:, j]
        columns[f"diff_{name}"] = diff[:, j]
        columns[f"abs_diff_{name}"] = np.abs(diff[:, j])
        if task == "regression":
            columns[f"log2_fc_{name}"] = (np.log2(np.maximum(alt[:, j], epsilon))
                                          - np.log2(np.maximum(ref[:, j], epsilon)))
        else:
            columns[f"log_odds_{name}"] = _logit(alt[:, j], epsilon) - _logit(ref[:, j], epsilon)
    columns["max_abs_diff"] = np.abs(diff).max(1) if len(label_names) else np.zeros(len(ref))
    return columns


def _logit(p: np.ndarray, epsilon: float) -> np.ndarray:
    p = np.clip(p.astype(np.float64), epsilon, 1 - epsilon)
    return np.log(p) - np.log1p(-p)


def check_variant_model(predictor: Predictor, *, window: int | None, path: str) -> int:
    """The window width a model scores variants in; refuses models that cannot."""
    if predictor.alphabet.name != "dna":
        raise BioseqError(f"model was trained on {predictor.alphabet.name} sequences; variant "
                          "effects need a DNA model (a VCF is scored on a DNA reference)",
                          path=path)
    if predictor.task == "per_residue":
        raise BioseqError("variant effects need a per-sequence model, not per_residue",
                          path=path)
    fixed = predictor.encoder.length.length
    if fixed is not None and window is not None and window != fixed:
        raise BioseqError(f"model takes {fixed}-bp windows; --window {window} differs", path=path)
    width = fixed or window or predictor.encoder.length.max_length
    if width is None:
        raise BioseqError("model pads to the longest sequence; give the window width "
                          "(--window N)", path=path)
    return width


def score_windows(predictor: Predictor, ref_windows: list[str], alt_windows: list[str], *,
                  names: list[str], rc_average: bool = False,
                  batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """REF and ALT windows scored together (one encode, batched forward passes) ->
    (ref scores, alt scores), each (n, outputs) in the model's units."""
    n = len(ref_windows)
    width = len(ref_windows[0]) if n else 1
    if batch_size is None:  # CPU caches favour small batches; GPUs large ones
        batch_size = 512 if predictor.device.type == "cuda" else 128
    chunk = predictor.encoder.encode(names + names, ref_windows + alt_windows, width=width,
                                     source="<variant windows>")
    if (chunk.starts == 0).all() and (chunk.lengths == chunk.tokens.shape[1]).all():
        refs = chunk.tokens[:n]  # (n, width)
        # the ALTs of one site (a multi-allelic record, or a record per ALT, which come one
        # after another in a sorted VCF) share their REF window: it runs once
        new_site = np.ones(n, bool)
        new_site[1:] = (refs[1:] != refs[:-1]).any(1)
        site = np.cumsum(new_site) - 1  # allele -> its REF window among refs[new_site]
        # an SNV's ALT window is its REF window but for one base: recomputed only there
        ref_scores, alt_scores = score_edits(predictor, refs[new_site], chunk.tokens[n:],
                                             site, batch_size=batch_size,
                                             rc_average=rc_average)
        return ref_scores[site], alt_scores
    # full precision on GPUs too: effects are small differences of two scores
    scores = predictor.score_tokens(chunk.tokens, chunk.starts, chunk.lengths,
                                    batch_size=batch_size, rc_average=rc_average,
                                    full_precision=True)
    return scores[:n], scores[n:]  # (n, outputs) each


@dataclass
class VariantSummary:
    """What a variant-effect run did, counted per outcome."""

    records: int = 0
    alleles: int = 0
    scored: int = 0
    ref_mismatches: int = 0  # scored or skipped, by the ref_mismatch policy
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> alleles
    missing_contigs: dict[str, int] = field(default_factory=dict)  # VCF contig -> records
    # VCF header contig lengths that differ from the reference's: another genome build?
    contig_length_mismatches: dict[str, list[int]] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


@dataclass(frozen=True)
class VariantOptions:
    ref_mismatch: str = "skip"  # skip | score (with the genome's bases in the REF window)
    rc_average: bool = False  # mean of forward and reverse-complement scores
    window: int | None = None  # only for models that pad to the longest sequence
    batch_size: int | None = None  # None: 128 on CPU, 512 on CUDA
    chunk_size: int = 4096  # alleles scored together; memory does not grow past a chunk
    epsilon: float = EPSILON
    info_prefix: str = "BIOSEQ"

    def __post_init__(self) -> None:
        if self.ref_mismatch not in REF_MISMATCH_POLICIES:
            raise BioseqError(f"ref_mismatch must be one of {REF_MISMATCH_POLICIES}, "
                              f"not '{self.ref_mismatch}'")
        if not 0 < self.epsilon < 0.5:
            raise BioseqError(f"epsilon must be in (0, 0.5), not {self.epsilon}")


def record_alleles(record, genome: Genome, summary: VariantSummary, *,
                   ref_mismatch: str) -> tuple[bool | None, list[tuple[int, Allele | str]]]:
    """Whether REF matches the genome (None: contig not in it), and for each ALT of the
    record (ALT index, the Allele to score or the reason it is skipped)."""
    chrom, pos, ref = record.chrom, record.pos, record.ref or ""  # pysam decodes each read
    alts = record.alts or (".",)
    contig = genome.contig(chrom)
    inside = contig is not None and pos - 1 + len(ref) <= genome.lengths[contig]
    dna_ref = bool(_BASES.match(ref))
    match = inside and dna_ref and ref_matches(genome, contig, pos, ref)
    out: list[tuple[int, Allele | str]] = []
    for k, alt in enumerate(alts):
        if contig is None:
            reason = "contig_not_in_reference"
        elif not inside:
            reason = "outside_contig"  # a position past the end: another genome build?
        elif alt in (".", "*") or alt.startswith("<") or "[" in alt or "]" in alt:
            reason = "symbolic_or_missing_alt"
        elif not dna_ref or not _BASES.match(alt):
            reason = "not_a_dna_allele"
        elif alt.upper() == ref.upper():
            reason = "alt_equals_ref"
        elif not match and ref_mismatch == "skip":
            reason = "ref_mismatch"
        else:
            reason = None
        if reason is None:
            out.append((k, Allele(chrom, pos, record.id or ".", ref, alt, contig, match)))
        else:
            out.append((k, reason))
    if contig is None:
        summary.missing_contigs[chrom] = summary.missing_contigs.get(chrom, 0) + 1
    summary.ref_mismatches += int(inside and not match) * len(alts)
    return (match if contig is not None else None), out


SCORE_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "ref_match")
SKIPPED_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "reason")


def score_vcf(predictor: Predictor, vcf_path: str | os.PathLike, genome: Genome,
              out_dir: str | os.PathLike, *, options: VariantOptions = VariantOptions(),
              model_name: str = "model", model_checksum: str = "",
              records: tuple[int, int] | None = None) -> VariantSummary:
    """Score every REF/ALT pair of a VCF; writes into `out_dir` (replaced only on success):
    `scores.tsv` (one row per scored variant x ALT), `skipped.tsv` (with the reason),
    `annotated.vcf.gz` (+ `.tbi`) and `summary.json`. Streams in chunks of
    `options.chunk_size` alleles. Python's cycle collector is paused while it scores (for
    the whole process: see _no_cyclic_gc). `records=(begin, end)` scores only the records numbered
    [begin, end) in file order (one shard; `merge_variant_shards` joins the shards)."""
    width = check_variant_model(predictor, window=options.window, path=model_name)
    reader = VcfReader(vcf_path)
    summary = VariantSummary(contig_length_mismatches=contig_length_mismatches(reader, genome))
    try:
        with atomic_path(out_dir, directory=True, marker="summary.json") as tmp:
            run = _VariantRun(predictor, genome, width, options, summary, tmp / "scores.tsv",
                              tmp / "skipped.tsv")
            annotated = AnnotatedVcf(reader, tmp / "annotated.vcf.gz",
                                     fields=info_fields(predictor, options, model_name,
                                                        model_checksum),
                                     meta=_model_meta(predictor, model_name, model_checksum),
                                     prefix=options.info_prefix)
            source = reader if records is None else itertools.islice(reader, *records)
            with _no_cyclic_gc():
                for chunk in _record_chunks(source, options.chunk_size):
                    for record, values in zip(chunk, run.score(chunk), strict=True):
                        annotated.write(record, values)
            annotated.close()
            run.close()
            if records is None:  # a shard may hold only skipped records: checked when merged
                _check_scored(summary, genome, vcf_path)
            (tmp / "summary.json").write_text(json.dumps(dataclasses.asdict(summary),
                                                         indent=2) + "\n")
    finally:
        reader.close()
    return summary


def contig_length_mismatches(reader: VcfReader, genome: Genome) -> dict[str, list[int]]:
    """VCF contig -> [length in the VCF header, length in the reference] where they differ."""
    found = {}
    for name, contig in reader.file.header.contigs.items():
        target = genome.contig(name)
        if target is not None and contig.length and contig.length != genome.lengths[target]:
            found[name] = [int(contig.length), genome.lengths[target]]
    return found


def count_vcf_records(path: str | os.PathLike) -> int:
    """Data records of a VCF/BCF (read through once; for splitting it into shards)."""
    reader = VcfReader(path)
    try:
        return sum(1 for _ in reader)
    finally:
        reader.close()


def merge_variant_shards(parts: list[str | os.PathLike], out_dir: str | os.PathLike, *,
                         vcf_path: str | os.PathLike = "<vcf>") -> VariantSummary:
    """Join the output folders of `score_vcf` shards (in record order) into one folder
    with the same files, as if the whole VCF had been scored in one run."""
    parts = [Path(p) for p in parts]
    summary = VariantSummary()
    for part in parts:
        shard = json.loads((part / "summary.json").read_text())
        for key in ("records", "alleles", "scored", "ref_mismatches"):
            setattr(summary, key, getattr(summary, key) + shard[key])
        for key in ("skipped", "missing_contigs"):
            counts = getattr(summary, key)
            for name, n in shard[key].items():
                counts[name] = counts.get(name, 0) + n
        summary.contig_length_mismatches.update(shard["contig_length_mismatches"])
    if summary.records and not summary.scored:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.skipped.items()))
        missing = ", ".join(sorted(summary.missing_contigs))
        hint = (f"; VCF contig(s) {missing} not in the reference (map names with contig "
                "aliases)") if missing else ""
        raise BioseqError(f"no variant could be scored ({reasons}){hint}", path=str(vcf_path))
    with atomic_path(out_dir, directory=True, marker="summary.json") as tmp:
        for name in ("scores.tsv", "skipped.tsv"):
            concatenate([p / name for p in parts], tmp / name, header_lines=1)
        join_annotated_vcfs([p / "annotated.vcf.gz" for p in parts], tmp / "annotated.vcf.gz")
        (tmp / "summary.json").write_text(json.dumps(dataclasses.asdict(summary), indent=2)
                                          + "\n")
    return summary


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector paused (reference counting still frees every object): a
    chunk's alleles outlive the young generations, so every few chunks the collector
    walked every object of the process (torch's alone are ~250,000), 10% of score_vcf's
    time; the scoring loop makes no reference cycles. Re-enabled as it was found."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _record_chunks(reader: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for record in reader:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_scored(summary: VariantSummary, genome: Genome, vcf_path) -> None:
    """No silent empty output: a run that scored nothing says why."""
    if summary.scored or not summary.records:  # a header-only VCF (an empty shard) is fine
        return
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.skipped.items()))
    hint = ""
    if summary.missing_contigs:
        missing = ", ".join(sorted(summary.missing_contigs))
        hint = (f"; VCF contig(s) {missing} not in reference {genome.describe()} "
                "(map names with --contig-alias VCF_NAME=FASTA_NAME)")
    raise BioseqError(f"no variant could be scored ({reasons}){hint}", path=str(vcf_path))


def info_fields(predictor: Predictor, options: VariantOptions, model_name: str,
                checksum: str = "") -> dict[str, tuple[str, str, str]]:
    """Column -> (Number, Type, Description) of the INFO fields the annotated VCF gains."""
    names = predictor.label_names[1:] if predictor.task == "binary" else predictor.label_names
    unit = "value" if predictor.task == "regression" else "probability"
    change = "log2_fc" if predictor.task == "regression" else "log_odds"
    change_text = ("log2(alt/ref), both clipped below at eps" if change == "log2_fc"
                   else "logit(alt) - logit(ref), probabilities clipped to [eps, 1-eps]")
    by = f"by bioseq model {model_name}" + (f" ({checksum[:19]})" if checksum else "") + (
        " averaged over both strands" if options.rc_average else "")
    fields: dict[str, tuple[str, str, str]] = {}
    for name in names:
        fields[f"ref_{name}"] = ("A", "Float", f"{name} {unit} of the REF window {by}")
        fields[f"alt_{name}"] = ("A", "Float", f"{name} {unit} of the ALT window {by}")
        fields[f"diff_{name}"] = ("A", "Float", f"{name}: alt - ref {unit} {by}")
        fields[f"{change}_{name}"] = ("A", "Float", f"{name}: {change_text} {by}")
    fields["max_abs_diff"] = ("A", "Float", f"largest |alt - ref| over all outputs {by}")
    fields["ref_match"] = ("1", "Integer", "1 if REF equals the reference genome, else 0")
    fields["skipped"] = ("A", "String", "why this ALT was not scored")
    return fields


def _model_meta(predictor: Predictor, model_name: str, checksum: str) -> dict[str, str]:
    return {"ID": model_name, "Checksum": checksum or "unknown",
            "Architecture": predictor.checkpoint.get("architecture", "unknown"),
            "Version": predictor.checkpoint.get("bioseq_version", "unknown"),
            "Description": "model that scored the variants of this file"}


_NEEDS_QUOTES = re.compile(r'["\t\r\n]')


def write_score_rows(handle: TextIO, alleles: Sequence[Allele],
                     columns: dict[str, np.ndarray], *, header: bool) -> None:
    """scores.tsv rows (and the header line first when `header`), as pandas'
    to_csv(sep="\t", float_format="%.6g") writes them, but one %-format per row: building a
    DataFrame cost more than the model's forward pass of the two windows."""
    names = ["chrom", "pos", "id", "ref", "alt", "ref_match", *columns]
    if header:
        csv.writer(handle, delimiter="\t", lineterminator="\n").writerow(names)
    table = np.column_stack(list(columns.values())).astype(np.float64)  # (alleles, scores)
    text = "".join(s for a in alleles for s in (a.chrom, a.id, a.ref, a.alt))
    if np.isnan(table).any() or _NEEDS_QUOTES.search(text):  # pandas' empty NaN, quoting
        frame = pd.DataFrame({"chrom": [a.chrom for a in alleles],
                              "pos": [a.pos for a in alleles], "id": [a.id for a in alleles],
                              "ref": [a.ref for a in alleles], "alt": [a.alt for a in alleles],
                              "ref_match": [a.ref_match for a in alleles], **columns})
        frame.to_csv(handle, sep="\t", index=False, header=False, float_format="%.6g")
        return
    row = "%s\t%d\t%s\t%s\t%s\t%s" + "\t%.6g" * table.shape[1] + "\n"
    handle.write("".join(row % (a.chrom, a.pos, a.id, a.ref, a.alt, a.ref_match, *values)
                         for a, values in zip(alleles, table.tolist(), strict=True)))


def info_template(columns: Sequence[str], prefix: str) -> str:
    """str.format text of the INFO fields of a record with one ALT: a finite float per score
    column (`.6g`, as AnnotatedVcf.write formats them), then ref_match as 0 or 1."""
    keys = [info_id(prefix, c) for c in (*columns, "ref_match")]
    return ";".join(f"{key}={{:.6g}}" for key in keys[:-1]) + f";{keys[-1]}={{:d}}"


class _VariantRun:
    """Scores chunks of records and streams the two tables; keeps nothing between chunks."""

    def __init__(self, predictor: Predictor, genome: Genome, width: int,
                 options: VariantOptions, summary: VariantSummary, scores_path: Path,
                 skipped_path: Path):
        self.predictor, self.genome, self.width = predictor, genome, width
        self.options, self.summary = options, summary
        self.scores = open(scores_path, "w", encoding="utf-8")
        self.skipped = open(skipped_path, "w", encoding="utf-8")
        self.skipped.write("\t".join(SKIPPED_COLUMNS) + "\n")
        self.first = True
        self.info_columns = [c for c in info_fields(predictor, options, "")
                             if c not in ("ref_match", "skipped")]
        self.template = info_template(self.info_columns, options.info_prefix)
        self.strict = predictor.encoder.encoding.ambiguous == "error"

    def score(self, records: list) -> list[dict | str]:
        """INFO for each record of the chunk: the text of its one scored ALT (the common
        case, formatted at once) or column -> one value per ALT."""
        alleles, windows, alts, states = [], [], [], []
        for record in records:
            self.summary.records += 1
            match, entries = record_alleles(record, self.genome, self.summary,
                                            ref_mismatch=self.options.ref_mismatch)
            skipped: list[str | None] = [None] * len(entries)
            first = len(alleles)
            for k, item in entries:
                self.summary.alleles += 1
                if not isinstance(item, str):
                    window = variant_window(self.genome, item, self.width)
                    if not (self.strict and not all(map(_CANONICAL.match, window))):
                        alleles.append(item)
                        windows.append(window)
                        alts.append(k)
                        continue
                    item = "ambiguous_bases_in_window"  # the model refuses N and IUPAC
                self.summary.skip(item)
                skipped[k] = item
                self._write_skipped(record, k, item)
            states.append((match, skipped, first, len(alleles)))
        values, finite = self._score_alleles(alleles, windows) if alleles else ([], [])
        return [self._info(match, skipped, alts[first:end], values[first:end],
                           finite[first:end])
                for match, skipped, first, end in states]

    def _info(self, match: bool | None, skipped: list[str | None], alts: list[int],
              values: list[list[float]], finite: list[bool]) -> dict | str:
        """A record's INFO: `alts` its scored ALTs, `values` their values in info_columns
        order, `finite` whether those hold no NaN, `skipped` the reason per ALT (None
        where scored)."""
        if len(skipped) == 1 and alts and finite[0]:
            return self.template.format(*values[0], int(match))
        info: dict = {c: [None] * len(skipped) for c in self.info_columns}
        for k, row in zip(alts, values, strict=True):
            for column, value in zip(self.info_columns, row, strict=True):
                info[column][k] = value
        info["skipped"] = skipped
        if match is not None:
            info["ref_match"] = int(match)
        return info

    def _score_alleles(self, alleles: list[Allele], windows: list[tuple[str, str]]
                       ) -> tuple[list[list[float]], list[bool]]:
        """Scores the chunk's alleles and writes their rows of scores.tsv -> per allele its
        info_columns values, and whether none of them is NaN."""
        names = [f"{a.chrom}:{a.pos}:{a.ref}>{a.alt}" for a in alleles]
        ref, alt = score_windows(self.predictor, [w[0] for w in windows],
                                 [w[1] for w in windows], names=names,
                                 rc_average=self.options.rc_average,
                                 batch_size=self.options.batch_size)
        columns = effect_columns(self.predictor.task, self.predictor.label_names, ref, alt,
                                 epsilon=self.options.epsilon)
        write_score_rows(self.scores, alleles, columns, header=self.first)
        self.first = False
        self.summary.scored += len(alleles)
        table = np.column_stack([columns[c] for c in self.info_columns]).astype(np.float64)
        # (alleles, info columns) as Python floats; NaN rows go through AnnotatedVcf.write
        return table.tolist(), (~np.isnan(table).any(1)).tolist()

    def _write_skipped(self, record, k: int, reason: str) -> None:
        alt = record.alts[k] if record.alts else "."
        self.skipped.write(f"{record.chrom}\t{record.pos}\t{record.id or '.'}\t"
                           f"{record.ref}\t{alt}\t{reason}\n")

    def close(self) -> None:
        if self.first:  # nothing scored: still a table with its header
            self.scores.write("\t".join(SCORE_COLUMNS) + "\n")
        self.scores.close()
        self.skipped.close()

