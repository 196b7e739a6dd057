"""Variant effects: windows checked by hand on the chr20 slice (VCF positions are 1-based),
scores against direct predictions, skipped records, the annotated VCF read back by pysam."""

from __future__ import annotations

import gc
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

import bioseq
import bioseq.variants as variants
from bioseq.alphabets import get_alphabet
from bioseq.checkpoint import save_checkpoint
from bioseq.encoding import EncodingPolicy, LengthPolicy
from bioseq.errors import BioseqError
from bioseq.genome import Genome
from bioseq.models import build_model
from bioseq.variants import (
    SCORE_COLUMNS,
    Allele,
    VariantOptions,
    _VariantRun,
    effect_columns,
    score_vcf,
    score_windows,
    variant_window,
    write_score_rows,
)

REPO = Path(__file__).resolve().parents[1]
SLICE = REPO / "resources" / "genome" / "GRCh37_chr20_1-2000000.fa.gz"
DEMO_VCF = REPO / "resources" / "variants" / "demo.vcf"
SHARED = REPO.parent / "shared" / "data"
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def allele(pos: int, ref: str, alt: str, *, match: bool = True) -> Allele:
    return Allele("20", pos, ".", ref, alt, "20", match)


@pytest.fixture(scope="module")
def genome():
    with Genome(SLICE) as opened:
        yield opened


def dna_checkpoint(path: Path, *, width: int = 60, task: str = "multiclass",
                   labels=("EI", "IE", "N"), head_pool: str = "meanmax") -> Path:
    torch.manual_seed(0)
    outputs = 1 if task == "binary" else len(labels)
    model = build_model("cnn", in_channels=4, n_outputs=outputs, input_length=width,
                        channels=[8, 8], kernel_sizes=[5, 3], pool=[2, 1],
                        head_pool=head_pool)
    save_checkpoint(path, model, alphabet="dna", encoding=EncodingPolicy(),
                    length=LengthPolicy(length=width), task=task, label_names=tuple(labels))
    return path


def protein_checkpoint(path: Path) -> Path:
    """A per-residue secondary-structure model (untrained): not usable on a VCF."""
    model = build_model("cnn", in_channels=get_alphabet("protein").size, n_outputs=3,
                        output="position", channels=[8], kernel_sizes=[3], pool=1)
    save_checkpoint(path, model, alphabet="protein", encoding=EncodingPolicy(),
                    length=LengthPolicy(max_length=100), task="per_residue",
                    label_names=("C", "E", "H"))
    return path


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    path = dna_checkpoint(tmp_path_factory.mktemp("model") / "cnn.pt")
    return bioseq.load_model(path, device="cpu")


# Windows of 11 bases (REF/ALT start at index 5), read by hand from the slice:
# 20:500000   AAACA|ATTTCC...        (| = the variant's first base)
# 20:1340527  TCTGC|TGTCATATACTT
# 20:1600125  TTGGT|GAAGAGAGAGGG
# 20:1999998  GTCAA|AT then the end of the slice
def test_snv_window_is_centred_on_the_vcf_position(genome):
    assert variant_window(genome, allele(500000, "A", "C"), 11) == ("AAACAATTTCC",
                                                                   "AAACACTTTCC")


def test_insertion_keeps_the_left_flank_and_trims_the_right(genome):
    ref, alt = variant_window(genome, allele(1340527, "T", "TGTC"), 11)
    assert (ref, alt) == ("TCTGCTGTCAT", "TCTGCTGTCGT")


def test_deletion_pulls_in_more_right_flank(genome):
    ref, alt = variant_window(genome, allele(1600125, "GAA", "G"), 11)
    assert (ref, alt) == ("TTGGTGAAGAG", "TTGGTGGAGAG")


def test_window_off_the_contig_end_is_padded_with_n(genome):
    assert variant_window(genome, allele(1999998, "A", "G"), 11) == ("GTCAAAATNNN",
                                                                     "GTCAAGATNNN")
    ref, alt = variant_window(genome, allele(3, "N", "A"), 11)
    assert ref == "N" * 11 and alt == "NNNNNANNNNN"


