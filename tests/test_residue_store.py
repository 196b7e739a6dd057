"""Per-residue stores: label matrices aligned with tokens, test sets, leakage, homology split."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import NETSURFP_SLICE, REPO, residue_dataset

from bioseq.config import dataset_config
from bioseq.errors import BioseqError
from bioseq.residues import read_fasta_triple
from bioseq.store import EncodedStore, encode_dataset, encode_test_set
from bioseq.tasks import IGNORE


def test_store_holds_the_triple_with_masked_residues_ignored(residue_store):
    store = EncodedStore(residue_store)
    records = read_fasta_triple(*NETSURFP_SLICE.values())
    assert store.task == "per_residue" and store.label_names == ("C", "E", "H")
    assert store.ids() == records.ids
    assert store.labels.dtype == np.uint8 and store.labels.shape == store.tokens.shape
    assert store.tokens.shape[1] == max(map(len, records.sequences))  # whole, never cut
    for row, (label, mask) in enumerate(zip(records.labels, records.masks, strict=True)):
        expected = ["CEH".index(c) if m == "1" else IGNORE for c, m in zip(label, mask,
                                                                          strict=True)]
        assert store.labels[row, : len(label)].tolist() == expected
        assert (store.labels[row, len(label):] == IGNORE).all()
    assert store.split.tolist() == records.split.tolist()
    counted = sum(m.count("1") for m in records.masks)
    assert store.meta["counts"]["residues_counted"] == counted
    assert sum(store.meta["counts"]["classes"]["train"].values()) == (
        (store.labels[store.split == 0] != IGNORE).sum())


def _cb513_style_table(tmp_path, records, rows):
    lines = ["id\tsequence\tdssp3\tdisorder_mask"]
    lines += [f"T{i}\t{records.sequences[i]}\t{records.labels[i]}\t{records.masks[i]}"
              for i in rows]
    path = tmp_path / "test.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_training_records_in_a_test_set_are_dropped_and_counted(tmp_path):
    records = read_fasta_triple(*NETSURFP_SLICE.values())
    train_rows = [i for i, s in enumerate(records.split) if s == 0][:2]
    test_row = int(np.flatnonzero(records.split == 2)[0])  # a NEW364 chain
    table = _cb513_style_table(tmp_path, records, [*train_rows, test_row])
    config = dataset_config("ss", residue_dataset(test_sets={"ext": {
        "residue_table": str(table), "label_field": "dssp3", "mask_column": "disorder_mask"}}))
    meta = encode_dataset(config, tmp_path / "store")
    store = EncodedStore(tmp_path / "store")
    assert meta["counts"]["test_set_overlap_dropped"] == {"ext": 2}
    assert (store.split[train_rows] == -1).all()
    assert store.split[test_row] == 2  # the data set's own test split is not touched
    dropped = (tmp_path / "store" / "dropped.tsv").read_text().splitlines()
    assert dropped[1:] == [f"{records.ids[i]}\tin_test_set_ext\tT{i}" for i in train_rows]

    meta = encode_test_set(config, "ext", tmp_path / "ext", store_dir=tmp_path / "store")
    test = EncodedStore(tmp_path / "ext")
    assert test.ids() == [f"T{i}" for i in (*train_rows, test_row)]
    assert (test.split == 2).all() and test.label_names == store.label_names
    assert meta["split_source"] == "held_out"
    n = len(records.labels[test_row])
    np.testing.assert_array_equal(test.labels[2, :n], store.labels[test_row, :n])


def test_unknown_test_set_is_an_error(residue_store):
    config = dataset_config("ss", residue_dataset())
    with pytest.raises(BioseqError, match="no test set 'x'"):
        encode_test_set(config, "x", residue_store.parent / "x", store_dir=residue_store)


def test_same_sequence_in_train_and_test_keeps_the_test_copy_even_if_labels_differ(tmp_path):
    records = read_fasta_triple(*NETSURFP_SLICE.values())
    row = int(np.flatnonzero(records.split == 2)[0])
    seq, test_labels = records.sequences[row], records.labels[row]
    other_labels = "C" * len(seq)
    paths = {}
    for kind, body in (("sequences", [seq, seq]), ("labels", [other_labels, test_labels])):
        paths[kind] = tmp_path / f"{kind}.fa"
        headers = ["a SET=train VALIDATION=False", "b SET=test VALIDATION=False"]
        paths[kind].write_text("".join(f">{h}\n{b}\n" for h, b in zip(headers, body,
                                                                      strict=True)))
    config = dataset_config("ss", {"alphabet": "protein", "task": "per_residue",
                                   "fasta": str(paths["sequences"]),
                                   "residue_labels": str(paths["labels"]),
                                   "split": {"field": "SET"}})
    meta = encode_dataset(config, tmp_path / "store")
    assert EncodedStore(tmp_path / "store").split.tolist() == [-1, 2]
    assert meta["counts"]["duplicates_dropped"] == 1
    assert "duplicate_other_labels" in (tmp_path / "store" / "dropped.tsv").read_text()


TAG = "MGSSHHHHHHSSGLVPRGSH"  # the His-tag + thrombin site that opens many PDB chains


def _families(rng, sizes, mutation):
    """Tagged sequences: families of `sizes` members, each member `mutation` mutated."""
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    records = []
    for f, size in enumerate(sizes):
        parent = rng.choice(letters, 150)
        for member in range(size):
            child = parent.copy()
            changed = rng.choice(150, int(150 * mutation), replace=False)
            child[changed] = rng.choice(letters, len(changed))
            records.append((f"f{f}_{member}", TAG + "".join(child)))
    return records


def test_homology_split_keeps_families_together_but_not_tagged_strangers(tmp_path):
    rng = np.random.default_rng(0)
    # 11 families of 5 at 10% mutations, and one of 30 close copies (5%): every k-mer of
    # the big family is in more than 5 sequences, like the tag all 85 share
    records = _families(rng, [5] * 11 + [30], mutation=0.1)
    labels = [(i, "".join(rng.choice(list("CEH"), len(s)))) for i, s in records]
    for name, rows in (("seq.fa", records), ("lab.fa", labels)):
        (tmp_path / name).write_text("".join(f">{i}\n{s}\n" for i, s in rows))
    config = dataset_config("ss", {
        "alphabet": "protein", "task": "per_residue", "fasta": str(tmp_path / "seq.fa"),
        "residue_labels": str(tmp_path / "lab.fa"),
        "split": {"method": "homology", "identity": 0.5, "val_fraction": 0.2,
                  "test_fraction": 0.2, "seed": 1}})
    meta = encode_dataset(config, tmp_path / "store")
    split = EncodedStore(tmp_path / "store").split
    families = [split[5 * f : 5 * f + 5] for f in range(11)] + [split[55:]]
    assert all((family == family[0]).all() for family in families)  # each on one side
    assert meta["counts"]["homology_clusters"] == 12  # the shared tag links nobody
    assert (split[55:] == 0).all()  # 30 records never fit a 17-record test or val share
    # whole families of 5 fill test and val up to their 17-record shares: 3 each
    assert np.bincount(split, minlength=3).tolist() == [85 - 30, 15, 15]
    assert meta["split_source"] == "homology"


def test_homology_clusters_of_real_chains_stay_small():
    """The 322-chain demo slice of NetSurfP-2.0 (filtered to < 25% identity): tags and
    repeats must not chain unrelated proteins into one cluster."""
    from bioseq.alphabets import get_alphabet
    from bioseq.encoding import EncodingPolicy, LengthPolicy, SequenceEncoder
    from bioseq.io import read_fasta
    from bioseq.splits import homology_groups

    records = read_fasta(REPO / "resources/secondary_structure/netsurfp2_sequences.fasta")
    encoder = SequenceEncoder(get_alphabet("protein"), EncodingPolicy(), LengthPolicy())
    chunk = encoder.encode([r.id for r in records], [r.sequence for r in records])
    groups = homology_groups(chunk.tokens, chunk.starts, chunk.lengths,
                             np.ones(len(records), bool), kmer=5, identity=0.5)
    sizes = np.bincount(groups)
    assert len(records) == 322 and sizes.max() <= 5 and len(sizes) >= 300
    tagged = [i for i, r in enumerate(records) if r.sequence.startswith("MGSSHHHHHH")]
    assert len(tagged) == 14 and len(set(groups[tagged])) >= 12  # 14 His-tagged chains


def test_sequence_level_test_set_drops_its_sequences_from_training(tmp_path, splice_head):
    fasta = splice_head(300)
    lines = fasta.read_text().splitlines()
    external = tmp_path / "external.fa"  # 3 records renamed: same sequences, other IDs
    external.write_text("".join(f">x{k} {lines[2 * k][1:].split()[1]}\n{lines[2 * k + 1]}\n"
                                for k in range(3)))
    config = dataset_config("s", {"fasta": str(fasta), "length": {"length": 60},
                                  "split": {"test_fraction": 0.2},
                                  "test_sets": {"ext": {"fasta": str(external)}}})
    meta = encode_dataset(config, tmp_path / "store")
    store = EncodedStore(tmp_path / "store")
    # each copy is either in the data set's own test split or dropped, never trained on
    assert set(store.split[:3].tolist()) <= {-1, 2}
    n_dropped = int((store.split[:3] == -1).sum())
    assert n_dropped >= 1
    assert meta["counts"]["test_set_overlap_dropped"] == {"ext": n_dropped}
    dropped = (tmp_path / "store" / "dropped.tsv").read_text()
    assert dropped.count("\tin_test_set_ext\tx") == n_dropped
    encode_test_set(config, "ext", tmp_path / "ext", store_dir=tmp_path / "store")
    test = EncodedStore(tmp_path / "ext")
    assert test.ids() == ["x0", "x1", "x2"] and test.label_names == store.label_names
    np.testing.assert_array_equal(test.tokens, store.tokens[:3])
    np.testing.assert_array_equal(test.labels, store.labels[:3])


def test_homology_split_refuses_data_that_bring_their_own_split(tmp_path):
    config = dataset_config("ss", residue_dataset(split={"field": "SET", "method": "homology"}))
    with pytest.raises(BioseqError, match="input already gives splits .field 'SET'"):
        encode_dataset(config, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_q8_monitor_on_three_states_is_refused_before_training(residue_store, tmp_path):
    from bioseq.training import train_from_store

    with pytest.raises(BioseqError, match="monitor 'q8' needs 8 classes; the data have 3"):
        train_from_store(residue_store, architecture="bigru", params={"hidden": 4},
                         train={"monitor": "q8"}, out_dir=tmp_path / "m", progress=False)
