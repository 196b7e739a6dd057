"""The non-deep baseline: logistic regression on k-mer features, trained beside the models.

Per sequence, the features are the frequencies of every k-mer of k = 1..kmax (a k-mer
holding an ambiguous letter or padding is not counted), scaled by their largest training
value; per residue (`per_residue` tasks), the one-hot letters of the `window` residues
either side of it and of itself (padding beyond the ends has a letter of its own). The
regularisation strength C is the one best on the val split (by the task's selection
metric); the test split, and any test set, is then scored once.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import MaxAbsScaler

from .errors import BioseqError
from .io import atomic_path
from .metrics import LOWER_IS_BETTER, compute_metrics
from .store import EncodedStore
from .tasks import IGNORE

ROWS_PER_CHUNK = 4096
SELECT = {"binary": "mcc", "multiclass": "accuracy", "per_residue": "accuracy"}


def kmer_features(tokens: np.ndarray, *, alphabet_size: int, kmax: int) -> sparse.csr_matrix:
    """tokens: (n, width) uint8 (letters < alphabet_size; ambiguity codes and padding above)
    -> (n, sum of alphabet_size**k for k = 1..kmax) k-mer frequencies, k by k."""
    blocks = []
    for start in range(0, len(tokens), ROWS_PER_CHUNK):
        chunk = np.asarray(tokens[start : start + ROWS_PER_CHUNK], np.int64)  # (rows, width)
        blocks.append(_chunk_kmers(chunk, alphabet_size, kmax))
    return sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix(
        (0, sum(alphabet_size ** k for k in range(1, kmax + 1))))


def _chunk_kmers(tokens: np.ndarray, size: int, kmax: int) -> sparse.csr_matrix:
    rows, width = tokens.shape
    valid = tokens < size
    letters = np.where(valid, tokens, 0)
    blocks = []
    for k in range(1, kmax + 1):
        if width < k:
            blocks.append(sparse.csr_matrix((rows, size ** k)))
            continue
        span = width - k + 1
        codes = np.zeros((rows, span), np.int64)
        ok = np.ones((rows, span), bool)
        for offset in range(k):  # codes of every k-mer start, letters in base `size`
            codes = codes * size + letters[:, offset : offset + span]
            ok &= valid[:, offset : offset + span]
        row_index = np.broadcast_to(np.arange(rows)[:, None], codes.shape)[ok]
        counts = sparse.csr_matrix((np.ones(ok.sum()), (row_index, codes[ok])),
                                   shape=(rows, size ** k))
        totals = np.maximum(ok.sum(1), 1)  # k-mers counted per row
        blocks.append(sparse.diags(1.0 / totals) @ counts)
    return sparse.hstack(blocks, format="csr")


def residue_window_features(tokens: np.ndarray, rows: np.ndarray, positions: np.ndarray, *,
                            n_tokens: int, window: int) -> sparse.csr_matrix:
    """One row per (row, position) residue: the one-hot tokens at offsets -window..window
    -> (residues, (2 * window + 1) * n_tokens). Beyond the window ends reads as padding."""
    pad = n_tokens - 1
    offsets = np.arange(-window, window + 1)
    columns = positions[:, None] + offsets[None]  # (residues, 2w + 1)
    inside = (columns >= 0) & (columns < tokens.shape[1])
    letters = np.full(columns.shape, pad, np.int64)
    letters[inside] = np.asarray(tokens[np.broadcast_to(rows[:, None], columns.shape)[inside],
                                        columns[inside]], np.int64)
    feature = (offsets + window)[None] * n_tokens + letters  # (residues, 2w + 1)
    residues = len(rows)
    return sparse.csr_matrix((np.ones(feature.size), feature.ravel(),
                              np.arange(0, feature.size + 1, len(offsets))),
                             shape=(residues, len(offsets) * n_tokens))


class BaselineResult(NamedTuple):
    metrics: dict  # test split
    val_metrics: dict
    test_sets: dict[str, dict]  # name -> metrics
    C: float
    seconds: float


class _Features:
    """Features and targets of one store split, sampled to at most `limit` rows."""

    def __init__(self, store: EncodedStore, split: str, *, kmax: int, window: int,
                 limit: int | None, seed: int):
        index = store.indices(split)
        self.store, self.index, self.per_residue = store, index, store.task == "per_residue"
        rng = np.random.default_rng(seed)
        if self.per_residue:
            labels = store.labels[index]  # (rows, width)
            rows, positions = np.nonzero(labels != IGNORE)
            if limit is not None and len(rows) > limit:
                keep = np.sort(rng.choice(len(rows), limit, replace=False))
                rows, positions = rows[keep], positions[keep]
            self.rows, self.positions = rows, positions
            self.y = labels[rows, positions].astype(np.int64)
            self.X = residue_window_features(store.tokens[index], rows, positions,
                                             n_tokens=store.alphabet.n_tokens, window=window)
        else:
            if limit is not None and len(index) > limit:
                index = np.sort(rng.choice(index, limit, replace=False))
                self.index = index
            self.y = np.asarray(store.labels[index], np.int64)
            self.X = kmer_features(store.tokens[index], alphabet_size=store.alphabet.size,
                                   kmax=kmax)

    def metrics(self, probs: np.ndarray, names: tuple[str, ...]) -> dict:
        """Metrics of `probs` (rows, classes); per residue over whole proteins."""
        if not self.per_residue:
            return compute_metrics(self.store.task, self.y, probs, names)
        # only the (sampled) residues scored here count: the others become IGNORE
        width = self.store.labels.shape[1]
        labels = np.full((len(self.index), width), IGNORE, np.uint8)
        labels[self.rows, self.positions] = self.y
        full = np.zeros((len(self.index), len(names), width), np.float32)
        full[self.rows, :, self.positions] = probs
        return compute_metrics("per_residue", labels, full, names)


def _fit(train: _Features, C: float, seed: int) -> tuple[MaxAbsScaler, LogisticRegression]:
    if len(np.unique(train.y)) < 2:
        raise BioseqError("the baseline needs at least two classes in the train split",
                          path=str(train.store.path))
    scaler = MaxAbsScaler().fit(train.X)
    model = LogisticRegression(C=C, max_iter=500, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the val split judges the fit
        model.fit(scaler.transform(train.X), train.y)
    return scaler, model


def _probs(scaler: MaxAbsScaler, model: LogisticRegression, features: _Features,
           n_classes: int) -> np.ndarray:
    """(rows, n_classes) probabilities, zero for classes absent from training."""
    probs = np.zeros((features.X.shape[0], n_classes))
    probs[:, model.classes_] = model.predict_proba(scaler.transform(features.X))
    return probs


def fit_baseline(store: EncodedStore, *, kmax: int = 6, window: int = 7,
                 C: Sequence[float] = (0.01, 0.1, 1.0, 10.0), max_records: int = 200_000,
                 test_sets: dict[str, EncodedStore] | None = None, select: str | None = None,
                 seed: int = 0) -> BaselineResult:
    """Train on the train split for every C, keep the one best on val by `select` (default:
    MCC for binary, accuracy otherwise), score test and every test set. Classification
    and per_residue tasks only."""
    if store.task not in SELECT:
        raise BioseqError(f"the k-mer baseline classifies; a {store.task} task has none",
                          path=str(store.path))
    started = time.perf_counter()
    options = {"kmax": kmax, "window": window, "seed": seed}
    train = _Features(store, "train", limit=max_records, **options)
    val = _Features(store, "val", limit=max_records, **options)
    if not len(train.y) or not len(val.y):
        raise BioseqError("the baseline needs non-empty train and val splits",
                          path=str(store.path))
    names, select = store.label_names, select or SELECT[store.task]
    sign = -1.0 if select in LOWER_IS_BETTER else 1.0
    best = None
    for value in C:
        fitted = _fit(train, value, seed)
        val_metrics = val.metrics(_probs(*fitted, val, len(names)), names)
        score = val_metrics.get(select)
        if best is None or (score is not None and (best[3] is None or sign * score
                                                   > sign * best[3])):
            best = (value, fitted, val_metrics, score)
    chosen, fitted, val_metrics, _ = best
    scored = {}
    for name, other in {"": store, **(test_sets or {})}.items():
        test = _Features(other, "test", limit=None, **options)
        if not len(test.y):
            raise BioseqError("the test split is empty", path=str(other.path))
        scored[name] = test.metrics(_probs(*fitted, test, len(names)), names)
        scored[name].update(split="test", task=store.task, architecture="kmer_baseline",
                            dataset=other.meta["dataset"], C=chosen)
    metrics = scored.pop("")
    return BaselineResult(metrics, val_metrics, scored, chosen, time.perf_counter() - started)


def write_baseline(result: BaselineResult, folder: str | os.PathLike, *, settings: dict) -> None:
    """`folder/`: metrics.json (test split), val_metrics.json, baseline.json (C, seconds and
    `settings`) and test_sets/<name>/metrics.json, written whole or not at all."""
    with atomic_path(folder, directory=True, marker="metrics.json") as tmp:
        for name, metrics in {"": result.metrics, **result.test_sets}.items():
            target = tmp / "test_sets" / name if name else tmp
            target.mkdir(parents=True, exist_ok=True)
            (target / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "val_metrics.json").write_text(json.dumps(result.val_metrics, indent=2) + "\n")
        (tmp / "baseline.json").write_text(json.dumps(
            {"C": result.C, "seconds": round(result.seconds, 2), **settings}, indent=2) + "\n")
