import copy
import json
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from bioseq import tasks, training
from bioseq.checkpoint import load_model
from bioseq.data import BatchLoader, TokenExpander
from bioseq.errors import BioseqError
from bioseq.evaluate import evaluate
from bioseq.models import build_model
from bioseq.predict import predict_scores
from bioseq.store import EncodedStore
from bioseq.training import _autocasts, _fingerprint, _lr_lambda, fit, train_from_store


def loaders(store, *, seed=0):
    """200 training and 60 validation records spread over the (class-sorted) file."""
    train_index, val_index = store.indices("train")[::12], store.indices("val")[::5]
    train = BatchLoader(store.tokens, store.starts, store.lengths, train_index,
                        targets=store.labels, batch_size=32, shuffle=True, seed=seed)
    val = BatchLoader(store.tokens, store.starts, store.lengths, val_index,
                      targets=store.labels, batch_size=64)
    return train, val, store.labels[val_index]


def tiny(architecture, tiny_hparams, seed=0):
    torch.manual_seed(seed)
    return build_model(architecture, in_channels=4, n_outputs=3, **tiny_hparams(architecture))


def run_fit(store, model, **kwargs):
    train, val, val_targets = loaders(store, seed=kwargs.get("seed", 0))
    settings = {"epochs": 3, "lr": 0.01, "progress": False, **kwargs}
    return fit(model, train, val, expander=TokenExpander(store.alphabet, ambiguous="soft"),
               task="multiclass", label_names=store.label_names, val_targets=val_targets,
               **settings)


def val_loss(store, model) -> float:
    """Cross-entropy of `model` on the validation records of `loaders`."""
    _, val, _ = loaders(store)
    _, loss = predict_scores(model, val, TokenExpander(store.alphabet, ambiguous="soft"),
                             task="multiclass", with_loss=True)
    return loss


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_with_the_same_seed_is_reproducible(splice, tiny_hparams):
    results = []
    for _ in range(2):
        model = tiny("cnn", tiny_hparams, seed=5)
        results.append((run_fit(splice, model, seed=5), model))
    (first, model_a), (second, model_b) = results
    pd.testing.assert_frame_equal(first.history.drop(columns="seconds"),
                                  second.history.drop(columns="seconds"))
    assert same_weights(model_a, model_b)
    assert first.best_epoch == second.best_epoch


def test_fit_seed_alone_makes_dropout_reproducible(splice, tiny_hparams):
    start = tiny("transformer", tiny_hparams)
    model_a, model_b = copy.deepcopy(start), copy.deepcopy(start)
    first = run_fit(splice, model_a, seed=0, epochs=1)
    torch.rand(10)  # anything else that draws from the global generator in between
    second = run_fit(splice, model_b, seed=0, epochs=1)
    assert first.history["train_loss"].tolist() == second.history["train_loss"].tolist()
    assert same_weights(model_a, model_b)


def test_history_has_one_row_per_epoch_and_marks_the_best(splice, tiny_hparams):
    result = run_fit(splice, tiny("cnn", tiny_hparams), epochs=4, patience=10)
    history = result.history
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    for column in ("train_loss", "val_loss", "accuracy", "mcc", "macro_f1", "lr", "seconds",
                   "best"):
        assert column in history.columns
    best = int(history["val_loss"].to_numpy().argmin()) + 1
    assert history.loc[history["best"], "epoch"].tolist() == [best]
    assert result.best_epoch == best
    assert result.best_score == pytest.approx(history["val_loss"].min())
    assert result.monitor == "val_loss"
    assert result.device == "cpu"


def test_model_ends_with_the_weights_of_its_best_epoch(splice, tiny_hparams):
    model = tiny("cnn", tiny_hparams)
    result = run_fit(splice, model, epochs=4, patience=10)
    _, val, _ = loaders(splice)
    _, loss = predict_scores(model, val, TokenExpander(splice.alphabet, ambiguous="soft"),
                             task="multiclass", with_loss=True)
    assert loss == pytest.approx(result.best_score, abs=1e-6)


