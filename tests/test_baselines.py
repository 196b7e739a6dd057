"""The k-mer logistic-regression baseline (bioseq.baselines)."""

from __future__ import annotations

import numpy as np
import pytest

from bioseq.alphabets import get_alphabet
from bioseq.baselines import fit_baseline, kmer_features, residue_window_features
from bioseq.config import dataset_config
from bioseq.store import EncodedStore, encode_dataset

DNA = get_alphabet("dna")


def tokens_of(*sequences: str, width: int) -> np.ndarray:
    """Token rows padded on the right to `width`."""
    rows = np.full((len(sequences), width), DNA.pad_token, np.uint8)
    for i, seq in enumerate(sequences):
        rows[i, : len(seq)] = [DNA.symbols.index(c) for c in seq]
    return rows


def test_kmer_frequencies_by_hand():
    features = kmer_features(tokens_of("AACGN", "CC", width=6), alphabet_size=4, kmax=2)
    assert features.shape == (2, 4 + 16)
    dense = features.toarray()
    # row 0: 1-mers A A C G (N not counted), 2-mers AA AC CG (CN, GN... not counted)
    assert dense[0, :4].tolist() == [0.5, 0.25, 0.25, 0.0]
    two = dense[0, 4:].reshape(4, 4)  # [first letter, second letter]
    assert two[0, 0] == two[0, 1] == two[1, 2] == pytest.approx(1 / 3)
    assert two.sum() == pytest.approx(1.0)
    assert dense[1, :4].tolist() == [0, 1, 0, 0]
    assert dense[1, 4 + 1 * 4 + 1] == 1.0  # CC


def test_residue_windows_by_hand():
    tokens = np.array([[0, 1, 2, 3]], np.uint8)  # pad token of a 4-token toy alphabet: 4
    features = residue_window_features(tokens, np.array([0, 0]), np.array([0, 3]),
                                       n_tokens=5, window=1)
    dense = features.toarray()
    assert dense.shape == (2, 15)
    # residue 0: (left: padding, self: 0, right: 1); residue 3: (2, 3, padding)
    assert np.flatnonzero(dense[0]).tolist() == [0 * 5 + 4, 1 * 5 + 0, 2 * 5 + 1]
    assert np.flatnonzero(dense[1]).tolist() == [0 * 5 + 2, 1 * 5 + 3, 2 * 5 + 4]


def motif_store(tmp_path, write_fasta) -> EncodedStore:
    """Random 40-mers; class 'yes' holds TATAAT somewhere, 'no' never does."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(400):
        seq = "".join(rng.choice(list("ACGT"), 40))
        while "TATAAT" in seq:
            seq = "".join(rng.choice(list("ACGT"), 40))
        label = "yes" if i % 2 else "no"
        if label == "yes":
            at = rng.integers(0, 34)
            seq = seq[:at] + "TATAAT" + seq[at + 6 :]
        records.append((f"s{i}", seq, f"label={label}"))
    path = write_fasta("motif.fa", records)
    config = dataset_config("motif", {"fasta": str(path), "task": "binary",
                                      "classes": ["no", "yes"], "length": {"length": 40}})
    encode_dataset(config, tmp_path / "store")
    return EncodedStore(tmp_path / "store")


def test_baseline_finds_a_kmer_signal(tmp_path, write_fasta):
    result = fit_baseline(motif_store(tmp_path, write_fasta), kmax=6, C=(0.1, 10.0))
    assert result.metrics["accuracy"] >= 0.95
    assert result.metrics["architecture"] == "kmer_baseline"
    assert result.C in (0.1, 10.0)
    assert result.metrics["n"] == 40


def test_baseline_on_splice_is_far_from_chance_but_position_blind(splice):
    # k-mer counts drop the positions that matter at a splice site: above the 0.52
    # majority class, well below what a position-aware model reaches (~0.95)
    result = fit_baseline(splice, kmax=4, C=(0.1, 1.0))
    assert 0.6 < result.metrics["accuracy"] < 0.85
    assert set(result.metrics["per_class"]) == {"EI", "IE", "N"}


def test_per_residue_baseline_reads_the_window(residue_store):
    result = fit_baseline(EncodedStore(residue_store), kmax=1, window=5, C=(1.0,))
    metrics = result.metrics
    assert metrics["task"] == "per_residue"
    assert 0.45 < metrics["q3"] < 0.75  # a linear model of local letters: above coil-only
    assert metrics["residues"] > 0 and "protein_accuracy_mean" in metrics


def test_regression_has_no_baseline(tmp_path, write_fasta):
    path = write_fasta("r.fa", [("a", "ACGT"), ("b", "ACGA")])
    table = tmp_path / "t.tsv"
    table.write_text("id\ty\na\t1.0\nb\t2.0\n")
    config = dataset_config("r", {"fasta": str(path), "task": "regression",
                                  "labels_table": str(table), "label_columns": ["y"],
                                  "split": {"val_fraction": 0.0, "test_fraction": 0.0},
                                  "length": {"length": 4}})
    encode_dataset(config, tmp_path / "store")
    with pytest.raises(Exception, match="classifies"):
        fit_baseline(EncodedStore(tmp_path / "store"))



def test_sampled_residues_are_scored_alone(residue_store):
    """With fewer sampled residues than the split holds, only the sampled ones count."""
    store = EncodedStore(residue_store)
    whole = fit_baseline(store, kmax=1, window=3, C=(1.0,))
    sampled = fit_baseline(store, kmax=1, window=3, C=(1.0,), max_records=150)
    assert sampled.val_metrics["residues"] == 150
    assert whole.val_metrics["residues"] > 150
    assert 0.3 < sampled.val_metrics["q3"] < 0.9  # unsampled residues would drag it down
