import gzip
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from bioseq.errors import BioseqError
from bioseq.io import (
    atomic_path,
    check_fasta,
    header_fields,
    iter_chunks,
    iter_fasta,
    read_fasta,
    read_table,
    write_text_atomic,
)

DATA = Path(__file__).resolve().parent / "data"
# the shared benchmark data sits beside the checkout (../shared/data), in CI too
CHR20 = Path(__file__).resolve().parents[2] / "shared" / "data" / "genomes" / "GRCh37_chr20.fa.gz"


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------- check_fasta

def test_missing_file(tmp_path):
    path = tmp_path / "absent.fa"
    with pytest.raises(BioseqError) as err:
        check_fasta(path)
    assert str(err.value) == f"{path}: no such file"


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(BioseqError, match="no such file"):
        check_fasta(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.fa"
    path.write_text("")
    with pytest.raises(BioseqError) as err:
        check_fasta(path)
    assert str(err.value) == f"{path}: empty file"


def test_blank_file_counts_as_empty(tmp_path):
    path = tmp_path / "blank.fa"
    path.write_text("\n\n  \n")
    with pytest.raises(BioseqError, match="empty file"):
        check_fasta(path)


def test_fastq_is_not_a_fasta(tmp_path):
    path = tmp_path / "reads.fq"
    path.write_text("@read1\nACGT\n+\nIIII\n")
    with pytest.raises(BioseqError) as err:
        check_fasta(path)
    assert str(err.value) == f"{path}: not a FASTA file (first character '@', expected '>')"


def test_empty_gzip_is_empty(tmp_path):
    path = tmp_path / "empty.fa.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("")
    with pytest.raises(BioseqError, match="empty file"):
        check_fasta(path)


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.fa.gz"
    path.write_bytes(b"\x1f\x8b" + b"not really gzip data" * 4)
    with pytest.raises(BioseqError, match="cannot read compressed file"):
        check_fasta(path)


def test_leading_blank_lines_are_accepted(tmp_path):
    path = tmp_path / "lead.fa"
    path.write_text("\n\n>a\nACGT\n")
    check_fasta(path)
    assert read_fasta(path)[0].sequence == "ACGT"


# ---------------------------------------------------------------- reading

def test_plain_fasta_records_and_descriptions(write_fasta):
    path = write_fasta("x.fa", [("s1", "ACGT", "label=EI split=test"), ("s2", "GG")])
    records = read_fasta(path)
    assert [tuple(r) for r in records] == [("s1", "ACGT", "label=EI split=test"), ("s2", "GG", "")]


def test_wrapped_lines_are_joined(tmp_path):
    path = tmp_path / "wrapped.fa"
    path.write_text(">w desc here\nACGT\nTTGG\nA\n>v\nCC\n")
    records = read_fasta(path)
    assert records[0].id == "w"
    assert records[0].sequence == "ACGTTTGGA"
    assert records[0].description == "desc here"
    assert records[1].sequence == "CC"


def test_windows_line_endings_are_stripped(tmp_path):
    path = tmp_path / "crlf.fa"
    path.write_bytes(b">a label=X\r\nACGT\r\nAC\r\n>b label=Y\r\nGG\r\n")
    assert [tuple(r) for r in read_fasta(path)] == [("a", "ACGTAC", "label=X"),
                                                     ("b", "GG", "label=Y")]


def test_gzip_fasta_reads_like_the_plain_file(splice_head, splice_fasta):
    plain = splice_fasta.read_text().splitlines()[:20]
    records = read_fasta(splice_head(10, "splice10.fa.gz"))
    assert len(records) == 10
    assert records[0].id == "ATRINS-DONOR-521"
    assert records[0].description == "label=EI"
    assert records[0].sequence == plain[1]
    assert records[9].sequence == plain[19]


def test_gzip_phage_lambda_genome():
    records = read_fasta(DATA / "phage_lambda_NC_001416.1.fa.gz")
    assert len(records) == 1
    assert records[0].id == "gi|9626243|ref|NC_001416.1|"
    assert records[0].description == "Enterobacteria phage lambda, complete genome"
    assert len(records[0].sequence) == 48502
    assert records[0].sequence.startswith("GGGCGGCGACCTCGCGGGTTTTCGC")


def test_bgzip_written_by_biopython_is_read(tmp_path):
    from Bio import bgzf

    path = tmp_path / "b.fa.gz"
    with bgzf.BgzfWriter(str(path), "wb") as handle:
        handle.write(b">x desc\n" + b"ACGT" * 30000 + b"\n>y\nGG\n")
    check_fasta(path)
    records = read_fasta(path)
    assert [(r.id, len(r.sequence)) for r in records] == [("x", 120000), ("y", 2)]


@pytest.mark.skipif(not CHR20.is_file(), reason="shared data not beside the checkout")
def test_bgzip_chromosome_first_record_is_read_lazily():
    path = CHR20
    check_fasta(path)
    first = next(iter_fasta(path))
    assert first.id == "20"
    assert len(first.sequence) == 63_025_520  # as in the .fai index
    assert first.sequence[:60] == "N" * 60


def test_iter_chunks_sizes_follow_the_character_budget(splice_head):
    path = splice_head(10)
    chunks = list(iter_chunks(str(path), chunk_characters=150))  # 60 nt each: 3 per chunk
    assert [len(ids) for ids, _, _ in chunks] == [3, 3, 3, 1]
    ids = [i for chunk_ids, _, _ in chunks for i in chunk_ids]
    assert ids[:2] == ["ATRINS-DONOR-521", "ATRINS-DONOR-905"]
    assert len(ids) == 10
    assert chunks[0][2] == ["label=EI"] * 3
    assert [len(seq) for seq in chunks[0][1]] == [60, 60, 60]


def test_iter_chunks_one_chunk_when_budget_is_large(write_fasta):
    path = write_fasta("small.fa", [("a", "ACGT"), ("b", "AC"), ("c", "G")])
    chunks = list(iter_chunks(str(path)))
    assert chunks == [(["a", "b", "c"], ["ACGT", "AC", "G"], [None, None, None])]


def test_iter_chunks_exact_budget_closes_the_chunk(write_fasta):
    path = write_fasta("exact.fa", [("a", "ACGT"), ("b", "ACGT"), ("c", "ACGT")])
    assert [ids for ids, _, _ in iter_chunks(str(path), chunk_characters=4)] == [
        ["a"], ["b"], ["c"]]


# ---------------------------------------------------------------- headers and tables

def test_header_fields_parse_key_value_words():
    assert header_fields("label=EI split=test") == {"label": "EI", "split": "test"}
    assert header_fields("some free text gene=BRCA1 x=") == {"gene": "BRCA1", "x": ""}
    assert header_fields("expr=a=b") == {"expr": "a=b"}
    assert header_fields("") == {}


def test_read_table_tsv_keeps_strings(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("id\tlabel\tscore\ns1\tEI\t007\ns2\tNA\t\n")
    table = read_table(path, required=("id", "label"))
    assert table.to_dict("list") == {"id": ["s1", "s2"], "label": ["EI", "NA"],
                                     "score": ["007", ""]}


def test_read_table_csv_by_extension(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,label\ns1,IE\n")
    assert read_table(path).to_dict("list") == {"id": ["s1"], "label": ["IE"]}


def test_read_table_unknown_column_lists_the_columns(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("name\tclass\ns1\tEI\n")
    with pytest.raises(BioseqError) as err:
        read_table(path, required=("id", "class"))
    assert str(err.value) == f"{path}: unknown column(s) 'id'; the table has 'name', 'class'"


def test_read_table_missing_file(tmp_path):
    with pytest.raises(BioseqError, match="no such file"):
        read_table(tmp_path / "none.tsv")


# ---------------------------------------------------------------- atomic writes

def test_atomic_path_leaves_nothing_when_the_body_raises(tmp_path):
    final = tmp_path / "out" / "result.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(final) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert not final.exists()
    assert list(final.parent.iterdir()) == []


def test_atomic_path_keeps_the_old_file_when_the_body_raises(tmp_path):
    final = tmp_path / "result.txt"
    final.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(final) as tmp:
            tmp.write_text("new")
            raise KeyboardInterrupt
    assert final.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]


def test_atomic_file_gets_the_usual_mode_not_0600(tmp_path, umask_022):
    final = tmp_path / "result.txt"
    with atomic_path(final) as tmp:
        tmp.write_text("done")
    assert final.read_text() == "done"
    assert mode(final) == 0o644


def test_atomic_directory_replaces_an_earlier_output(tmp_path):
    final = tmp_path / "store"
    final.mkdir()
    (final / "meta.json").write_text("{}")
    (final / "stale.txt").write_text("old")
    with atomic_path(final, directory=True, marker="meta.json") as tmp:
        (tmp / "fresh.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["fresh.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_atomic_directory_refuses_to_replace_other_folders(tmp_path, monkeypatch):
    final = tmp_path / "results"
    (final / "splice").mkdir(parents=True)
    (final / "splice" / "model.pt").write_text("precious")
    with pytest.raises(BioseqError, match="refusing to replace it"):
        with atomic_path(final, directory=True, marker="meta.json"):
            pass
    assert (final / "splice" / "model.pt").read_text() == "precious"
    monkeypatch.chdir(final)
    with pytest.raises(BioseqError, match="current directory"):
        with atomic_path(".", directory=True, marker="meta.json"):
            pass
    assert (final / "splice" / "model.pt").read_text() == "precious"


def test_atomic_directory_leaves_nothing_when_the_body_raises(tmp_path):
    final = tmp_path / "store"
    with pytest.raises(ValueError):
        with atomic_path(final, directory=True) as tmp:
            (tmp / "part.npy").write_bytes(b"123")
            raise ValueError("bad input")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_gets_the_usual_mode_not_0700(tmp_path, umask_022):
    final = tmp_path / "store"
    with atomic_path(final, directory=True) as tmp:
        (tmp / "a.txt").write_text("x")
    assert mode(final) == 0o755


def test_write_text_atomic(tmp_path, umask_022):
    path = tmp_path / "deep" / "er" / "note.txt"
    write_text_atomic(path, "hello\n")
    assert path.read_text() == "hello\n"
    assert mode(path) == 0o644


def test_truncated_gzip_is_an_error_not_a_shorter_file(tmp_path):
    rng = np.random.default_rng(0)
    text = "".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 200))}\n" for i in range(2000))
    data = gzip.compress(text.encode())
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BioseqError, match="truncated gzip"):
        list(iter_chunks(str(path)))


def test_concatenated_gzip_members_are_complete(tmp_path):
    path = tmp_path / "two.fa.gz"
    path.write_bytes(gzip.compress(b">a\nACGT\n") + gzip.compress(b">b\nGGCC\n"))
    assert [ids for ids, _, _ in iter_chunks(str(path))] == [["a", "b"]]


def test_bgzip_with_its_end_of_file_block_passes(tmp_path):
    eof = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
    path = tmp_path / "b.fa.gz"
    path.write_bytes(gzip.compress(b">a\nACGT\n") + eof)
    check_fasta(path)
    assert [ids for ids, _, _ in iter_chunks(str(path))] == [["a"]]


def test_non_utf8_bytes_are_a_one_line_error(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_bytes(b">a\nAC\xffGT\n")
    with pytest.raises(BioseqError, match="cannot parse FASTA"):
        list(iter_chunks(str(path)))