def test_even_width_and_long_alleles_keep_the_width(genome):
    for width in (10, 60, 200):
        for ref, alt in (("A", "ATTTCCAAACAAGGGTTTAAACCC" * 10), ("ATTTCCAAAC", "A")):
            windows = variant_window(genome, allele(500000, ref, alt), width)
            assert [len(w) for w in windows] == [width, width]
            assert windows[0][width // 2] == "A" and windows[1][width // 2] == "A"


def test_scores_equal_direct_predictions_of_the_windows(genome, predictor):
    ref_window, alt_window = variant_window(genome, allele(1318045, "G", "A"), 60)
    ref, alt = score_windows(predictor, [ref_window], [alt_window], names=["v"])
    direct = predictor.predict([ref_window, alt_window])
    columns = [f"prob_{c}" for c in predictor.label_names]
    np.testing.assert_allclose(ref[0], direct[columns].to_numpy()[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alt[0], direct[columns].to_numpy()[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head_pool", ["meanmax", "flatten"])
@pytest.mark.parametrize("rc_average", [False, True])
def test_alts_of_one_site_share_its_ref_window(tmp_path, genome, monkeypatch, rc_average,
                                               head_pool):
    """The three ALTs of a site, then another site, then the first one's again: the REF
    windows reach the model once per run of equal windows, and every allele gets the
    scores of the full forward pass of its two windows (a flatten head computes the
    shared references' edited rows from their first layer)."""
    predictor = bioseq.load_model(dna_checkpoint(tmp_path / "m.pt", head_pool=head_pool),
                                  device="cpu")
    sites = [(1318045, "G", alt) for alt in "ACT"] + [(500000, "A", "G"), (1318045, "G", "C")]
    pairs = [variant_window(genome, allele(*site), 60) for site in sites]
    calls = []
    real = variants.score_edits

    def spy(predictor, refs, alts, ref_rows, **kwargs):
        calls.append((len(refs), ref_rows.tolist()))
        return real(predictor, refs, alts, ref_rows, **kwargs)

    monkeypatch.setattr(variants, "score_edits", spy)
    ref, alt = score_windows(predictor, [p[0] for p in pairs], [p[1] for p in pairs],
                             names=[str(i) for i in range(len(pairs))], rc_average=rc_average)
    assert calls == [(3, [0, 0, 0, 1, 2])]
    for i, (ref_window, alt_window) in enumerate(pairs):
        direct = predictor.predict([ref_window, alt_window], rc_average=rc_average)
        probs = direct[[f"prob_{c}" for c in predictor.label_names]].to_numpy()
        np.testing.assert_allclose(ref[i], probs[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(alt[i], probs[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(alt[0], alt[1])


def test_reverse_complement_averaging_is_strand_symmetric(genome, predictor):
    pairs = [variant_window(genome, allele(p, r, a), 60)
             for p, r, a in ((500000, "A", "C"), (1600125, "GAA", "G"), (1340527, "T", "TGTC"))]
    refs, alts = [p[0] for p in pairs], [p[1] for p in pairs]
    flipped = [[w.translate(COMPLEMENT)[::-1] for w in ws] for ws in (refs, alts)]
    forward = score_windows(predictor, refs, alts, names=["a", "b", "c"], rc_average=True)
    reverse = score_windows(predictor, *flipped, names=["a", "b", "c"], rc_average=True)
    np.testing.assert_allclose(forward[0], reverse[0], atol=1e-6)
    np.testing.assert_allclose(forward[1], reverse[1], atol=1e-6)
    plain = score_windows(predictor, refs, alts, names=["a", "b", "c"])
    assert not np.allclose(plain[0], forward[0])  # averaging did something


def test_log_odds_stay_finite_at_zero_and_one():
    ref = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], np.float32)
    alt = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    columns = effect_columns("multiclass", ("a", "b"), ref, alt, epsilon=1e-6)
    bound = 2 * np.log((1 - 1e-6) / 1e-6)  # logit(1 - eps) - logit(eps)
    np.testing.assert_allclose(columns["log_odds_a"], [bound, -bound, 0.0], rtol=1e-6)
    np.testing.assert_allclose(columns["diff_b"], [-1.0, 1.0, 0.0])
    np.testing.assert_allclose(columns["max_abs_diff"], [1.0, 1.0, 0.0])
    binary = effect_columns("binary", ("neg", "pos"), ref, alt)
    assert "diff_neg" not in binary and list(binary["diff_pos"]) == [-1.0, 1.0, 0.0]
    regression = effect_columns("regression", ("signal",), np.array([[2.0], [0.0]]),
                                np.array([[8.0], [1.0]]), epsilon=1e-6)
    np.testing.assert_allclose(regression["log2_fc_signal"], [2.0, np.log2(1e6)])


@pytest.mark.parametrize("case", ["plain", "nan", "quoted id", "mixed dtypes"])
def test_score_rows_are_written_as_pandas_writes_them(case):
    """scores.tsv rows are %-formatted directly; they must equal pandas' to_csv text,
    also where that falls back to pandas (NaN is written empty, a quote is quoted)."""
    rng = np.random.default_rng(0)
    ref = rng.random((5, 3)).astype(np.float32)
    alt = ref.copy()
    alt[:, 1] = rng.random(5)
    alt[2, 0] = 1e-9  # exponent notation and the clipped log odds
    if case == "nan":
        alt[3, 2] = np.nan
    columns = effect_columns("multiclass", ("EI", "IE", "N"), ref, alt)
    if case == "mixed dtypes":
        columns["diff_EI"] = columns["diff_EI"].astype(np.float64) * 1e7
    alleles = [Allele("20", 100 + i, "rs1" if i else ".", "A", "ACG"[: i % 3 + 1], "20",
                      bool(i % 2)) for i in range(5)]
    if case == "quoted id":
        alleles[1] = alleles[1]._replace(id='rs"1')
    written = io.StringIO()
    write_score_rows(written, alleles, columns, header=True)
    write_score_rows(written, alleles[:2], {c: v[:2] for c, v in columns.items()},
                     header=False)
    frame = pd.DataFrame({"chrom": [a.chrom for a in alleles], "pos": [a.pos for a in alleles],
                          "id": [a.id for a in alleles], "ref": [a.ref for a in alleles],
                          "alt": [a.alt for a in alleles],
                          "ref_match": [a.ref_match for a in alleles], **columns})
    expected = io.StringIO()
    frame.to_csv(expected, sep="\t", index=False, float_format="%.6g")
    frame.iloc[:2].to_csv(expected, sep="\t", index=False, header=False, float_format="%.6g")
    assert written.getvalue() == expected.getvalue()
    assert ("\t\t" in written.getvalue()) == (case == "nan")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, predictor):
    out = tmp_path_factory.mktemp("variants") / "out"
    with Genome(SLICE) as genome:
        summary = score_vcf(predictor, DEMO_VCF, genome, out, model_name="test/cnn",
                            model_checksum="sha256:0")
    return out, summary


def test_demo_vcf_counts_every_record(demo_run):
    out, summary = demo_run
    assert summary.records == 330
    # multi1 and star1 each have 2 ALTs
    assert summary.alleles == 332
    assert summary.skipped == {"symbolic_or_missing_alt": 2, "ref_mismatch": 1,
                               "contig_not_in_reference": 1}
    assert summary.scored == 332 - 4
    assert summary.missing_contigs == {"21": 1}
    assert json.loads((out / "summary.json").read_text())["scored"] == 328


def test_skipped_file_gives_each_reason(demo_run):
    skipped = pd.read_csv(demo_run[0] / "skipped.tsv", sep="\t", dtype=str)
    reasons = dict(zip(skipped["id"] + ":" + skipped["alt"], skipped["reason"], strict=True))
    assert reasons == {"symbolic1:<DEL>": "symbolic_or_missing_alt",
                       "star1:*": "symbolic_or_missing_alt", "mismatch1:C": "ref_mismatch",
                       "othercontig1:G": "contig_not_in_reference"}


def test_multiallelic_records_give_one_row_per_alt(demo_run, genome, predictor):
    scores = pd.read_csv(demo_run[0] / "scores.tsv", sep="\t", dtype={"chrom": str})
    multi = scores[scores["id"] == "multi1"]
    assert list(multi["alt"]) == ["C", "G"] and (multi["ref_match"]).all()
    assert list(scores[scores["id"] == "star1"]["alt"]) == ["A"]
    row = multi.iloc[1]
    ref_window, alt_window = variant_window(genome, allele(500000, "A", "G"), 60)
    direct = predictor.predict([ref_window, alt_window])
    assert row["diff_IE"] == pytest.approx(direct["prob_IE"][1] - direct["prob_IE"][0],
                                           abs=2e-6)


def test_annotated_vcf_reads_back_with_declared_fields(demo_run):
    path = demo_run[0] / "annotated.vcf.gz"
    assert (demo_run[0] / "annotated.vcf.gz.tbi").is_file()
    with pysam.VariantFile(str(path)) as vcf:
        info = vcf.header.info
        assert info["BIOSEQ_diff_EI"].number == "A" and info["BIOSEQ_diff_EI"].type == "Float"
        assert "test/cnn" in info["BIOSEQ_diff_EI"].description
        assert any(r.key == "bioseq_model" and "sha256:0" in str(r) for r in vcf.header.records)
        records = {r.id: r for r in vcf.fetch("20", 499_000, 1_300_000)}  # uses the index
    scores = pd.read_csv(demo_run[0] / "scores.tsv", sep="\t", dtype={"chrom": str})
    expected = scores[scores["id"] == "multi1"]["diff_EI"].to_list()
    assert records["multi1"].info["BIOSEQ_diff_EI"] == pytest.approx(expected, abs=1e-5)
    star = records["star1"]
    assert star.info["BIOSEQ_skipped"] == (".", "symbolic_or_missing_alt")  # "." = missing
    assert star.info["BIOSEQ_diff_EI"][1] is None
    assert records["mismatch1"].info["BIOSEQ_ref_match"] == 0
    assert "BIOSEQ_diff_EI" not in records["mismatch1"].info
    with pysam.VariantFile(str(path)) as vcf:
        assert sum(1 for _ in vcf) == 330  # every input record, scored or not


def test_annotated_info_holds_the_score_table_values(demo_run):
    """Every score INFO value, as text, is the scores.tsv value of its ALT (both `.6g`):
    one-ALT records (INFO formatted at once) and multi-allelic ones alike."""
    scores = pd.read_csv(demo_run[0] / "scores.tsv", sep="\t", dtype=str)
    with pysam.VariantFile(str(demo_run[0] / "annotated.vcf.gz")) as vcf:
        declared = set(vcf.header.info)
    columns = [c for c in scores.columns
               if c not in SCORE_COLUMNS and f"BIOSEQ_{c}" in declared]
    assert len(columns) == 13  # ref, alt, diff, log_odds of 3 classes; max_abs_diff
    expected = {(row["pos"], row["alt"]): row for _, row in scores.iterrows()}
    seen = 0
    with gzip.open(demo_run[0] / "annotated.vcf.gz", "rt") as vcf:
        for line in vcf:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            info = dict(item.split("=", 1) for item in fields[7].split(";") if "=" in item)
            for k, alt in enumerate(fields[4].split(",")):
                row = expected.get((fields[1], alt))
                if row is None:
                    continue
                assert [info[f"BIOSEQ_{c}"].split(",")[k] for c in columns] == \
                    [row[c] for c in columns]
                assert info["BIOSEQ_ref_match"] == str(int(row["ref_match"] == "True"))
                seen += 1
    assert seen == len(scores) == 328


def test_ref_mismatch_can_be_scored_anyway(tmp_path, predictor, genome):
    summary = score_vcf(predictor, DEMO_VCF, genome, tmp_path / "out",
                        options=VariantOptions(ref_mismatch="score"))
    scores = pd.read_csv(tmp_path / "out" / "scores.tsv", sep="\t", dtype={"chrom": str})
    row = scores[scores["id"] == "mismatch1"].iloc[0]
    assert not row["ref_match"] and summary.scored == 329
    assert "ref_mismatch" not in summary.skipped


def test_small_chunks_give_the_same_tables(tmp_path, predictor, genome, demo_run):
    score_vcf(predictor, DEMO_VCF, genome, tmp_path / "out",
              options=VariantOptions(chunk_size=7), model_name="test/cnn",
              model_checksum="sha256:0")
    assert (tmp_path / "out" / "skipped.tsv").read_text() == \
        (demo_run[0] / "skipped.tsv").read_text()
    assert_same_scores(tmp_path / "out", demo_run[0])


def assert_same_scores(first: Path, second: Path) -> None:
    """Two runs' scores.tsv and annotated VCFs hold the same variants and the same values.
    Batches of other sizes round differently (oneDNN and BLAS pick kernels by batch size;
    float32 resolves 3e-8 at p = 0.3), so values are compared to 1e-6, not byte by byte."""
    one, two = (pd.read_csv(d / "scores.tsv", sep="\t") for d in (first, second))
    assert len(one) == len(two) > 0
    numbers = one.select_dtypes("number").columns.drop("pos")
    pd.testing.assert_frame_equal(one.drop(columns=numbers), two.drop(columns=numbers))
    np.testing.assert_allclose(one[numbers], two[numbers], rtol=1e-5, atol=1e-6)
    with pysam.VariantFile(str(first / "annotated.vcf.gz")) as a, \
            pysam.VariantFile(str(second / "annotated.vcf.gz")) as b:
        assert str(a.header) == str(b.header)
        pairs = list(zip(a, b, strict=True))
    for x, y in pairs:
        assert (x.chrom, x.pos, x.ref, x.alts, sorted(x.info)) == \
            (y.chrom, y.pos, y.ref, y.alts, sorted(y.info))
        for key in x.info:
            values = [v for v in np.atleast_1d(x.info[key])]
            if all(isinstance(v, float) or v is None for v in values):
                np.testing.assert_allclose(np.array(values, float),
                                           np.array(np.atleast_1d(y.info[key]), float),
                                           rtol=1e-5, atol=1e-6)
            else:
                assert x.info[key] == y.info[key]


def test_contig_alias_matches_chr_names(tmp_path, predictor):
    vcf = tmp_path / "chr.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr20>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   "chr20\t500000\tv1\tA\tC\t.\t.\t.\n")
    with Genome(SLICE) as genome, pytest.raises(BioseqError, match=r"contig\(s\) chr20 not in "
                                                "reference.*--contig-alias"):
        score_vcf(predictor, vcf, genome, tmp_path / "none")
    assert not (tmp_path / "none").exists()
    with Genome(SLICE, aliases={"chr20": "20"}) as genome:
        summary = score_vcf(predictor, vcf, genome, tmp_path / "out")
    assert summary.scored == 1
    assert "chr20\t500000\tv1\tA\tC\tTrue" in (tmp_path / "out" / "scores.tsv").read_text()


@pytest.mark.skipif(not (SHARED / "variants").is_dir(), reason="needs ../shared/data")
def test_shared_multiallelic_vcf_on_contig_1_is_a_clear_message(tmp_path, predictor):
    with Genome(SLICE) as genome, pytest.raises(
            BioseqError, match=r"multiallelic.vcf: no variant could be scored \(2 "
                               r"contig_not_in_reference\); VCF contig\(s\) 1 not in"):
        score_vcf(predictor, SHARED / "variants" / "multiallelic.vcf", genome, tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not (SHARED / "variants").is_dir(), reason="needs ../shared/data")
def test_shared_indels_on_whole_chr20(tmp_path, predictor):
    """194 indels of a plain-gzip VCF (read through a pipe) on the bgzip chr20."""
    with Genome(SHARED / "genomes" / "GRCh37_chr20.fa.gz") as genome:
        summary = score_vcf(predictor, SHARED / "variants" / "chr20_indels.vcf.gz", genome,
                            tmp_path / "out")
    assert (summary.records, summary.scored, summary.ref_mismatches) == (194, 194, 0)
    scores = pd.read_csv(tmp_path / "out" / "scores.tsv", sep="\t")
    lengths = scores["alt"].str.len() - scores["ref"].str.len()
    assert (lengths != 0).all() and np.isfinite(scores["log_odds_N"]).all()


# Review cases: each once silently wrong or a crash
def write_vcf(path: Path, rows: list[str], *, version: str = "4.2") -> Path:
    header = (f"##fileformat=VCFv{version}\n##contig=<ID=20,length=2000000>\n"
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    path.write_text(header + "".join(row.replace(" ", "\t") + "\n" for row in rows))
    return path


def test_truncated_plain_gzip_vcf_is_an_error(tmp_path, predictor, genome):
    import gzip

    text = "".join(f"20\t{500000 + 7 * i}\tv{i}\tA\tC\t.\t.\t.\n" for i in range(20000))
    data = gzip.compress(("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER"
                          "\tINFO\n" + text).encode())
    vcf = tmp_path / "cut.vcf.gz"
    vcf.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(BioseqError, match="cut.vcf.gz: damaged or truncated gzip"):
        score_vcf(predictor, vcf, genome, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsorted_vcf_is_refused_where_it_goes_wrong(tmp_path, predictor, genome):
    vcf = write_vcf(tmp_path / "u.vcf", ["20 500100 a A C . . .", "20 500000 b A C . . ."])
    with pytest.raises(BioseqError, match=r"u.vcf: line 5: VCF is not sorted \(20:500000 "
                                          r"after 20:500100\)"):
        score_vcf(predictor, vcf, genome, tmp_path / "out")


@pytest.mark.parametrize("enabled", [True, False])
def test_score_vcf_leaves_the_cycle_collector_as_it_found_it(tmp_path, predictor, genome,
                                                             monkeypatch, enabled):
    """score_vcf pauses Python's cycle collector while it scores; it is back as it was
    afterwards, also when a bad record stops the run midway."""
    good = write_vcf(tmp_path / "g.vcf", ["20 500000 a A C . . ."])
    bad = write_vcf(tmp_path / "u.vcf", ["20 500100 a A C . . .", "20 500000 b A C . . ."])
    seen = []
    real = _VariantRun.score

    def score(self, records):  # what the collector is while records are scored
        seen.append(gc.isenabled())
        return real(self, records)

    monkeypatch.setattr(_VariantRun, "score", score)
    (gc.enable if enabled else gc.disable)()
    try:
        score_vcf(predictor, good, genome, tmp_path / "out")
        assert gc.isenabled() == enabled
        with pytest.raises(BioseqError, match="not sorted"):
            score_vcf(predictor, bad, genome, tmp_path / "out2", options=VariantOptions(
                chunk_size=1))
        assert gc.isenabled() == enabled
    finally:
        gc.enable()
    assert seen and not any(seen)


def test_odd_alleles_get_their_own_reasons(tmp_path, predictor, genome):
    vcf = write_vcf(tmp_path / "odd.vcf", ["20 500000 same A A,C . . .",
                                           "20 1999999 edge ATG A . . .",
                                           "20 2500000 past A G . . ."])
    summary = score_vcf(predictor, vcf, genome, tmp_path / "out")
    skipped = pd.read_csv(tmp_path / "out" / "skipped.tsv", sep="\t", dtype=str)
    assert dict(zip(skipped["id"], skipped["reason"], strict=True)) == {
        "same": "alt_equals_ref", "edge": "outside_contig", "past": "outside_contig"}
    assert summary.scored == 1 and summary.ref_mismatches == 0


def test_model_names_and_classes_cannot_break_the_header(tmp_path, genome):
    path = dna_checkpoint(tmp_path / "m.pt", labels=("exon start", "exon-start", "N"))
    model = bioseq.load_model(path, device="cpu")
    vcf = write_vcf(tmp_path / "one.vcf", ["20 500000 v A C . . ."], version="4.0")
    name = 'my "model", v2>x\\y'
    with pytest.raises(BioseqError, match="'ref_exon start' and 'ref_exon-start' give the"):
        score_vcf(model, vcf, genome, tmp_path / "clash")
    path = dna_checkpoint(tmp_path / "n.pt", labels=("EI", "IE", "N"))
    score_vcf(bioseq.load_model(path, device="cpu"), vcf, genome, tmp_path / "out",
              model_name=name, model_checksum="sha256:" + "ab" * 32)
    with pysam.VariantFile(str(tmp_path / "out" / "annotated.vcf.gz")) as annotated:
        header = str(annotated.header)
        assert header.startswith("##fileformat=VCFv4.2")  # Number=A needs 4.1+
        info = annotated.header.info["BIOSEQ_diff_EI"]
        # parsed as declared (htslib falls back to String on a broken line), quotes escaped
        assert info.type == "Float" and info.number == "A"
        assert 'my \\"model\\", v2>x\\\\y' in info.description
        assert "sha256:abababab" in info.description
        record = next(iter(annotated))
        assert isinstance(record.info["BIOSEQ_diff_EI"][0], float)


def test_header_only_vcf_writes_empty_tables(tmp_path, predictor, genome):
    summary = score_vcf(predictor, write_vcf(tmp_path / "empty.vcf", []), genome,
                        tmp_path / "out")
    assert summary.records == 0
    assert (tmp_path / "out" / "scores.tsv").read_text().startswith("chrom\tpos")
    assert (tmp_path / "out" / "annotated.vcf.gz.tbi").is_file()


def test_strict_models_skip_windows_with_n(tmp_path, genome):
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=4, n_outputs=3, input_length=60, channels=[8],
                        kernel_sizes=[3], pool=[2])
    save_checkpoint(tmp_path / "strict.pt", model, alphabet="dna",
                    encoding=EncodingPolicy(ambiguous="error"), length=LengthPolicy(length=60),
                    task="multiclass", label_names=("EI", "IE", "N"))
    # 20:60010 is G, 10 bases after the N gap (1-60000) that its 60-bp window reaches into
    vcf = write_vcf(tmp_path / "n.vcf", ["20 60010 gap G A . . .", "20 500000 ok A C . . ."])
    summary = score_vcf(bioseq.load_model(tmp_path / "strict.pt", device="cpu"), vcf, genome,
                        tmp_path / "out")
    assert summary.scored == 1 and summary.skipped == {"ambiguous_bases_in_window": 1}


def test_soft_masked_alt_keeps_the_genome_case(tmp_path):
    fasta = tmp_path / "masked.fa"
    fasta.write_text(">m\nACGTACGTACgtacgtacgtACGTACGT\n")
    with Genome(fasta) as masked:
        ref, alt = variant_window(masked, Allele("m", 13, ".", "A", "C", "m", True), 7)
        assert (ref, alt) == ("Cgtacgt", "Cgtccgt")  # the replaced base is lower case
        ref, alt = variant_window(masked, Allele("m", 5, ".", "A", "G", "m", True), 7)
        assert (ref, alt) == ("CGTACGT", "CGTGCGT")


def test_vcf_contig_lengths_are_compared_with_the_reference(tmp_path, predictor, genome):
    vcf = tmp_path / "b38.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=20,length=64444167>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   "20\t500000\tv\tA\tC\t.\t.\t.\n")
    summary = score_vcf(predictor, vcf, genome, tmp_path / "out")
    assert summary.contig_length_mismatches == {"20": [64444167, 2000000]}
