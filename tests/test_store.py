import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

import bioseq
from bioseq.config import dataset_config
from bioseq.encoding import decode
from bioseq.errors import BioseqError
from bioseq.store import EncodedStore, encode_dataset


def encode(tmp_path, config: dict, name="store", **kwargs):
    out = tmp_path / name
    meta = encode_dataset(dataset_config("toy", config), out, **kwargs)
    return meta, EncodedStore(out)


def dropped_rows(store_dir) -> list[list[str]]:
    lines = (store_dir / "dropped.tsv").read_text().splitlines()
    assert lines[0] == "id\treason\tother_id"
    return [line.split("\t") for line in lines[1:]]


# ---------------------------------------------------------------- the real splice data

def test_splice_record_and_drop_counts(splice):
    counts = splice.meta["counts"]
    assert counts["records"] == 3190
    assert counts["positions"] == 3190 * 60
    assert counts["duplicates_dropped"] == 184
    assert counts["conflicting_label_records_dropped"] == 2
    assert counts["padded_positions"] == 0
    assert counts["truncated_records"] == 0
    assert counts["soft_masked_positions"] == 0
    assert splice.label_names == ("EI", "IE", "N")
    assert splice.meta["width"] == 60
    assert splice.meta["split_source"] == "random"


def test_splice_duplicate_counts_match_an_independent_count(splice, splice_records):
    by_sequence = defaultdict(list)
    for _, seq, label in splice_records:
        by_sequence[seq].append(label)
    agreeing = sum(len(v) - 1 for v in by_sequence.values() if len(set(v)) == 1)
    conflicting = sum(len(v) for v in by_sequence.values() if len(set(v)) > 1)
    assert (agreeing, conflicting) == (184, 2)
    counts = splice.meta["counts"]
    assert counts["duplicates_dropped"] == agreeing
    assert counts["conflicting_label_records_dropped"] == conflicting


def test_splice_ambiguity_counts_match_the_file(splice, splice_records):
    letters = Counter("".join(seq for _, seq, _ in splice_records))
    expected = {code: letters[code] for code in "NRSD"}
    assert expected == {"N": 56, "R": 1, "S": 1, "D": 2}
    assert splice.meta["counts"]["ambiguous_by_symbol"] == expected
    assert splice.meta["counts"]["ambiguous_positions"] == 60


def test_splice_split_counts_sum_to_the_kept_records(splice):
    splits = splice.meta["counts"]["splits"]
    assert splits["train"] + splits["val"] + splits["test"] == 3190 - 184 - 2 == 3004
    assert splits["dropped"] == 186
    assert splits == {"train": 2404, "val": 300, "test": 300, "dropped": 186}
    assert (splice.split == -1).sum() == 186


def test_splice_splits_are_stratified_by_rounding_per_class(splice):
    classes = splice.meta["counts"]["classes"]
    for name in ("EI", "IE", "N"):
        kept = sum(classes[s][name] for s in ("train", "val", "test"))
        held_out = int(round(kept * 0.1))
        assert classes["test"][name] == held_out
        assert classes["val"][name] == held_out
        assert classes["train"][name] == kept - 2 * held_out
    assert classes["test"] == {"EI": 68, "IE": 67, "N": 165}


def test_splice_dropped_tsv_lists_the_conflicting_pair(splice, splice_store):
    rows = dropped_rows(splice_store)
    assert len(rows) == 186
    conflicts = sorted(tuple(r) for r in rows if r[1] == "conflicting_labels")
    assert conflicts == [
        ("HUMCYPIIE-ACCEPTOR-12121", "conflicting_labels", "HUMCYPIIE-NEG-12121"),
        ("HUMCYPIIE-NEG-12121", "conflicting_labels", "HUMCYPIIE-ACCEPTOR-12121"),
    ]
    assert Counter(r[1] for r in rows) == {"duplicate": 184, "conflicting_labels": 2}


def test_splice_dropped_duplicates_are_exact_copies_of_a_kept_record(splice, splice_store,
                                                                     splice_records):
    sequences = {name: seq for name, seq, _ in splice_records}
    ids = splice.ids()
    kept = {ids[i] for i in np.flatnonzero(splice.split >= 0)}
    for record, reason, other in dropped_rows(splice_store):
        if reason == "duplicate":
            assert sequences[record] == sequences[other]
            assert other in kept


