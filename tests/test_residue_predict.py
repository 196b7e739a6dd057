"""Per-residue training, windowed prediction and outputs, on the NetSurfP-2.0 fixture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import NETSURFP_SLICE, residue_dataset

from bioseq.checkpoint import load_model
from bioseq.config import dataset_config
from bioseq.data import BatchLoader, TokenExpander
from bioseq.encoding import LengthPolicy
from bioseq.errors import BioseqError
from bioseq.evaluate import evaluate, write_evaluation
from bioseq.io import read_fasta
from bioseq.metrics import residue_metrics
from bioseq.models import build_model
from bioseq.predict import (
    predict_residue_scores,
    residue_long_form,
    residue_windows,
    write_residue_fasta,
)
from bioseq.store import EncodedStore, encode_dataset
from bioseq.tasks import IGNORE
from bioseq.training import train_from_store

CNN = {"channels": [16, 16], "kernel_sizes": [5, 3], "dilations": [1, 2], "residual": True,
       "pool": 1, "dropout": 0.1, "head_hidden": 8}


def test_windows_cover_every_residue_once():
    pieces = residue_windows(np.array([5, 10, 23]), window=10, overlap=4)
    assert pieces.record.tolist() == [0, 1, 2, 2, 2, 2]
    # 23 residues need ceil((23 - 4) / (10 - 4)) = 4 windows, spread evenly
    assert list(zip(pieces.begin.tolist(), pieces.end.tolist(), strict=True)) == [
        (0, 5), (0, 10), (0, 10), (4, 14), (9, 19), (13, 23)]
    # seams in the middle of each overlap: [4, 10) -> 7, [9, 14) -> 11, [13, 19) -> 16
    assert list(zip(pieces.keep_from.tolist(), pieces.keep_to.tolist(), strict=True)) == [
        (0, 5), (0, 10), (0, 7), (7, 11), (11, 16), (16, 23)]
    assert residue_windows(np.array([23]), window=None, overlap=0).end.tolist() == [23]


@pytest.fixture(scope="module")
def trained(residue_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("residue_cnn")
    torch.set_num_threads(1)
    result = train_from_store(residue_store, architecture="cnn", params=CNN,
                              train={"epochs": 4, "batch_size": 8, "lr": 0.01, "monitor": "q3"},
                              out_dir=out, progress=False)
    return out / "model.pt", result


def test_training_crops_long_proteins_and_validates_on_whole_ones(trained, residue_store):
    _, result = trained
    store = EncodedStore(residue_store)
    assert store.meta["length"]["max_length"] == 120
    assert int(store.lengths.max()) > 120  # some fixture chains are longer than the window
    assert len(result.history) == 4
    assert result.history["q3"].between(0, 1).all()
    assert result.best_score == result.history["q3"].max()


def test_stitched_windows_equal_whole_protein_prediction(trained, residue_store):
    """The CNN sees 1 + 4 + 2*2 = 9 residues, so windows that overlap by more than that
    give exactly what the whole protein gives."""
    predictor = load_model(trained[0], device="cpu")
    store = EncodedStore(residue_store)
    rows = np.flatnonzero(store.lengths > 120)
    args = (predictor.model, store.tokens, store.starts, store.lengths, rows, predictor.expander)
    whole = predict_residue_scores(*args, window=None)
    windows = predict_residue_scores(*args, window=40, overlap=20)
    assert residue_windows(store.lengths[rows], window=40, overlap=20).record.size > 3 * len(rows)
    np.testing.assert_allclose(windows, whole, atol=1e-5)
    lengths = store.lengths[rows]
    for k, n in enumerate(lengths):
        np.testing.assert_allclose(whole[k, :, :n].sum(0), 1.0, atol=1e-5)
        assert (whole[k, :, n:] == 0).all()


def test_evaluation_matches_the_written_per_residue_table(trained, residue_store, tmp_path):
    evaluation = evaluate(trained[0], residue_store, split="test", device="cpu")
    write_evaluation(evaluation, metrics_path=tmp_path / "m.json",
                     predictions_path=tmp_path / "p.tsv")
    table = pd.read_csv(tmp_path / "p.tsv", sep="\t", keep_default_na=False)
    store = EncodedStore(residue_store)
    test = store.indices("test")
    assert table["id"].unique().tolist() == [store.ids()[i] for i in test]
    assert len(table) == int(store.lengths[test].sum())
    counted = table[table["label"] != "-"]
    assert len(counted) == evaluation.metrics["residues"] == (store.labels[test] != IGNORE).sum()
    q3 = float((counted["label"] == counted["predicted"]).mean())
    assert evaluation.metrics["q3"] == pytest.approx(q3)
    assert {"C", "E", "H"} >= set(table["predicted"])
    probs = table[["prob_C", "prob_E", "prob_H"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    assert (np.array(list("CEH"))[probs.argmax(1)] == table["predicted"]).all()
    frame = evaluation.predictions
    for _, row in frame.iterrows():
        mine = [(t, p) for t, p in zip(row["label"], row["predicted"], strict=True) if t != "-"]
        assert row["accuracy"] == pytest.approx(np.mean([t == p for t, p in mine]))


def test_metrics_agree_with_recomputation(trained, residue_store):
    evaluation = evaluate(trained[0], residue_store, split="val", device="cpu")
    store = EncodedStore(residue_store)
    val = store.indices("val")
    predictor = load_model(trained[0], device="cpu")
    probs = predict_residue_scores(predictor.model, store.tokens, store.starts, store.lengths,
                                   val, predictor.expander, window=120, overlap=30)
    expected = residue_metrics(store.labels[val], probs, store.label_names)
    assert evaluation.metrics["q3"] == pytest.approx(expected["q3"])
    assert evaluation.metrics["confusion_matrix"] == expected["confusion_matrix"]


def test_python_api_predicts_protein_strings_per_residue(trained, tmp_path):
    predictor = load_model(trained[0], device="cpu")
    records = read_fasta(NETSURFP_SLICE["sequences"])[:3]
    sequences = {r.id: r.sequence for r in records}
    long_protein = "".join(r.sequence for r in records)  # longer than the 120 window
    frame = predictor.predict({**sequences, "joined": long_protein}, batch_size=2)
    assert frame["id"].tolist() == [*sequences, "joined"]
    assert frame["length"].tolist() == [*map(len, sequences.values()), len(long_protein)]
    assert all(len(p) == n for p, n in zip(frame["predicted"], frame["length"], strict=True))
    assert set("".join(frame["predicted"])) <= {"C", "E", "H"}
    alone = predictor.predict([records[0].sequence])
    np.testing.assert_allclose(alone["prob_H"][0], frame["prob_H"][0], atol=1e-5)
    long = residue_long_form(frame, predictor.label_names)
    assert len(long) == frame["length"].sum()
    assert long["residue"].str.cat() == "".join(frame["sequence"])
    assert long.loc[long["id"] == "joined", "position"].tolist() == list(
        range(1, len(long_protein) + 1))
    write_residue_fasta(frame, tmp_path / "pred.fasta")
    written = read_fasta(tmp_path / "pred.fasta")
    assert [(r.id, r.sequence) for r in written] == list(zip(frame["id"], frame["predicted"],
                                                             strict=True))


def test_residue_models_refuse_strand_averaging(trained):
    predictor = load_model(trained[0], device="cpu")
    with pytest.raises(BioseqError, match="DNA/RNA"):
        predictor.predict(["MKV"], rc_average=True)


def test_per_position_targets_are_cut_with_the_tokens(residue_store):
    store = EncodedStore(residue_store)
    rows = np.flatnonzero(store.lengths > 120)[:3]
    loader = BatchLoader(store.tokens, store.starts, store.lengths, rows, targets=store.labels,
                         batch_size=3, trim=True, per_position=True, crop=50, seed=3)
    batch = next(iter(loader))
    assert batch.tokens.shape == batch.targets.shape == (3, 50)
    assert batch.lengths.tolist() == [50, 50, 50]
    for k, row in enumerate(rows):  # the same random window of tokens and labels
        tokens = store.tokens[row].tobytes()
        offset = tokens.find(batch.tokens[k].numpy().tobytes())
        assert offset >= 0
        assert batch.targets[k].tolist() == store.labels[row, offset : offset + 50].tolist()
    short = np.flatnonzero(store.lengths < 100)[:2]
    loader = BatchLoader(store.tokens, store.starts, store.lengths, short, targets=store.labels,
                         batch_size=2, trim=True, per_position=True)
    batch = next(iter(loader))
    width = int(store.lengths[short].max())
    assert batch.targets.shape == (2, width)
    np.testing.assert_array_equal(batch.targets.numpy(), store.labels[short, :width])


def test_per_residue_loss_in_training_counts_only_labelled_residues(residue_store):
    store = EncodedStore(residue_store)
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=20, n_outputs=3, output="position", **CNN).eval()
    rows = store.indices("train")[:4]
    expander = TokenExpander(store.alphabet, ambiguous="soft")
    loader = BatchLoader(store.tokens, store.starts, store.lengths, rows, targets=store.labels,
                         batch_size=4, trim=True, per_position=True)
    probs, loss = predict_residue_scores(model, store.tokens, store.starts, store.lengths, rows,
                                         expander, targets=store.labels)
    batch = next(iter(loader))
    with torch.no_grad():
        logits = model(*expander(batch))
    expected = torch.nn.functional.cross_entropy(logits, batch.targets.long(),
                                                 ignore_index=IGNORE)
    assert loss == pytest.approx(float(expected), rel=1e-5)


def test_validation_during_training_is_the_windowed_evaluation(trained, residue_store):
    """fit() validates as `evaluate` scores: whole proteins in windows of max_length."""
    from bioseq.training import _loaders

    store = EncodedStore(residue_store)
    model_path, result = trained
    evaluation = evaluate(model_path, residue_store, split="val", device="cpu")
    assert evaluation.metrics["q3"] == pytest.approx(result.best_score, abs=1e-9)
    train, val = _loaders(store, (store.indices("train"), store.indices("val")), store.labels,
                          length=LengthPolicy(**store.meta["length"]),
                          batch_size=4, seed=0, device=torch.device("cpu"))
    assert (train.crop, val.crop) == (120, None)
    widths = [batch.tokens.shape[1] for batch in train]
    assert max(widths) == 120 and max(store.lengths[store.indices("train")]) > 120


def test_explicit_overlap_is_kept_through_store_and_checkpoint(tmp_path):
    config = dataset_config("ss", residue_dataset(length={"max_length": 64, "overlap": 24}))
    encode_dataset(config, tmp_path / "store")
    train_from_store(tmp_path / "store", architecture="cnn", params=CNN,
                     train={"epochs": 1}, out_dir=tmp_path / "m", progress=False)
    predictor = load_model(tmp_path / "m" / "model.pt", device="cpu")
    assert (predictor.window, predictor.overlap) == (64, 24)
    frame = predictor.predict(["MKV" * 50])
    assert frame["length"].tolist() == [150] and len(frame["predicted"][0]) == 150


def test_ensemble_scores_are_the_mean_of_its_models(trained, residue_store, tmp_path):
    train_from_store(residue_store, architecture="bigru", params={"hidden": 8, "layers": 1},
                     train={"epochs": 1}, out_dir=tmp_path / "gru", progress=False)
    paths = [trained[0], tmp_path / "gru" / "model.pt"]
    single = [evaluate(p, residue_store, split="test", device="cpu") for p in paths]
    both = evaluate(paths, residue_store, split="test", device="cpu")
    assert both.metrics["ensemble"] == [str(p) for p in paths]
    assert both.metrics["architecture"] == "cnn+bigru"
    for name in ("prob_C", "prob_E", "prob_H"):
        for k in range(len(both.predictions)):
            np.testing.assert_allclose(
                both.predictions[name][k],
                (single[0].predictions[name][k] + single[1].predictions[name][k]) / 2,
                atol=1e-6)
    assert evaluate([trained[0]] * 2, residue_store, device="cpu").metrics["q3"] == \
        single[0].metrics["q3"]


def test_prediction_in_length_groups_keeps_input_order(trained, monkeypatch):
    import bioseq.predict

    predictor = load_model(trained[0], device="cpu")
    records = read_fasta(NETSURFP_SLICE["sequences"])[:7]
    sequences = {r.id: r.sequence for r in records}
    whole = predictor.predict(sequences)
    monkeypatch.setattr(bioseq.predict, "RESIDUE_GROUP", 2)  # 4 groups of similar length
    grouped = predictor.predict(sequences)
    assert grouped["id"].tolist() == list(sequences)
    assert grouped["predicted"].tolist() == whole["predicted"].tolist()
    for a, b in zip(grouped["prob_E"], whole["prob_E"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
