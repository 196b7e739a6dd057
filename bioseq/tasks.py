"""What differs between binary, multiclass, multilabel, regression and per-residue targets.

Per-residue targets are (batch, length) class indices with `IGNORE` at positions that
count for nothing (unresolved residues, padding); their logits are (batch, classes, length).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .errors import BioseqError

IGNORE = 255  # per-residue target value: excluded from the loss and from every metric


def n_outputs(task: str, n_labels: int) -> int:
    return 1 if task == "binary" else n_labels


def output_kind(task: str) -> str:
    """The model output a task needs: one vector per sequence or one per position."""
    return "position" if task == "per_residue" else "sequence"


def prepare_targets(task: str, values: np.ndarray, scaling: dict | None = None) -> np.ndarray:
    """Store labels -> the arrays the loss expects (regression targets standardised)."""
    if task == "per_residue":  # (n, width) uint8 stays compact; cast per batch
        return values
    if task == "multiclass":
        return values.astype(np.int64)
    if task == "binary":
        return values.astype(np.float32)
    values = values.astype(np.float32)
    if task == "regression" and scaling is not None:
        values = (values - np.float32(scaling["mean"])) / np.float32(scaling["std"])
    return values


def target_scaling(task: str, values: np.ndarray) -> dict | None:
    if task != "regression":
        return None
    std = values.std(axis=0)
    return {"mean": values.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}


def class_weights(task: str, values: np.ndarray, n_labels: int) -> torch.Tensor | None:
    """Inverse-frequency weights (multiclass) or positive weights (binary, multilabel)."""
    if task in ("multiclass", "per_residue"):
        values = values[values != IGNORE] if task == "per_residue" else values
        counts = np.bincount(values, minlength=n_labels).astype(np.float64)
        return torch.tensor(len(values) / (n_labels * np.maximum(counts, 1)), dtype=torch.float32)
    if task in ("binary", "multilabel"):
        positives = values.reshape(len(values), -1).sum(0)
        negatives = len(values) - positives
        return torch.tensor(negatives / np.maximum(positives, 1), dtype=torch.float32)
    return None


def loss(task: str, logits: torch.Tensor, targets: torch.Tensor,
         weights: torch.Tensor | None = None, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """The task's training loss. `label_smoothing` e mixes every classification target
    with the uniform one: (1 - e) * target + e / classes (binary and multilabel: e / 2)."""
    logits = logits.float()
    if task == "multiclass":
        return F.cross_entropy(logits, targets, weight=weights, label_smoothing=label_smoothing)
    if task == "per_residue":  # (B, C, L) vs (B, L): mean over the residues that count
        if not bool((targets != IGNORE).any()):  # e.g. a crop of unresolved residues only
            return logits.sum() * 0.0
        return F.cross_entropy(logits, targets.long(), weight=weights, ignore_index=IGNORE,
                               label_smoothing=label_smoothing)
    if task in ("binary", "multilabel"):
        if label_smoothing:
            targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
        logits = logits[:, 0] if task == "binary" else logits
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weights)
    if label_smoothing:
        raise BioseqError(f"label_smoothing applies to classification, not {task}")
    return F.mse_loss(logits, targets)


def scores(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Logits -> probabilities per class/label, or standardised regression values."""
    logits = logits.float()
    if task == "multiclass":
        return logits.softmax(-1)
    if task == "per_residue":
        return logits.softmax(1)  # (B, C, L)
    if task == "binary":
        p = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p, p], dim=1)
    if task == "multilabel":
        return torch.sigmoid(logits)
    return logits


def unscale(task: str, values: np.ndarray, scaling: dict | None) -> np.ndarray:
    if task != "regression" or scaling is None:
        return values
    return values * np.asarray(scaling["std"], np.float32) + np.asarray(scaling["mean"], np.float32)