def test_splice_tokens_npy_is_a_valid_uint8_matrix(splice, splice_store, splice_records):
    tokens = np.load(splice_store / "tokens.npy", allow_pickle=False)
    assert tokens.shape == (3190, 60)
    assert tokens.dtype == np.uint8
    with open(splice_store / "tokens.npy", "rb") as handle:
        assert np.lib.format.read_magic(handle) == (1, 0)
    for i in (0, 1, 1500, 3189):
        assert decode(tokens[i], splice.alphabet) == splice_records[i][1]


def test_splice_ids_labels_and_spans(splice, splice_records):
    assert splice.ids() == [name for name, _, _ in splice_records]
    assert len(splice) == 3190
    names = splice.label_names
    assert [names[v] for v in splice.labels] == [label for _, _, label in splice_records]
    assert splice.labels.dtype == np.int64
    assert (splice.starts == 0).all() and (splice.lengths == 60).all()
    assert splice.split.dtype == np.int8


def test_splice_meta_json_matches_the_returned_metadata(splice_build):
    store_dir, returned = splice_build
    meta = json.loads((store_dir / "meta.json").read_text())
    assert meta == returned
    assert meta["bioseq_version"] == bioseq.__version__
    assert meta["dataset"] == "splice"
    assert meta["encoding"] == {"ambiguous": "soft", "soft_masked": "upper"}
    assert meta["length"] == {"length": 60, "max_length": None, "anchor": "left",
                              "truncate": False, "overlap": None}
    assert meta["inputs"][0].endswith("resources/splice/splice.fasta")


def test_store_indices_by_split(splice):
    assert len(splice.indices("train")) == 2404
    assert len(splice.indices("test")) == 300
    assert set(splice.indices("val")).isdisjoint(splice.indices("train"))


def test_small_chunks_give_the_same_store(tmp_path, splice_head):
    path = str(splice_head(200))
    config = {"fasta": path, "length": {"length": 60}}
    _, whole = encode(tmp_path, config, "whole")
    _, chunked = encode(tmp_path, config, "chunked", chunk_characters=500)
    assert np.array_equal(whole.tokens, chunked.tokens)
    assert np.array_equal(whole.split, chunked.split)
    assert whole.meta["counts"] == chunked.meta["counts"]


# ---------------------------------------------------------------- hand-made inputs

def test_split_field_is_honoured_and_a_cross_split_duplicate_keeps_the_test_copy(
        tmp_path, write_fasta):
    path = write_fasta("split.fa", [
        ("a", "AAAACCCC", "label=X split=train"),
        ("b", "AAAACCCC", "label=X split=test"),
        ("c", "GGGGTTTT", "label=X split=val"),
        ("d", "ACACACAC", "label=Y split=train"),
        ("e", "TGTGTGTG", "label=Y split=test"),
        ("f", "CCCCAAAA", "label=X split=train"),
    ])
    meta, store = encode(tmp_path, {"fasta": str(path)})
    assert store.split.tolist() == [-1, 2, 1, 0, 2, 0]
    assert meta["split_source"] == "input"
    assert meta["counts"]["splits"] == {"train": 2, "val": 1, "test": 2, "dropped": 1}
    assert dropped_rows(store.path) == [["a", "duplicate", "b"]]


def test_repeated_id_of_an_exact_copy_is_dropped_as_a_duplicate(tmp_path, write_fasta):
    path = write_fasta("rep.fa", [("a", "ACGT", "label=X"), ("b", "TTTT", "label=X"),
                                  ("a", "ACGT", "label=X"), ("c", "GGGG", "label=Y"),
                                  ("d", "CCCC", "label=Y")])
    meta, store = encode(tmp_path, {"fasta": str(path)})
    assert meta["counts"]["duplicates_dropped"] == 1
    assert dropped_rows(store.path) == [["a", "duplicate", "a"]]
    assert store.split[2] == -1


def test_duplicate_id_with_a_different_sequence_is_an_error(tmp_path, write_fasta):
    path = write_fasta("dupid.fa", [("a", "ACGT", "label=X"), ("b", "TTTT", "label=X"),
                                    ("a", "ACGG", "label=X")])
    with pytest.raises(BioseqError) as err:
        encode(tmp_path, {"fasta": str(path)})
    assert str(err.value) == (f"{path}: record 'a': duplicate ID with a different sequence or "
                              "label (records 1 and 3)")
    assert not (tmp_path / "store").exists()


def test_duplicate_id_with_a_different_label_is_an_error(tmp_path, write_fasta):
    path = write_fasta("dupid.fa", [("a", "ACGT", "label=X"), ("a", "ACGT", "label=Y")])
    with pytest.raises(BioseqError, match="record 'a': duplicate ID with a different"):
        encode(tmp_path, {"fasta": str(path)})


