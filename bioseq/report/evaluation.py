"""What the report shows of a model's test predictions: ROC and PR curves, a reliability
diagram with its expected calibration error, the predictions table and residue tracks."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import auc, precision_recall_curve, roc_curve

CALIBRATION_BINS = 10
TABLE_ROWS = 100_000  # predictions shown per data set (the page stays a few MB)
TRACK_PROTEINS = 200  # proteins offered in the per-residue track view


def probability_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("prob_")]


def calibration(frame: pd.DataFrame, *, bins: int = CALIBRATION_BINS) -> dict:
    """Top-label reliability: per confidence bin the mean confidence, the accuracy and the
    count; `ece` = sum over bins of count/n * |accuracy - confidence|."""
    columns = probability_columns(frame)
    probs = frame[columns].to_numpy(np.float64)  # (n, classes)
    names = [c.removeprefix("prob_") for c in columns]
    confidence = probs.max(1)
    correct = np.asarray([names[i] for i in probs.argmax(1)]) == frame["label"].astype(str)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            rows.append((float(confidence[inside].mean()), float(correct[inside].mean()),
                         int(inside.sum())))
    n = max(len(frame), 1)
    ece = sum(count / n * abs(acc - conf) for conf, acc, count in rows)
    return {"bins": rows, "ece": float(ece)}


def curves_figure(frame: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """One-vs-rest ROC and precision-recall curves per class (binary: the positive one)."""
    columns = probability_columns(frame)
    if len(columns) == 2:
        columns = columns[1:]
    labels = frame["label"].astype(str).to_numpy()
    fig, (roc_axis, pr_axis) = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    for column in columns:
        truth = labels == column.removeprefix("prob_")
        if truth.all() or not truth.any():
            continue
        scores = frame[column].to_numpy()
        fpr, tpr, _ = roc_curve(truth, scores)
        precision, recall, _ = precision_recall_curve(truth, scores)
        name = column.removeprefix("prob_")
        roc_axis.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        pr_axis.plot(recall, precision, label=f"{name} (AP {auc(recall, precision):.3f})")
    roc_axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc_axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_axis.set(xlabel="recall", ylabel="precision", title="precision-recall")
    for axis in (roc_axis, pr_axis):
        axis.legend(fontsize=7, loc="lower right" if axis is roc_axis else "lower left")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def calibration_figure(result: dict, *, title: str = "") -> plt.Figure:
    """Reliability diagram: accuracy against confidence per bin, bar width by count."""
    fig, axis = plt.subplots(figsize=(3.6, 3.2), constrained_layout=True)
    if result["bins"]:
        confidence, accuracy, count = map(np.asarray, zip(*result["bins"], strict=True))
        axis.scatter(confidence, accuracy, s=20 + 180 * count / count.max(), alpha=0.7)
        axis.plot(confidence, accuracy, linewidth=1)
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="confidence (top class)", ylabel="accuracy",
             title=f"{title} ECE {result['ece']:.3f}".strip())
    return fig


def prediction_rows(predictions: Path, test_predictions: Path | None, *,
                    limit: int = TABLE_ROWS) -> dict | None:
    """Columns and rows (lists, for the page's JSON) of a model's per-sequence predictions,
    with the true label and correct/incorrect where the test split knows them."""
    if not predictions.is_file():
        return None
    frame = pd.read_csv(predictions, sep="\t", dtype={"id": str}, nrows=limit,
                        keep_default_na=False)
    if test_predictions is not None and test_predictions.is_file():
        known = pd.read_csv(test_predictions, sep="\t", dtype={"id": str, "label": str},
                            usecols=["id", "label"], keep_default_na=False)
        known = known.drop_duplicates("id").set_index("id")["label"]
        frame.insert(1, "label", frame["id"].map(known).fillna(""))
        if "predicted" in frame:
            where = frame["label"] != ""
            frame.insert(3, "correct", np.where(where, np.where(
                frame["label"] == frame["predicted"].astype(str), "yes", "no"), ""))
    frame = frame.round(4)
    return {"columns": list(frame.columns), "rows": frame.to_numpy().tolist(),
            "total": int(len(frame))}


def residue_tracks(test_predictions: Path, *, limit: int = TRACK_PROTEINS) -> list[dict]:
    """Per protein: sequence, true and predicted states, confidence digits 0-9 (from a
    per-residue long-form test_predictions.tsv)."""
    if not test_predictions.is_file():
        return []
    frame = pd.read_csv(test_predictions, sep="\t", dtype={"id": str, "label": str,
                                                          "predicted": str, "residue": str},
                        keep_default_na=False)
    confidence = frame[probability_columns(frame)].to_numpy().max(1)
    frame["digit"] = np.minimum((confidence * 10).astype(int), 9).astype(str)
    tracks = []
    for protein, rows in frame.groupby("id", sort=False):
        if len(tracks) >= limit:
            break
        tracks.append({"id": protein, "sequence": "".join(rows["residue"]),
                       "label": "".join(rows["label"]), "predicted": "".join(rows["predicted"]),
                       "confidence": "".join(rows["digit"])})
    return tracks