def test_monitor_a_metric_marks_its_maximum(splice, tiny_hparams):
    result = run_fit(splice, tiny("transformer", tiny_hparams), epochs=3, monitor="mcc",
                     patience=10)
    history = result.history
    best_rows = history.index[history["best"]].tolist()
    assert len(best_rows) == 1
    # the first epoch reaching the maximum (later ties are not improvements)
    assert best_rows[0] == int(history["mcc"].to_numpy().argmax())
    assert result.best_score == pytest.approx(history["mcc"].max())


def test_early_stopping_after_patience_epochs_without_improvement(splice, tiny_hparams):
    # lr 0: weights never change, so val_loss never improves after epoch 1
    result = run_fit(splice, tiny("transformer", tiny_hparams), epochs=10, lr=0.0, patience=3)
    assert result.history["epoch"].tolist() == [1, 2, 3, 4]
    assert result.best_epoch == 1
    assert len(set(result.history["val_loss"])) == 1


def test_unknown_monitor_is_an_error(splice, tiny_hparams):
    with pytest.raises(BioseqError, match="monitor 'f2' is not one of"):
        run_fit(splice, tiny("cnn", tiny_hparams), epochs=1, monitor="f2")


def test_history_file_is_written(splice, tiny_hparams, tmp_path):
    path = tmp_path / "history.tsv"
    result = run_fit(splice, tiny("cnn", tiny_hparams), epochs=2, history_path=path)
    written = pd.read_csv(path, sep="\t")
    assert written["epoch"].tolist() == [1, 2]
    assert written["best"].tolist() == result.history["best"].tolist()