def test_class_with_one_example_is_an_error(tmp_path, write_fasta):
    path = write_fasta("one.fa", [("a", "ACGT", "label=X"), ("b", "TTTT", "label=X"),
                                  ("c", "GGGG", "label=Y")])
    with pytest.raises(BioseqError) as err:
        encode(tmp_path, {"fasta": str(path)})
    assert str(err.value) == ("dataset 'toy': class 'Y' has 1 example(s) after removing "
                              "duplicates; every class needs at least 2")


def test_class_left_with_one_example_after_deduplication_is_an_error(tmp_path, write_fasta):
    path = write_fasta("dups.fa", [("a", "ACGT", "label=X"), ("b", "TTTT", "label=X"),
                                   ("c", "GGGG", "label=Y"), ("d", "GGGG", "label=Y")])
    with pytest.raises(BioseqError, match="class 'Y' has 1 example"):
        encode(tmp_path, {"fasta": str(path)})


def test_longest_mode_stores_the_maximum_length(tmp_path, write_fasta):
    path = write_fasta("var.fa", [("a", "ACGTA", "label=X"), ("b", "ACGTACGTT", "label=X"),
                                  ("c", "GGG", "label=Y"), ("d", "TTTTTT", "label=Y")])
    meta, store = encode(tmp_path, {"fasta": str(path)})
    assert meta["width"] == 9
    assert store.tokens.shape == (4, 9)
    assert store.lengths.tolist() == [5, 9, 3, 6]
    assert decode(store.tokens[2], store.alphabet) == "GGG------"
    assert meta["counts"]["padded_positions"] == 4 + 0 + 6 + 3
    assert meta["length"]["length"] is None


def test_max_length_with_truncate_caps_the_width(tmp_path, write_fasta):
    path = write_fasta("var.fa", [("a", "ACGTA", "label=X"), ("b", "ACGTACGTT", "label=X"),
                                  ("c", "GGG", "label=Y"), ("d", "TTTTTT", "label=Y")])
    meta, store = encode(tmp_path, {"fasta": str(path), "length": {
        "max_length": 6, "truncate": True, "anchor": "right"}})
    assert meta["width"] == 6
    assert decode(store.tokens[1], store.alphabet) == "CGTACGTT"[-6:]
    assert decode(store.tokens[2], store.alphabet) == "GGG---"  # padded on the right
    assert meta["counts"]["truncated_records"] == 1
    assert meta["counts"]["truncated_positions"] == 3


def test_labels_from_a_table(tmp_path, write_fasta):
    path = write_fasta("t.fa", [("a", "ACGT"), ("b", "TTTT"), ("c", "GGGG"), ("d", "CCCC")])
    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tlabel\nd\tneg\nc\tpos\nb\tneg\na\tpos\n")
    meta, store = encode(tmp_path, {"fasta": str(path), "labels_table": str(labels),
                                    "task": "binary"})
    assert store.label_names == ("neg", "pos")
    assert store.labels.tolist() == [1, 0, 1, 0]


def test_table_missing_id_fails_and_leaves_no_store(tmp_path, write_fasta):
    path = write_fasta("t.fa", [("a", "ACGT"), ("b", "TTTT"), ("ghost", "GGGG")])
    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tlabel\na\tX\nb\tY\n")
    with pytest.raises(BioseqError, match="record 'ghost': no label for this ID"):
        encode(tmp_path, {"fasta": str(path), "labels_table": str(labels)})
    assert not (tmp_path / "store").exists()


def test_labels_from_one_fasta_per_class(tmp_path, write_fasta):
    prom = write_fasta("prom.fa", [("p1", "TATAAT"), ("p2", "TATAAA"), ("p3", "TTGACA")])
    non = write_fasta("non.fa", [("n1", "GCGCGC"), ("n2", "CCCGGG")])
    meta, store = encode(tmp_path, {"class_fastas": {"promoter": str(prom),
                                                     "non_promoter": str(non)},
                                    "task": "binary", "classes": ["non_promoter", "promoter"]})
    assert store.ids() == ["p1", "p2", "p3", "n1", "n2"]
    assert store.labels.tolist() == [1, 1, 1, 0, 0]
    assert meta["inputs"] == [str(prom), str(non)]
    assert meta["counts"]["classes"]["train"]["promoter"] + sum(
        meta["counts"]["classes"][s]["promoter"] for s in ("val", "test")) == 3


