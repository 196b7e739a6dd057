"""Figures for evaluation outputs and the HTML report (matplotlib, no display needed)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_path  # noqa: E402


def learning_curves(history: pd.DataFrame, *, monitor: str, title: str = "",
                    label_smoothing: float | None = None) -> plt.Figure:
    """Train/val loss and the monitored metric per epoch; the best epoch is marked. With
    `label_smoothing` the training loss was computed on smoothed targets, and is labelled so."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), constrained_layout=True)
    train_label = "train loss"
    if label_smoothing:
        train_label += f" (smoothed labels, ε {label_smoothing:g})"
    left.plot(history["epoch"], history["train_loss"], label=train_label)
    left.plot(history["epoch"], history["val_loss"], label="val loss")
    left.set_xlabel("epoch")
    left.legend()
    # the loss is already on the left: show the validation metric people read
    shown = [monitor] if monitor != "val_loss" else []
    shown += ["accuracy", "auroc", "subset_accuracy", "pearson", "val_loss"]
    metric = next(m for m in shown if m in history)
    right.plot(history["epoch"], history[metric], color="tab:green")
    right.set_xlabel("epoch")
    right.set_ylabel(f"validation {metric}")
    if "best" in history and history["best"].any():
        best = int(history.loc[history["best"].astype(bool), "epoch"].iloc[0])
        for axis in (left, right):
            axis.axvline(best, color="grey", linestyle="--", linewidth=1)
        right.set_title(f"best epoch {best}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def confusion_matrix(matrix: list[list[int]], labels: list[str], *, title: str = "") -> plt.Figure:
    """Counts with true labels on rows and predictions on columns."""
    counts = np.asarray(matrix)
    size = 1.2 + 0.6 * len(labels)
    fig, axis = plt.subplots(figsize=(size + 1, size), constrained_layout=True)
    image = axis.imshow(counts, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = counts.max() / 2 if counts.size else 0
    for (i, j), value in np.ndenumerate(counts):
        axis.text(j, i, str(value), ha="center", va="center",
                  color="white" if value > threshold else "black", fontsize=8)
    fig.colorbar(image, ax=axis, shrink=0.8)
    if title:
        axis.set_title(title, fontsize=10)
    return fig


def protein_accuracy(histogram: dict, *, title: str = "") -> plt.Figure:
    """Per-protein accuracy distribution from `{"edges": [...], "counts": [...]}`."""
    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["counts"])
    fig, axis = plt.subplots(figsize=(4.5, 3), constrained_layout=True)
    axis.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="white")
    axis.set_xlabel("accuracy over a protein's counted residues")
    axis.set_ylabel("proteins")
    if title:
        axis.set_title(title, fontsize=10)
    return fig


def variant_scores(scores: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """Distribution of each output's alt - ref change, and a Manhattan-style track of the
    largest change per variant along each contig (x in Mb)."""
    diffs = [c for c in scores.columns if c.startswith("diff_")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3), constrained_layout=True,
                                      gridspec_kw={"width_ratios": [1, 1.6]})
    for column in diffs:
        left.hist(scores[column], bins=40, histtype="step", label=column[5:])
    left.set_yscale("log")
    left.set_xlabel("alt - ref")
    left.set_ylabel("variants")
    if diffs:
        left.legend(fontsize=7)
    offset, ticks = 0.0, []
    for i, (contig, group) in enumerate(scores.groupby("chrom", sort=False)):
        x = offset + group["pos"].to_numpy() / 1e6
        right.scatter(x, group["max_abs_diff"], s=6, color=f"C{i % 2}")
        ticks.append((float(x.mean()), str(contig)))
        offset = float(x.max()) + 1
    right.set_xlabel("position (Mb)" if len(ticks) == 1 else "contig")
    if len(ticks) > 1:
        right.set_xticks([t for t, _ in ticks], [n for _, n in ticks])
    right.set_ylabel("max |alt - ref|")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def ism_heatmap(result, *, output: int | None = None, title: str = "") -> plt.Figure:
    """Saturation mutagenesis effects (letters x positions) of one output (default: the one
    with the largest absolute effect); the sequence's own letters are outlined."""
    effects = result.effects  # (length, letters, outputs)
    if output is None:
        output = int(np.abs(effects).reshape(-1, effects.shape[2]).max(0).argmax())
    matrix = effects[:, :, output].T  # (letters, length)
    limit = float(np.abs(matrix).max()) or 1.0
    length = matrix.shape[1]
    fig, axis = plt.subplots(figsize=(min(2 + length * 0.12, 16), 2.2), constrained_layout=True)
    image = axis.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                        interpolation="nearest")
    letters = result.letters
    own = [letters.find(c) for c in result.sequence]
    xs = [i for i, row in enumerate(own) if row >= 0]
    axis.scatter(xs, [own[i] for i in xs], marker="s", s=8, facecolors="none",
                 edgecolors="black", linewidths=0.5)
    axis.set_yticks(range(len(letters)), list(letters))
    step = max(1, length // 30)
    axis.set_xticks(range(0, length, step), [str(i + 1) for i in range(0, length, step)],
                    fontsize=7)
    axis.set_xlabel("position in window" + (f" ({result.region})" if result.region else ""))
    fig.colorbar(image, ax=axis, label=f"change in {result.output_names[output]}")
    if title:
        axis.set_title(title, fontsize=10)
    return fig


def length_histogram(lengths: np.ndarray, *, title: str = "") -> plt.Figure:
    """Sequence lengths of a data set (after any trimming)."""
    fig, axis = plt.subplots(figsize=(4.5, 2.6), constrained_layout=True)
    low, high = int(lengths.min(initial=0)), int(lengths.max(initial=1))
    axis.hist(lengths, bins=min(50, max(1, high - low + 1)), color="tab:blue")
    axis.set_xlabel("length")
    axis.set_ylabel("records")
    axis.set_title(f"{title}: {len(lengths):,} records" if title else "", fontsize=9)
    return fig


def message(text: str) -> plt.Figure:
    """A small figure holding only a sentence, where a plot does not apply."""
    fig, axis = plt.subplots(figsize=(4, 1.2))
    axis.axis("off")
    axis.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)


def data_uri(fig: plt.Figure) -> str:
    """A figure as an inline `data:image/png;base64,...` URI (the report is one file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
