"""Per-residue inputs: the NetSurfP-style FASTA triple and the CB513-style table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioseq.errors import BioseqError
from bioseq.residues import label_matrix, read_fasta_triple, read_residue_table, residue_classes
from bioseq.tasks import IGNORE

DATA = Path(__file__).resolve().parent / "data"
TRIPLE = [DATA / f"netsurfp2_slice_{kind}.fasta" for kind in ("sequences", "labels", "mask")]


def parse_plain(path: Path) -> list[tuple[str, str]]:
    """(header, body) pairs of a one-line-per-record FASTA, without bioseq."""
    lines = path.read_text().splitlines()
    return [(lines[i][1:], lines[i + 1]) for i in range(0, len(lines), 2)]


def write(tmp_path: Path, name: str, records) -> Path:
    path = tmp_path / name
    path.write_text("".join(f">{h}\n{s}\n" for h, s in records))
    return path


def test_netsurfp_slice_is_read_with_its_split_hints():
    records = read_fasta_triple(*TRIPLE)
    labels = parse_plain(TRIPLE[1])
    assert records.ids == [h.split()[0] for h, _ in labels]
    assert records.labels == [body for _, body in labels]
    expected = [2 if "SET=test" in h else 1 if "VALIDATION=True" in h else 0 for h, _ in labels]
    assert records.split.tolist() == expected
    assert np.bincount(records.split).tolist() == [20, 6, 6]
    assert residue_classes(records.labels) == ("C", "E", "H")


def test_label_matrix_applies_the_mask_and_padding():
    records = read_fasta_triple(*TRIPLE)
    matrix = label_matrix(records.labels, records.masks, np.zeros(len(records.ids), int), 300,
                          ("C", "E", "H"))
    for row, (label, mask) in enumerate(zip(records.labels, records.masks, strict=True)):
        expected = ["CEH".index(c) if m == "1" else IGNORE for c, m in zip(label, mask,
                                                                          strict=True)]
        assert matrix[row, : len(label)].tolist() == expected
        assert (matrix[row, len(label):] == IGNORE).all()
    unresolved = sum(m.count("0") for m in records.masks)
    assert unresolved > 0
    assert (matrix != IGNORE).sum() == sum(len(m) for m in records.masks) - unresolved


def test_label_matrix_places_labels_at_window_starts():
    matrix = label_matrix(["HEC"], None, np.array([2]), 6, ("C", "E", "H"))
    assert matrix.tolist() == [[IGNORE, IGNORE, 2, 1, 0, IGNORE]]


def test_files_in_different_orders_are_aligned_by_id(tmp_path):
    seqs = write(tmp_path, "s.fa", [("a", "MKV"), ("b", "GG")])
    labels = write(tmp_path, "l.fa", [("b SET=test", "CC"), ("a SET=train", "HHE")])
    records = read_fasta_triple(seqs, labels)
    assert records.labels == ["HHE", "CC"] and records.split.tolist() == [0, 2]
    assert records.masks is None


@pytest.mark.parametrize(("labels", "mask", "message", "record"), [
    ([("a", "HH"), ("b", "CC")], None, "label has 2 letters for 3 residues", "a"),
    ([("a", "HHE"), ("b", "CC")], [("a", "111"), ("b", "1")], "mask has 1 digits for 2", "b"),
    ([("a", "HHE"), ("b", "CC")], [("a", "1x1"), ("b", "11")], "only 0 and 1", "a"),
    ([("a", "HHE")], None, "no record for this ID", "b"),
    ([("a", "HHE"), ("b", "CC"), ("c", "C")], None, "ID not in", "c"),
    ([("a", "HHE"), ("b", "CC"), ("a", "HHE")], None, "duplicate ID", "a"),
])
def test_bad_triples_name_file_and_record(tmp_path, labels, mask, message, record):
    seqs = write(tmp_path, "s.fa", [("a", "MKV"), ("b", "GG")])
    label_path = write(tmp_path, "l.fa", labels)
    mask_path = write(tmp_path, "m.fa", mask) if mask else None
    with pytest.raises(BioseqError) as err:
        read_fasta_triple(seqs, label_path, mask_path)
    assert message in str(err.value) and f"record '{record}'" in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_empty_sequence_is_an_error(tmp_path):
    seqs = write(tmp_path, "s.fa", [("a", "MKV"), ("b", "")])
    labels = write(tmp_path, "l.fa", [("a", "HHE"), ("b", "")])
    with pytest.raises(BioseqError, match="record 'b': empty sequence"):
        read_fasta_triple(seqs, labels)


def test_unknown_label_letter_is_an_error():
    with pytest.raises(BioseqError, match=r"label letter\(s\) 'X' not among"):
        residue_classes(["HEC", "HXC"], ("C", "E", "H"), path="l.fa")


def test_cb513_style_table(tmp_path):
    source = Path(__file__).resolve().parents[2] / "shared/data/secondary_structure/cb513.tsv"
    if not source.is_file():
        pytest.skip("shared data not beside the checkout")
    head = source.read_text().splitlines()[:4]
    path = tmp_path / "cb.tsv"
    path.write_text("\n".join(head) + "\n")
    rows = [line.split("\t") for line in head[1:]]
    records = read_residue_table(path, label_column="dssp8", mask_column="eval_mask")
    assert records.ids == [r[0] for r in rows]
    assert records.sequences == [r[1] for r in rows] and records.labels == [r[3] for r in rows]
    assert records.masks == [r[5] for r in rows] and records.split is None


def test_table_with_wrong_label_length_names_the_row(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("id\tsequence\tdssp3\nx\tMKV\tHH\n")
    with pytest.raises(BioseqError, match="t.tsv: record 'x': label has 2 letters for 3"):
        read_residue_table(path)


def test_duplicate_id_in_the_sequence_file_is_an_error(tmp_path):
    seqs = write(tmp_path, "s.fa", [("a", "MKV"), ("a", "GG")])
    labels = write(tmp_path, "l.fa", [("a", "HHE")])
    with pytest.raises(BioseqError, match="s.fa: record 'a': duplicate ID"):
        read_fasta_triple(seqs, labels)
