"""Reference access and BED windows, checked by hand against the demo chr20 slice
(resources/genome: GRCh37 chr20 bases 1-2,000,000, contig `20`)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyfaidx
import pytest

from bioseq.errors import BioseqError
from bioseq.genome import Genome, Interval, interval_sequences, parse_aliases, read_bed

REPO = Path(__file__).resolve().parents[1]
SLICE = REPO / "resources" / "genome" / "GRCh37_chr20_1-2000000.fa.gz"
SHARED_CHR20 = REPO.parent / "shared" / "data" / "genomes" / "GRCh37_chr20.fa.gz"


@pytest.fixture(scope="module")
def genome():
    with Genome(SLICE) as opened:
        yield opened


def test_fetch_is_zero_based_half_open_like_pyfaidx(genome):
    raw = pyfaidx.Fasta(str(SLICE), as_raw=True, build_index=False)["20"]
    # 1-based 1318040..1318050 (a donor site) = 0-based [1318039, 1318050)
    assert genome.fetch("20", 1318039, 1318050) == "CTCAAGGTAAG" == raw[1318039:1318050]
    for start in (0, 16383, 16384 * 5 - 7, 1_999_000):  # across the cache's block edges
        assert genome.fetch("20", start, start + 200) == raw[start : start + 200]


def test_positions_beyond_the_contig_are_n(genome):
    assert genome.lengths == {"20": 2_000_000}
    assert genome.fetch("20", 1_999_992, 2_000_003) == "GTCAAAATNNN"
    assert genome.fetch("20", -3, 2) == "NNNNN"  # chr20 starts with 60 kb of N
    assert genome.fetch("20", 2_000_010, 2_000_013) == "NNN"
    assert genome.fetch("20", -9, -4) == "NNNNN"


def test_aliases_map_other_names(genome):
    with Genome(SLICE, aliases=parse_aliases(["chr20=20"])) as aliased:
        assert aliased.contig("chr20") == "20"
        assert aliased.contig("20") == "20"
        assert aliased.contig("chr21") is None
    with pytest.raises(BioseqError, match="alias target 'chr20' is not in the reference"):
        Genome(SLICE, aliases={"20": "chr20"})
    with pytest.raises(BioseqError, match="VCF_NAME=FASTA_NAME"):
        parse_aliases(["chr20"])


def test_unindexed_bgzip_is_refused_without_writing_an_index(tmp_path):
    copy = tmp_path / "genome.fa.gz"
    shutil.copy(SLICE, copy)
    with pytest.raises(BioseqError, match=r"not indexed \(.fai and .gzi missing"):
        Genome(copy)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.fa.gz"]


def test_plain_gzip_is_refused(tmp_path):
    plain = tmp_path / "lambda.fa.gz"
    plain.write_bytes(gzip.compress(b">lambda\nACGTACGT\n"))
    with pytest.raises(BioseqError, match="not bgzip"):
        Genome(plain)


def test_plain_fasta_without_fai_is_indexed_elsewhere(tmp_path):
    path = tmp_path / "small.fa"
    path.write_text(">a\nACGTACGTAC\nGT\n>b\nTTTT\n")
    with Genome(path) as genome:
        assert genome.lengths == {"a": 12, "b": 4}
        assert genome.fetch("a", 8, 14) == "ACGTNN"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.fa"]  # no .fai left beside it


def test_missing_reference_is_one_line(tmp_path):
    with pytest.raises(BioseqError, match="reference FASTA not found"):
        Genome(tmp_path / "absent.fa")


@pytest.mark.skipif(not SHARED_CHR20.is_file(), reason="needs ../shared/data/genomes")
def test_slice_equals_the_whole_chromosome():
    with Genome(SHARED_CHR20) as whole, Genome(SLICE) as demo:
        assert whole.lengths["20"] == 63_025_520
        for start in (60_000, 421_800, 1_318_000, 1_999_800):
            assert whole.fetch("20", start, start + 200) == demo.fetch("20", start, start + 200)


def test_bed_intervals_to_centred_windows(tmp_path, genome):
    bed = tmp_path / "sites.bed"
    bed.write_text("track name=demo\n"
                   "20\t1318039\t1318050\tdonor\t1\n"  # 11 bp: centred 5 bp = its middle
                   "20\t1999998\t2000000\t.\t0\n")  # at the end: N beyond it
    intervals = list(read_bed(bed, label_column=5))
    assert intervals[0] == Interval("20", 1318039, 1318050, "donor", "1")
    assert intervals[1].name == "20:1999999-2000000"
    seqs = interval_sequences(genome, intervals, width=5, anchor="center", source=str(bed))
    assert seqs == ["AAGGT", "AATNN"]  # CTC[AAGGT]AAG; the last 3 bases AAT, then N
    assert interval_sequences(genome, intervals[:1], width=4, anchor="left",
                              source=str(bed)) == ["CTCA"]
    assert interval_sequences(genome, intervals[:1], width=4, anchor="right",
                              source=str(bed)) == ["TAAG"]


def test_bad_bed_lines_are_named(tmp_path):
    bed = tmp_path / "bad.bed"
    bed.write_text("20\t10\t5\n")
    with pytest.raises(BioseqError, match=r"bad.bed: line 1: need 0 <= start < end"):
        list(read_bed(bed))
    bed.write_text("20\t10\n")
    with pytest.raises(BioseqError, match="line 1: BED needs tab-separated chrom, start, end"):
        list(read_bed(bed))


def test_stale_index_is_refused(tmp_path):
    import os

    for suffix in ("", ".fai", ".gzi"):
        (tmp_path / f"g.fa.gz{suffix}").write_bytes(Path(f"{SLICE}{suffix}").read_bytes())
    os.utime(tmp_path / "g.fa.gz.fai", (1_000_000, 1_000_000))  # older than the FASTA
    with pytest.raises(BioseqError, match=r".fai index is older than the FASTA"):
        Genome(tmp_path / "g.fa.gz")


def test_bed_labels_with_spaces_are_refused(tmp_path):
    bed = tmp_path / "l.bed"
    bed.write_text("20\t10\t20\tx\texon start\n")
    with pytest.raises(BioseqError, match=r"line 1: label 'exon start' \(column 5\)"):
        list(read_bed(bed, label_column=5))