def test_cosine_schedule_warms_up_then_decays_to_one_percent():
    factor = _lr_lambda("cosine", 100, 0.05)
    assert [factor(s) for s in range(5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factor(5) == pytest.approx(1.0)
    assert factor(5 + 95 // 2) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 47 / 95)))
    assert factor(100) == pytest.approx(0.01)
    assert factor(500) == pytest.approx(0.01)


def test_constant_schedule_and_unknown_schedule():
    assert _lr_lambda("constant", 10, 0.5)(0) == 1.0
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        _lr_lambda("linear", 10, 0.1)


# ---------------------------------------------------------------- task helpers used by fit

def test_inverse_frequency_class_weights():
    weights = tasks.class_weights("multiclass", np.array([0, 0, 0, 1, 2, 2]), 3)
    assert weights.tolist() == pytest.approx([6 / (3 * 3), 6 / (3 * 1), 6 / (3 * 2)])


def test_binary_positive_weight_is_negatives_over_positives():
    weights = tasks.class_weights("binary", np.array([0, 0, 0, 1]), 2)
    assert weights.tolist() == pytest.approx([3.0])


def test_regression_targets_are_standardised_on_the_training_values():
    values = np.array([[1.0, 5.0], [3.0, 5.0]], np.float32)
    scaling = tasks.target_scaling("regression", values)
    assert scaling == {"mean": [2.0, 5.0], "std": [1.0, 1.0]}  # zero std becomes 1
    prepared = tasks.prepare_targets("regression", values, scaling)
    assert prepared.tolist() == [[-1.0, 0.0], [1.0, 0.0]]
    assert tasks.unscale("regression", prepared, scaling).tolist() == values.tolist()


def test_binary_scores_are_two_columns():
    scores = tasks.scores("binary", torch.tensor([[0.0], [2.0]]))
    assert scores.shape == (2, 2)
    assert scores[0].tolist() == pytest.approx([0.5, 0.5])
    assert scores[1, 1].item() == pytest.approx(1 / (1 + np.exp(-2.0)))


# ---------------------------------------------------------------- train_from_store

def test_train_from_store_writes_model_history_and_summary(splice_store, tiny_hparams,
                                                           tmp_path):
    out = tmp_path / "run"
    result = train_from_store(splice_store, architecture="cnn", params=tiny_hparams("cnn"),
                              train={"epochs": 2, "batch_size": 128, "seed": 1},
                              out_dir=out, device="cpu", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["history.tsv", "model.pt", "train.json"]
    summary = json.loads((out / "train.json").read_text())
    assert summary["architecture"] == "cnn"
    assert summary["dataset"] == "splice"
    assert summary["epochs_run"] == 2 == len(result.history)
    assert summary["train_records"] == 2404
    assert summary["val_records"] == 300
    assert summary["best_epoch"] == result.best_epoch
    assert "label_smoothing" not in summary
    history = pd.read_csv(out / "history.tsv", sep="\t")
    assert history["epoch"].tolist() == [1, 2]
    predictor = load_model(out / "model.pt", device="cpu")
    assert predictor.label_names == ("EI", "IE", "N")
    assert predictor.checkpoint["training"] == summary
    evaluation = evaluate(out / "model.pt", splice_store, split="val", device="cpu")
    assert evaluation.metrics["n"] == 300
    assert evaluation.metrics["accuracy"] == pytest.approx(
        float(history.loc[history["best"], "accuracy"].iloc[0]), abs=1e-6)


def test_flatten_head_trains_on_windows_longer_than_the_sequences(splice_fasta, tmp_path,
                                                                  tiny_hparams):
    from bioseq.config import dataset_config
    from bioseq.store import encode_dataset

    config = dataset_config("splice64", {"fasta": str(splice_fasta), "length": {"length": 64}})
    encode_dataset(config, tmp_path / "store")  # 60-nt sequences in 64-nt windows
    result = train_from_store(tmp_path / "store", architecture="cnn",
                              params={**tiny_hparams("cnn"), "head_pool": "flatten"},
                              train={"epochs": 1, "batch_size": 256}, out_dir=tmp_path / "run",
                              device="cpu", progress=False)
    assert len(result.history) == 1


def test_train_from_store_needs_a_val_split(tmp_path, write_fasta, tiny_hparams):
    from bioseq.config import dataset_config
    from bioseq.store import encode_dataset

    path = write_fasta("given.fa", [("a", "ACGTAC", "label=x split=train"),
                                    ("b", "AGGTAC", "label=x split=train"),
                                    ("c", "TTGTAC", "label=y split=train"),
                                    ("d", "CCGTAC", "label=y split=test")])
    encode_dataset(dataset_config("given", {"fasta": str(path)}), tmp_path / "store")
    with pytest.raises(BioseqError, match="train and val splits must both be non-empty "
                                          "\\(3 train, 0 val\\)"):
        train_from_store(tmp_path / "store", architecture="cnn", params=tiny_hparams("cnn"),
                         train={"epochs": 1}, out_dir=tmp_path / "run")


def test_rc_augment_on_protein_is_an_error(tmp_path, write_fasta, tiny_hparams):
    from bioseq.config import dataset_config
    from bioseq.store import encode_dataset

    path = write_fasta("prot.fa", [("a", "MKVL", "label=x split=train"),
                                   ("b", "MKVA", "label=x split=val"),
                                   ("c", "WWYL", "label=y split=train"),
                                   ("d", "WWYA", "label=y split=val")])
    encode_dataset(dataset_config("p", {"fasta": str(path), "alphabet": "protein"}),
                   tmp_path / "store")
    with pytest.raises(BioseqError, match="rc_augment needs DNA/RNA, not protein"):
        train_from_store(tmp_path / "store", architecture="cnn", params=tiny_hparams("cnn"),
                         train={"epochs": 1, "rc_augment": True}, out_dir=tmp_path / "run")


@pytest.mark.slow
def test_cnn_reaches_90_percent_test_accuracy_on_splice(splice_store, tmp_path):
    params = {"channels": [64, 64], "kernel_sizes": [9, 5], "pool": [1, 2],
              "head_pool": "flatten", "head_hidden": 64, "head_dropout": 0.5}
    train_from_store(splice_store, architecture="cnn", params=params,
                     train={"epochs": 8, "lr": 0.002, "weight_decay": 0.05},
                     out_dir=tmp_path / "cnn", device="cpu", progress=False)
    evaluation = evaluate(tmp_path / "cnn" / "model.pt", splice_store, device="cpu")
    assert evaluation.metrics["n"] == 300
    assert evaluation.metrics["accuracy"] >= 0.90


def test_monitor_that_does_not_fit_the_task_fails_before_training(splice_store, tmp_path):
    with pytest.raises(BioseqError, match="monitor 'mse' does not apply to a multiclass"):
        train_from_store(splice_store, architecture="cnn", params={},
                         train={"monitor": "mse"}, out_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_regression_validation_metrics_are_in_target_units(tmp_path, write_fasta):
    """history.tsv's val mse must equal the mse of the kept model on the val split, in the
    targets' own units (the model trains on standardised targets)."""
    from bioseq.config import dataset_config
    from bioseq.store import encode_dataset

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(120)]
    fasta = write_fasta("r.fa", [(f"r{i}", s) for i, s in enumerate(seqs)])
    table = tmp_path / "y.tsv"
    table.write_text("id\tgc\n" + "".join(f"r{i}\t{100 * (s.count('G') + s.count('C'))}\n"
                                          for i, s in enumerate(seqs)))
    config = dataset_config("r", {"fasta": str(fasta), "task": "regression",
                                  "labels_table": str(table), "label_columns": ["gc"],
                                  "length": {"length": 30}})
    encode_dataset(config, tmp_path / "store")
    result = train_from_store(tmp_path / "store", architecture="cnn",
                              params={"channels": [4], "kernel_sizes": [3], "pool": [1]},
                              train={"epochs": 1}, out_dir=tmp_path / "m", progress=False)
    evaluation = evaluate(tmp_path / "m" / "model.pt", tmp_path / "store", split="val")
    assert result.history["mse"].iloc[0] == pytest.approx(evaluation.metrics["mse"], rel=1e-4)
    assert evaluation.metrics["mse"] > 100  # targets are in the hundreds, not standardised


def test_rc_augment_trains_reproducibly(splice, tiny_hparams):
    histories = []
    for _ in range(2):
        model = tiny("cnn", tiny_hparams, seed=3)
        histories.append(run_fit(splice, model, seed=3, rc_augment=True).history)
    pd.testing.assert_frame_equal(histories[0].drop(columns="seconds"),
                                  histories[1].drop(columns="seconds"))
    plain = run_fit(splice, tiny("cnn", tiny_hparams, seed=3), seed=3).history
    assert plain["train_loss"].iloc[0] != histories[0]["train_loss"].iloc[0]


class StepSnapshots:
    """The model's state after every optimizer step of a run (a global post-step hook);
    `fail_at` makes that step raise, as a job killed mid-epoch would stop."""

    def __init__(self, model, fail_at: int | None = None):
        self.model, self.fail_at, self.states = model, fail_at, []

    def __enter__(self):
        def hook(optimizer, args, kwargs):
            self.states.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
            if len(self.states) == self.fail_at:
                raise RuntimeError("killed")

        self.handle = register_optimizer_step_post_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_ema_model_is_the_moving_average_of_every_step(splice, tiny_hparams):
    decay = 0.9
    start = tiny("cnn", tiny_hparams)  # conv + BatchNorm: running statistics are averaged too
    plain = copy.deepcopy(start)
    with StepSnapshots(plain) as steps:
        run_fit(splice, plain, epochs=1)
    expected = {k: v.clone() for k, v in start.state_dict().items()}
    for t, state in enumerate(steps.states, start=1):
        d = min(decay, (1 + t) / (10 + t))
        for key, value in state.items():
            if value.is_floating_point():
                expected[key] = d * expected[key] + (1 - d) * value
            else:
                expected[key] = value
    averaged = copy.deepcopy(start)
    run_fit(splice, averaged, epochs=1, ema_decay=decay)
    got = averaged.state_dict()
    assert len(steps.states) == 7  # 200 records in batches of 32
    assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected)
    last = steps.states[-1]
    assert not all(torch.allclose(got[k].float(), last[k].float(), atol=1e-3) for k in last)


def test_ema_validation_scores_the_averaged_weights(splice, tiny_hparams):
    model = tiny("cnn", tiny_hparams)
    result = run_fit(splice, model, epochs=3, patience=10, ema_decay=0.95)
    assert val_loss(splice, model) == pytest.approx(result.best_score, abs=1e-6)


def test_ema_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(splice, tiny_hparams,
                                                                       tmp_path):
    start = tiny("cnn", tiny_hparams)
    settings = dict(epochs=3, patience=10, ema_decay=0.9, fingerprint="same")
    straight = copy.deepcopy(start)
    run_fit(splice, straight, resume_path=tmp_path / "straight.pt", **settings)
    killed = copy.deepcopy(start)
    with StepSnapshots(killed, fail_at=10), pytest.raises(RuntimeError, match="killed"):
        run_fit(splice, killed, resume_path=tmp_path / "killed.pt", **settings)  # in epoch 2
    state = torch.load(tmp_path / "killed.pt", weights_only=True)
    assert state["epoch"] == 1
    resumed = copy.deepcopy(start)
    started = time.perf_counter()
    result = run_fit(splice, resumed, resume_path=tmp_path / "killed.pt", **settings)
    wall = time.perf_counter() - started
    assert result.history["epoch"].tolist() == [1, 2, 3]
    assert result.best_epoch > 1  # the returned weights went through the restored average
    assert same_weights(straight, resumed)
    # the training time counts the epoch done before the kill
    assert wall < result.seconds <= wall + state["seconds"]


def test_resume_state_without_a_time_counts_its_epochs(splice, tiny_hparams, tmp_path):
    start, settings = tiny("cnn", tiny_hparams), dict(epochs=2, patience=10, fingerprint="f")
    with StepSnapshots(copy.deepcopy(start), fail_at=8), pytest.raises(RuntimeError):
        run_fit(splice, copy.deepcopy(start), resume_path=tmp_path / "r.pt", **settings)
    state = torch.load(tmp_path / "r.pt", weights_only=True)
    del state["seconds"]  # as states written before the time was kept
    torch.save(state, tmp_path / "r.pt")
    started = time.perf_counter()
    result = run_fit(splice, copy.deepcopy(start), resume_path=tmp_path / "r.pt", **settings)
    wall = time.perf_counter() - started
    assert result.history["epoch"].tolist() == [1, 2]
    epoch_one = result.history["seconds"].iloc[0]
    assert result.seconds == pytest.approx(wall + epoch_one, abs=0.05)


def test_ema_off_keeps_the_resume_fingerprint_of_earlier_runs(splice_store):
    store, settings = EncodedStore(splice_store), {"epochs": 3, "lr": 0.01}
    before = _fingerprint(store, "cnn", {}, settings)
    assert _fingerprint(store, "cnn", {}, {**settings, "ema_decay": None}) == before
    assert _fingerprint(store, "cnn", {}, {**settings, "ema_decay": 0.9}) != before


@pytest.mark.parametrize(("architecture", "precision", "training_dtype"), [
    ("cnn", None, torch.float32), ("cnn", "fp32", torch.float32),
    ("cnn", "bf16", torch.bfloat16), ("cnn_bilstm", "bf16", torch.bfloat16)])
def test_precision_sets_the_training_steps_autocast_on_cpu(
        splice, tiny_hparams, architecture, precision, training_dtype, monkeypatch):
    # as on a CPU with native bf16, whatever this one has (without, bf16 is emulated: slow
    # but correct, so the bf16 path is tested on every machine)
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
    model = tiny(architecture, tiny_hparams)
    backbone = model.backbone.conv if architecture == "cnn_bilstm" else model.backbone
    seen = set()  # (training?, dtype of the first convolution's output)
    hook = backbone.blocks[0].conv.register_forward_hook(
        lambda module, args, out: seen.add((module.training, out.dtype)))
    result = run_fit(splice, model, epochs=1, precision=precision, device="cpu")
    hook.remove()
    assert seen == {(True, training_dtype), (False, torch.float32)}
    assert np.isfinite(result.history["train_loss"]).all()
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_precision_on_cuda_defaults_to_bf16_and_fp32_turns_it_off(monkeypatch):
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert _autocasts(None, cuda) and _autocasts("bf16", cuda) and _autocasts("bf16", cpu)
    assert not _autocasts("fp32", cuda) and not _autocasts(None, cpu)


def test_precision_bf16_on_a_cpu_without_native_bf16_warns_and_trains_in_fp32(
        splice, tiny_hparams, monkeypatch, caplog):
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: False)
    assert _autocasts("bf16", torch.device("cuda"))  # GPUs are not concerned
    model = tiny("cnn", tiny_hparams)
    seen = set()
    hook = model.backbone.blocks[0].conv.register_forward_hook(
        lambda module, args, out: seen.add(out.dtype))
    with caplog.at_level("WARNING", logger="bioseq.training"):
        run_fit(splice, model, epochs=1, precision="bf16", device="cpu")
    hook.remove()
    assert seen == {torch.float32}
    assert "no native bf16" in caplog.text and "training in fp32" in caplog.text


def test_label_smoothing_mixes_each_target_with_the_uniform_distribution():
    torch.manual_seed(0)
    logits, targets, e = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0]), 0.2
    log_p = torch.log_softmax(logits, dim=1)
    smoothed = (1 - e) * torch.nn.functional.one_hot(targets, 3) + e / 3
    expected = -(smoothed * log_p).sum(1).mean()
    got = tasks.loss("multiclass", logits, targets, label_smoothing=e)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert tasks.loss("multiclass", logits, targets).item() != pytest.approx(got.item())
    binary_logits, binary_targets = torch.randn(5, 1), torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    p = torch.sigmoid(binary_logits[:, 0])
    soft = binary_targets * (1 - e) + e / 2  # 0.9 and 0.1
    expected = -(soft * torch.log(p) + (1 - soft) * torch.log(1 - p)).mean()
    got = tasks.loss("binary", binary_logits, binary_targets, label_smoothing=e)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_label_smoothing_per_residue_counts_only_scored_residues():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4)  # (B, C, L)
    targets = torch.tensor([[0, 2, tasks.IGNORE, 1], [1, tasks.IGNORE, tasks.IGNORE, 0]])
    keep = targets != tasks.IGNORE
    flat_logits = logits.permute(0, 2, 1)[keep]  # (scored residues, C)
    expected = tasks.loss("multiclass", flat_logits, targets[keep].long(), label_smoothing=0.1)
    got = tasks.loss("per_residue", logits, targets, label_smoothing=0.1)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(BioseqError, match="label_smoothing applies to classification"):
        tasks.loss("regression", torch.randn(3, 1), torch.randn(3, 1), label_smoothing=0.1)


