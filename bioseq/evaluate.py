"""Held-out evaluation of a checkpoint on a store split: metrics, predictions, figures."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from . import tasks
from .checkpoint import load_model
from .data import BatchLoader
from .encoding import decode
from .errors import BioseqError
from .io import atomic_path, write_text_atomic
from .metrics import compute_metrics
from .predict import Predictor, predict_scores, residue_long_form
from .store import EncodedStore
from .tasks import IGNORE


class Evaluation(NamedTuple):
    metrics: dict
    predictions: pd.DataFrame  # one row per evaluated record


def check_compatible(predictor: Predictor, store: EncodedStore) -> None:
    """The store must be encoded the way the model was trained."""
    info, meta = predictor.checkpoint, store.meta
    for key in ("alphabet", "task", "encoding", "length"):
        if info.get(key) != meta.get(key):
            raise BioseqError(f"model and data disagree on {key}: model {info.get(key)!r}, "
                              f"data {meta.get(key)!r}", path=str(store.path))
    if tuple(info["label_names"]) != store.label_names:
        raise BioseqError(f"model labels {info['label_names']} differ from the data's "
                          f"{list(store.label_names)}", path=str(store.path))


def evaluate(checkpoint: str | os.PathLike | Sequence[str | os.PathLike],
             store_dir: str | os.PathLike, *, split: str = "test",
             device: str | torch.device | None = None, rc_average: bool = False,
             batch_size: int = 256) -> Evaluation:
    """Metrics and predictions of a checkpoint on a store split; several checkpoints are
    scored as an ensemble (their probabilities, or regression values, averaged)."""
    paths = [checkpoint] if isinstance(checkpoint, str | os.PathLike) else list(checkpoint)
    if not paths:
        raise BioseqError("no checkpoint to evaluate")
    predictors = [load_model(path, device=device) for path in paths]
    store = EncodedStore(store_dir)
    for predictor in predictors:
        check_compatible(predictor, store)
    if rc_average and not store.alphabet.has_strands:
        raise BioseqError(f"rc_average needs a DNA/RNA model, not {store.alphabet.name}")
    index = store.indices(split)
    if not len(index):
        raise BioseqError(f"the {split} split is empty", path=str(store_dir))
    scores = np.mean([_scores(p, store, index, rc_average=rc_average, batch_size=batch_size)
                      for p in predictors], axis=0)
    predictor = predictors[0]
    truth = store.labels[index]
    metrics = compute_metrics(store.task, truth, scores, store.label_names)
    metrics.update(split=split, task=store.task, dataset=store.meta["dataset"],
                   architecture="+".join(p.checkpoint["architecture"] for p in predictors))
    if len(paths) > 1:
        metrics["ensemble"] = [str(path) for path in paths]
    ids = np.asarray(store.ids(), dtype=object)[index]
    if store.task == "per_residue":
        return Evaluation(metrics, _residue_frame(predictor, store, index, list(ids), scores))
    frame = predictor.frame(list(ids), scores)
    if store.task in ("binary", "multiclass"):
        frame.insert(1, "label", [store.label_names[i] for i in truth])
        frame.insert(3, "correct", frame["label"] == frame["predicted"])
    return Evaluation(metrics, frame)


def _scores(predictor: Predictor, store: EncodedStore, index: np.ndarray, *, rc_average: bool,
            batch_size: int) -> np.ndarray:
    """One model's scores on rows `index`, in the data's units."""
    loader = BatchLoader(store.tokens, store.starts, store.lengths, index,
                         batch_size=batch_size, trim=store.meta["length"]["length"] is None,
                         device=predictor.device)
    scores = predict_scores(predictor.model, loader, predictor.expander, task=store.task,
                            rc_average=rc_average, window=predictor.window,
                            overlap=predictor.overlap or 0)
    return tasks.unscale(store.task, scores, predictor.target_scaling)


def _residue_frame(predictor: Predictor, store: EncodedStore, index: np.ndarray, ids: list,
                   scores: np.ndarray) -> pd.DataFrame:
    """Per-protein frame with the true label string ('-' where a residue does not count)
    and the accuracy over counted residues."""
    letters = np.array([*store.label_names, *["-"] * (256 - len(store.label_names))])
    letters[IGNORE] = "-"
    starts, lengths = store.starts[index], store.lengths[index]
    sequences = [decode(store.tokens[r, s : s + n], store.alphabet)
                 for r, s, n in zip(index, starts, lengths, strict=True)]
    frame = predictor.residue_frame(ids, sequences, scores, starts)
    truth = [store.labels[r, s : s + n] for r, s, n in zip(index, starts, lengths, strict=True)]
    frame.insert(4, "label", ["".join(letters[t]) for t in truth])
    predicted = scores.argmax(1)  # (n, width)
    frame.insert(5, "accuracy", [
        float((predicted[k, s : s + len(t)] == t)[t != IGNORE].mean()) if (t != IGNORE).any()
        else float("nan") for k, (s, t) in enumerate(zip(starts, truth, strict=True))])
    return frame


def write_evaluation(evaluation: Evaluation, *, metrics_path: str | Path,
                     predictions_path: str | Path) -> None:
    """Metrics as JSON; predictions as TSV (per-residue: one row per residue)."""
    write_text_atomic(metrics_path, json.dumps(evaluation.metrics, indent=2) + "\n")
    frame = evaluation.predictions
    if evaluation.metrics.get("task") == "per_residue":
        frame = residue_long_form(frame, evaluation.metrics["labels"])
    write_table(frame, predictions_path)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