def test_protein_store(tmp_path, write_fasta):
    path = write_fasta("p.fa", [("a", "MKVXU", "label=s"), ("b", "MKV", "label=s"),
                                ("c", "WWBZ", "label=t"), ("d", "ACDO", "label=t")])
    meta, store = encode(tmp_path, {"fasta": str(path), "alphabet": "protein"})
    assert decode(store.tokens[0], store.alphabet) == "MKVXU"
    assert meta["counts"]["ambiguous_by_symbol"] == {"X": 1, "U": 1, "B": 1, "Z": 1, "O": 1}


def test_failed_encoding_leaves_no_output_directory(tmp_path, write_fasta):
    path = write_fasta("bad.fa", [("a", "ACGT", "label=X"), ("b", "AC!T", "label=Y")])
    with pytest.raises(BioseqError, match="record 'b': illegal character '!'"):
        encode(tmp_path, {"fasta": str(path)}, name="out/store")
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_encoding_keeps_the_previous_store(tmp_path, write_fasta):
    good = write_fasta("good.fa", [("a", "ACGT", "label=X"), ("b", "TTTT", "label=X"),
                                   ("c", "GGGG", "label=Y"), ("d", "CCCC", "label=Y")])
    encode(tmp_path, {"fasta": str(good)})
    bad = write_fasta("bad.fa", [("a", "ACGT", "label=X"), ("b", "", "label=X")])
    with pytest.raises(BioseqError, match="record 'b': empty sequence"):
        encode(tmp_path, {"fasta": str(bad)})
    assert EncodedStore(tmp_path / "store").ids() == ["a", "b", "c", "d"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_directory_without_meta_is_not_a_store(tmp_path):
    with pytest.raises(BioseqError, match="not an encoded store \\(meta.json missing\\)"):
        EncodedStore(tmp_path)


def test_ids_with_unusual_separators_stay_aligned(tmp_path, write_fasta):
    ids = ["a\x1cb", "c\u2028d", "e", "f"]
    path = write_fasta("odd.fa", [(i, "ACGT" * (k + 1), f"label={'XY'[k % 2]}")
                                  for k, i in enumerate(ids)])
    _, store = encode(tmp_path, {"fasta": str(path)})
    assert store.ids() == ids


# Genomic windows from BED intervals on the demo chr20 slice (resources/genome)
GENOME_SLICE = Path(__file__).resolve().parents[1] / "resources" / "genome" / \
    "GRCh37_chr20_1-2000000.fa.gz"


def test_bed_intervals_encode_as_windows_of_the_genome(tmp_path):
    from bioseq.genome import Genome

    bed = tmp_path / "sites.bed"
    rows = [("20", 1318039 + 1000 * i, 1318050 + 1000 * i, f"site{i}", "donor" if i % 2 else
             "other") for i in range(40)]
    bed.write_text("".join("\t".join(map(str, row)) + "\n" for row in rows))
    meta, store = encode(tmp_path, {"bed": str(bed), "reference": str(GENOME_SLICE),
                                    "bed_label_column": 5, "length": {"length": 21,
                                                                      "anchor": "center"}})
    assert meta["counts"]["records"] == 40 and store.label_names == ("donor", "other")
    ids = store.ids()
    with Genome(GENOME_SLICE) as genome:
        for row, name in enumerate(ids[:5]):
            i = int(name.removeprefix("site"))
            middle = (rows[i][1] + rows[i][2]) // 2
            expected = genome.fetch("20", middle - 10, middle + 11)
            assert decode(store.tokens[row], store.alphabet) == expected
            assert store.label_names[store.labels[row]] == rows[i][4]
    assert decode(store.tokens[ids.index("site0")], store.alphabet)[5:16] == "CTCAAGGTAAG"


def test_class_beds_and_missing_contigs(tmp_path):
    (tmp_path / "a.bed").write_text("20\t1000000\t1000010\n20\t1100000\t1100010\n")
    (tmp_path / "b.bed").write_text("20\t1200000\t1200010\nchr7\t5\t15\n")
    entry = {"class_beds": {"a": str(tmp_path / "a.bed"), "b": str(tmp_path / "b.bed")},
             "reference": str(GENOME_SLICE), "task": "binary", "length": {"length": 10}}
    with pytest.raises(BioseqError, match=r"b.bed: record 'chr7:6-15': contig 'chr7' is "
                                          "not in the reference"):
        encode(tmp_path, entry)
    assert not (tmp_path / "store").exists()
