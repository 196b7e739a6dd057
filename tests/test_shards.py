"""Sharded prediction: `bioseq predict --shard K/N` parts concatenate to the whole table."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NETSURFP_SLICE, SPLICE_FASTA
from test_variants import dna_checkpoint, protein_checkpoint

from bioseq.errors import BioseqError
from bioseq.io import concatenate, count_records, shard_bounds

BIOSEQ = str(Path(sys.executable).parent / "bioseq")


def predict(*args: str) -> None:
    result = subprocess.run([BIOSEQ, "predict", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_count_records_of_plain_and_gzip_fasta(tmp_path):
    text = SPLICE_FASTA.read_text()
    packed = tmp_path / "splice.fa.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    assert count_records(SPLICE_FASTA) == text.count(">") == 3190
    assert count_records(packed) == 3190
    wrapped = tmp_path / "wrapped.fa"  # multi-line records, a '>' inside a description
    wrapped.write_text(">a x>y\nACGT\nACGT\n>b\nAC\n\n>c\nG\n")
    assert count_records(wrapped) == 3


@pytest.mark.parametrize("records, shards", [(3190, 7), (5, 8), (0, 3), (10, 1)])
def test_shards_cover_every_record_once(records, shards):
    bounds = [shard_bounds(records, k, shards) for k in range(1, shards + 1)]
    assert bounds[0][0] == 0 and bounds[-1][1] == records
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = [end - begin for begin, end in bounds]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(BioseqError, match="between 1 and 3"):
        shard_bounds(10, 4, 3)


def test_sharded_predictions_concatenate_to_the_whole_table(tmp_path):
    model = dna_checkpoint(tmp_path / "cnn.pt")
    lines = SPLICE_FASTA.read_text().splitlines(keepends=True)
    first, second = tmp_path / "a.fa", tmp_path / "b.fa.gz"
    first.write_text("".join(lines[:1000]))  # 500 records
    second.write_bytes(gzip.compress("".join(lines[1000:1602]).encode()))  # 301 records
    predict("--model-file", str(model), "--fasta", str(first), str(second),
            "--out", str(tmp_path / "whole.tsv"))
    parts = []
    for k in range(1, 4):  # shard 2 spans both files
        parts.append(tmp_path / f"part{k}.tsv")
        predict("--model-file", str(model), "--fasta", str(first), str(second),
                "--out", str(parts[-1]), "--shard", f"{k}/3")
    assert [len(p.read_text().splitlines()) - 1 for p in parts] == [267, 267, 267]
    concatenate(parts, tmp_path / "merged.tsv", header_lines=1)
    assert (tmp_path / "merged.tsv").read_text() == (tmp_path / "whole.tsv").read_text()


def test_sharded_per_residue_predictions_concatenate(tmp_path):
    model = protein_checkpoint(tmp_path / "ss.pt")
    fasta = NETSURFP_SLICE["sequences"]
    predict("--model-file", str(model), "--fasta", str(fasta), "--out",
            str(tmp_path / "whole.tsv"), "--fasta-out", str(tmp_path / "whole.fa"))
    for k in (1, 2):
        predict("--model-file", str(model), "--fasta", str(fasta), "--shard", f"{k}/2",
                "--out", str(tmp_path / f"p{k}.tsv"), "--fasta-out", str(tmp_path / f"p{k}.fa"))
    concatenate([tmp_path / "p1.tsv", tmp_path / "p2.tsv"], tmp_path / "m.tsv", header_lines=1)
    concatenate([tmp_path / "p1.fa", tmp_path / "p2.fa"], tmp_path / "m.fa")
    assert (tmp_path / "m.tsv").read_text() == (tmp_path / "whole.tsv").read_text()
    assert (tmp_path / "m.fa").read_text() == (tmp_path / "whole.fa").read_text()


def test_parts_with_different_headers_are_refused(tmp_path):
    (tmp_path / "a.tsv").write_text("id\tprob\nx\t0.5\n")
    (tmp_path / "b.tsv").write_text("id\tscore\ny\t0.1\n")
    with pytest.raises(BioseqError, match="b.tsv.*header differs"):
        concatenate([tmp_path / "a.tsv", tmp_path / "b.tsv"], tmp_path / "m.tsv",
                    header_lines=1)
    assert not (tmp_path / "m.tsv").exists()


def test_a_malformed_shard_is_one_clear_error(tmp_path):
    model = dna_checkpoint(tmp_path / "cnn.pt")
    result = subprocess.run([BIOSEQ, "predict", "--model-file", str(model), "--fasta",
                             str(SPLICE_FASTA), "--out", str(tmp_path / "x.tsv"),
                             "--shard", "3"], capture_output=True, text=True)
    assert result.returncode != 0 and "--shard must look like K/N" in result.stderr
    assert not (tmp_path / "x.tsv").exists()


# ---------------------------------------------------------------- VCF shards


def variant_effect(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([BIOSEQ, "variant-effect", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def test_sharded_variant_effects_merge_to_the_whole_run(tmp_path):
    import pysam
    from test_variants import DEMO_VCF, SLICE, assert_same_scores

    from bioseq.variants import count_vcf_records

    assert count_vcf_records(DEMO_VCF) == 330
    model = dna_checkpoint(tmp_path / "cnn.pt")
    common = ["--model-file", str(model), "--vcf", str(DEMO_VCF), "--reference", str(SLICE),
              "--model-name", "cnn", "--rc-average"]
    variant_effect(*common, "--out", str(tmp_path / "whole"))
    parts = [tmp_path / f"part{k}" for k in (1, 2, 3)]
    for k, part in enumerate(parts, 1):
        variant_effect(*common, "--out", str(part), "--shard", f"{k}/3")
    merged = subprocess.run([BIOSEQ, "merge-variant-shards", "--parts", *map(str, parts),
                             "--out", str(tmp_path / "merged")], capture_output=True, text=True)
    assert merged.returncode == 0, merged.stderr
    whole, joined = tmp_path / "whole", tmp_path / "merged"
    for name in ("skipped.tsv", "summary.json"):
        assert (joined / name).read_text() == (whole / name).read_text(), name
    assert_same_scores(joined, whole)  # values to float rounding: batches differ by shard
    with pysam.VariantFile(str(joined / "annotated.vcf.gz")) as vcf:  # the new index works
        assert len(list(vcf.fetch("20", 1_300_000, 1_400_000))) > 0


def test_shards_that_scored_nothing_between_them_are_an_error(tmp_path):
    import json

    from bioseq.variants import VariantSummary, merge_variant_shards

    parts = []
    for k in (1, 2):
        parts.append(tmp_path / f"part{k}")
        parts[-1].mkdir()
        summary = VariantSummary(records=5, alleles=5, skipped={"contig_not_in_reference": 5},
                                 missing_contigs={"chrX": 5})
        (parts[-1] / "summary.json").write_text(json.dumps(summary.__dict__))
    with pytest.raises(BioseqError, match=r"no variant could be scored \(10 contig_not_in_"
                                          r"reference\); VCF contig\(s\) chrX not in"):
        merge_variant_shards(parts, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