def test_label_smoothing_changes_training_but_not_validation_loss(splice, tiny_hparams):
    plain, smoothed = tiny("cnn", tiny_hparams), tiny("cnn", tiny_hparams)
    run_fit(splice, plain, epochs=2, patience=10)
    result = run_fit(splice, smoothed, epochs=2, patience=10, label_smoothing=0.2)
    assert not same_weights(plain, smoothed)
    # validation scores the true labels: the best epoch's val_loss is plain cross-entropy
    assert val_loss(splice, smoothed) == pytest.approx(result.best_score, abs=1e-6)


def test_label_smoothing_is_recorded_and_labels_the_training_loss_curve(splice_store,
                                                                       tiny_hparams, tmp_path):
    from bioseq.report.plots import learning_curves

    out = tmp_path / "run"
    train_from_store(splice_store, architecture="cnn", params=tiny_hparams("cnn"),
                     train={"epochs": 1, "batch_size": 128, "label_smoothing": 0.1},
                     out_dir=out, device="cpu", progress=False)
    summary = json.loads((out / "train.json").read_text())
    assert summary["label_smoothing"] == 0.1
    history = pd.read_csv(out / "history.tsv", sep="\t")
    figure = learning_curves(history, monitor=summary["monitor"],
                             label_smoothing=summary["label_smoothing"])
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == ["train loss (smoothed labels, ε 0.1)", "val loss"]
    plain = learning_curves(history, monitor=summary["monitor"])
    assert [t.get_text() for t in plain.axes[0].get_legend().get_texts()] == [
        "train loss", "val loss"]


def test_label_smoothing_on_a_regression_store_fails_before_training(tmp_path, write_fasta,
                                                                      tiny_hparams):
    from bioseq.config import dataset_config
    from bioseq.store import encode_dataset

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 10)) for _ in range(40)]
    fasta = write_fasta("r.fa", [(f"r{i}", s) for i, s in enumerate(seqs)])
    table = tmp_path / "y.tsv"
    table.write_text("id\ty\n" + "".join(f"r{i}\t{i}\n" for i in range(len(seqs))))
    encode_dataset(dataset_config("r", {"fasta": str(fasta), "task": "regression",
                                        "labels_table": str(table), "label_columns": ["y"],
                                        "length": {"length": 10}}), tmp_path / "store")
    with pytest.raises(BioseqError, match="label_smoothing applies to classification, not a "
                                          "regression task"):
        train_from_store(tmp_path / "store", architecture="cnn", params=tiny_hparams("cnn"),
                         train={"epochs": 1, "label_smoothing": 0.1}, out_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "model.pt").exists()
