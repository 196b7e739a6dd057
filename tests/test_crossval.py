"""Cross-validation folds and nested model selection (bioseq.crossval)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from bioseq.crossval import (
    assign_folds,
    flat_metrics,
    fold_split,
    rank_models,
    summarize_folds,
    summary_table,
    write_fold_store,
)
from bioseq.errors import BioseqError
from bioseq.store import EncodedStore


def test_folds_are_stratified_and_partition_the_kept_records():
    labels = np.array([0] * 53 + [1] * 17 + [2] * 30)
    keep = np.ones(100, bool)
    keep[[3, 60, 99]] = False
    fold_of = assign_folds(labels, keep, folds=5, seed=1, stratify=True)
    assert (fold_of[~keep] == -1).all()
    assert set(fold_of[keep]) == set(range(5))
    sizes = np.bincount(fold_of[keep])
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 97
    for c in range(3):  # every class spread evenly over the folds
        per_fold = np.bincount(fold_of[keep & (labels == c)], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    assert np.array_equal(fold_of, assign_folds(labels, keep, folds=5, seed=1, stratify=True))
    assert not np.array_equal(fold_of, assign_folds(labels, keep, folds=5, seed=2,
                                                    stratify=True))


def test_too_few_records_for_the_folds():
    with pytest.raises(BioseqError, match="3 records cannot make 5 folds"):
        assign_folds(np.zeros(3, int), np.ones(3, bool), folds=5, seed=0, stratify=True)


def test_fold_split_holds_the_fold_out_and_a_stratified_val_part():
    labels = np.array([0] * 80 + [1] * 20)
    fold_of = assign_folds(labels, np.ones(100, bool), folds=4, seed=0, stratify=True)
    split = fold_split(fold_of, labels, fold=2, val_fraction=0.2, seed=0, stratify=True)
    assert np.array_equal(split == 2, fold_of == 2)
    # 60 class-0 and 15 class-1 records outside the fold: 20% of each goes to val
    assert ((split == 1) & (labels == 0)).sum() == 12
    assert ((split == 1) & (labels == 1)).sum() == 3
    assert (split == 0).sum() == 75 - 15
    assert (split >= 0).all()


def test_every_record_is_tested_exactly_once_over_the_folds(splice_store, tmp_path):
    parent = EncodedStore(splice_store)
    tested = np.zeros(len(parent), int)
    for fold in range(1, 4):
        meta = write_fold_store(splice_store, tmp_path / f"fold{fold}", fold=fold, folds=3,
                                val_fraction=0.1, seed=0)
        store = EncodedStore(tmp_path / f"fold{fold}")
        tested += store.split == 2
        assert meta["cv"] == {"fold": fold, "folds": 3, "seed": 0, "val_fraction": 0.1,
                              "grouped_by": None}
        assert meta["counts"]["splits"]["test"] == (store.split == 2).sum()
        assert meta["counts"]["splits"]["dropped"] == (parent.split == -1).sum()
        assert os.path.samefile(store.path / "tokens.npy", parent.path / "tokens.npy")
        assert np.array_equal(store.labels, parent.labels)
    assert (tested[parent.split >= 0] == 1).all()
    assert (tested[parent.split < 0] == 0).all()
    assert json.loads((parent.path / "meta.json").read_text())["split_source"] == "random"


def test_grouped_folds_keep_groups_whole_and_spread_each_class():
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 7, 120)  # 120 groups of 1-6 records, one class each ...
    groups = np.repeat(np.arange(120), sizes)
    labels = np.repeat(rng.choice(2, 120, p=[0.75, 0.25]), sizes)
    labels[groups == 7] = [0, 1, 0, 1, 0, 1][: (groups == 7).sum()]  # ... but one mixed
    keep = np.ones(len(labels), bool)
    keep[:4] = False
    groups[:4] = -1  # dropped records have no cluster
    fold_of = assign_folds(labels, keep, folds=5, seed=0, stratify=True, groups=groups)
    assert (fold_of[~keep] == -1).all() and set(fold_of[keep]) == set(range(5))
    for g in np.unique(groups[keep]):
        assert len(set(fold_of[groups == g])) == 1
    for c in (0, 1):  # each class spread evenly, as far as whole groups allow
        per_fold = np.bincount(fold_of[keep & (labels == c)], minlength=5)
        assert per_fold.max() - per_fold.min() <= 2
    assert np.array_equal(fold_of, assign_folds(labels, keep, folds=5, seed=0, stratify=True,
                                                groups=groups))
    split = fold_split(fold_of, labels, fold=1, val_fraction=0.2, seed=0, stratify=True,
                       groups=groups)
    assert np.array_equal(split == 2, fold_of == 1) and (split[~keep] == -1).all()
    for g in np.unique(groups[keep & (fold_of != 1)]):
        assert len(set(split[groups == g])) == 1  # whole in train or in val
    rest = keep & (fold_of != 1)
    for c in (0, 1):
        val_share = ((split == 1) & (labels == c)).sum() / (rest & (labels == c)).sum()
        assert 0.15 <= val_share <= 0.25


def test_grouped_folds_fill_evenly_when_classes_tie():
    # singletons only: no fold holds a class yet at first, and ties must not pile up in
    # fold 0 (4 + 4 records over 5 folds; 10 classes of 12 over 5 folds)
    fold_of = assign_folds(np.array([0] * 4 + [1] * 4), np.ones(8, bool), folds=5, seed=0,
                           stratify=True, groups=np.arange(8))
    assert sorted(np.bincount(fold_of, minlength=5)) == [1, 1, 2, 2, 2]
    labels = np.repeat(np.arange(10), 12)
    fold_of = assign_folds(labels, np.ones(120, bool), folds=5, seed=0, stratify=True,
                           groups=np.arange(120))
    assert np.bincount(fold_of).tolist() == [24] * 5


def test_grouped_val_part_holds_every_class():
    labels = np.array([1] * 6 + [0] * 194)  # a rare class of 6 singletons
    groups = np.arange(200)
    groups[6:] = 6 + np.arange(194) // 2  # the common class in pairs
    fold_of = assign_folds(labels, np.ones(200, bool), folds=5, seed=0, stratify=True,
                           groups=groups)
    for fold in range(5):
        split = fold_split(fold_of, labels, fold=fold, val_fraction=0.1, seed=0,
                           stratify=True, groups=groups)
        assert ((split == 1) & (labels == 1)).sum() >= 1
        assert ((split == 0) & (labels == 1)).sum() >= 1


def test_a_cluster_bigger_than_a_fold_is_refused():
    groups = np.array([0] * 30 + list(range(1, 71)))
    with pytest.raises(BioseqError, match="a homology cluster holds 30 of 100 records, more "
                                          "than one fold of 5: raise split.identity"):
        assign_folds(np.zeros(100, int), np.ones(100, bool), folds=5, seed=0, stratify=True,
                     groups=groups)


def test_homology_folds_keep_shifted_copies_of_dna_in_one_fold(tmp_path, write_fasta):
    """Alternative start sites of one promoter are 81-nt windows of the same DNA a few
    bases apart: folds made with `split.method: homology` keep each family together."""
    from bioseq.config import dataset_config
    from bioseq.store import encode_dataset

    rng = np.random.default_rng(0)
    genome = "".join(rng.choice(list("ACGT"), 20_000))
    records = {"neg": [], "pos": []}
    for family in range(40):  # 20 families per class of 1-4 windows shifted by 3-25 nt
        start = 400 * family
        for copy in range(int(rng.integers(1, 5))):
            window = genome[start + 7 * copy : start + 7 * copy + 81]
            records["pos" if family % 2 else "neg"].append((f"f{family}_{copy}", window))
    for single in range(60):  # unrelated singletons
        records["neg"].append((f"s{single}", "".join(rng.choice(list("ACGT"), 81))))
    config = dataset_config("p", {
        "alphabet": "dna", "task": "binary", "length": {"length": 81},
        "class_fastas": {c: str(write_fasta(f"{c}.fa", r)) for c, r in records.items()},
        "split": {"method": "homology", "kmer": 8, "identity": 0.8}, "cv": {"folds": 4}})
    meta = encode_dataset(config, tmp_path / "store")
    assert meta["counts"]["homology_clusters"] == 40 + 60
    ids = EncodedStore(tmp_path / "store").ids()
    family_of = np.array([i.split("_")[0] if "_" in i else i for i in ids])
    fold_of = np.full(len(ids), -1)
    for fold in range(1, 5):
        meta = write_fold_store(tmp_path / "store", tmp_path / f"fold{fold}", fold=fold,
                                folds=4, seed=2)
        assert meta["cv"]["grouped_by"] == "homology"
        assert os.path.samefile(tmp_path / f"fold{fold}" / "groups.npy",
                                tmp_path / "store" / "groups.npy")
        split = EncodedStore(tmp_path / f"fold{fold}").split
        fold_of[split == 2] = fold
        for family in np.unique(family_of[split >= 0]):
            assert len(set(split[family_of == family])) == 1  # never across test/val/train
    assert (fold_of > 0).all()
    for family in np.unique(family_of):
        assert len(set(fold_of[family_of == family])) == 1


def test_a_homology_store_without_its_clusters_is_refused(tmp_path, splice_store):
    import shutil

    shutil.copytree(splice_store, tmp_path / "store")
    meta = json.loads((tmp_path / "store" / "meta.json").read_text())
    (tmp_path / "store" / "meta.json").write_text(json.dumps({**meta,
                                                              "split_source": "homology"}))
    with pytest.raises(BioseqError, match="split by homology but without groups.npy"):
        write_fold_store(tmp_path / "store", tmp_path / "f", fold=1, folds=3)


def test_fold_number_is_checked(splice_store, tmp_path):
    with pytest.raises(BioseqError, match="fold 4 is not one of 1..3"):
        write_fold_store(splice_store, tmp_path / "f", fold=4, folds=3)


def test_rank_models_by_validation_metric():
    val = {"a": {"mcc": 0.5, "mse": 2.0}, "b": {"mcc": 0.7, "mse": 1.0},
           "c": {"mcc": None, "mse": 3.0}, "d": {"mcc": 0.7, "mse": 0.5}}
    assert rank_models(val, select="mcc") == ["b", "d", "a", "c"]  # ties keep config order
    assert rank_models(val, select="mse") == ["d", "b", "a", "c"]  # lower is better


def test_flat_metrics_adds_per_class_error():
    metrics = {"n": 10, "accuracy": 0.9, "labels": ["x", "y", "z"], "ok": True,
               "per_class": {"x": {"recall": 0.75, "support": 4},
                             "y": {"recall": 1.0, "support": 6},
                             "z": {"recall": 0.0, "support": 0}}}  # absent from the fold
    assert flat_metrics(metrics) == {"accuracy": 0.9, "error_x": 0.25, "error_y": 0.0}


def _fold(k, val_scores, test_scores, baseline=None):
    models = {name: {"val": {"mcc": val_scores[name]}, "test": {"mcc": test_scores[name]}}
              for name in val_scores}
    return {"fold": k, "models": models, "baseline": baseline, "ensemble": None}


def test_selection_uses_validation_only_and_averages_test_folds():
    family = {"cnn.g1": "cnn", "cnn.g2": "cnn", "gru": "gru"}
    folds = [
        # fold 1: cnn.g1 wins on val although cnn.g2 is better on test
        _fold(1, {"cnn.g1": 0.9, "cnn.g2": 0.8, "gru": 0.85},
              {"cnn.g1": 0.70, "cnn.g2": 0.95, "gru": 0.60}, baseline={"mcc": 0.5}),
        # fold 2: cnn.g2 wins the grid; gru is best overall on val
        _fold(2, {"cnn.g1": 0.6, "cnn.g2": 0.7, "gru": 0.8},
              {"cnn.g1": 0.65, "cnn.g2": 0.75, "gru": 0.80}, baseline={"mcc": 0.7}),
    ]
    summary = summarize_folds(folds, select="mcc", family=family)
    rows = summary["rows"]
    assert summary["choices"] == [
        {"fold": 1, "family_choice": {"cnn": "cnn.g1", "gru": "gru"}, "best": "cnn.g1"},
        {"fold": 2, "family_choice": {"cnn": "cnn.g2", "gru": "gru"}, "best": "gru"}]
    assert rows["cnn"]["mcc"]["mean"] == pytest.approx((0.70 + 0.75) / 2)
    assert rows["best"]["mcc"]["mean"] == pytest.approx((0.70 + 0.80) / 2)
    assert rows["best"]["mcc"]["sd"] == pytest.approx(np.std([0.70, 0.80], ddof=1))
    assert rows["cnn.g2"]["mcc"]["mean"] == pytest.approx(0.85)
    assert rows["kmer_baseline"]["mcc"]["mean"] == pytest.approx(0.6)
    assert "gru" in rows and rows["gru"]["kind"] == "model"  # no grid: no family row
    assert "ensemble" not in rows
    table = {row["row"]: row for row in summary_table(summary)}
    assert table["best"]["mcc_mean"] == pytest.approx(0.75)
    assert table["best"]["folds"] == 2
