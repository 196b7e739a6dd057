"""Evaluation metrics (scikit-learn), over held-out examples."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from .tasks import IGNORE

LOWER_IS_BETTER = {"val_loss", "mse", "mae"}
_CLASSIFICATION = ("val_loss", "accuracy", "balanced_accuracy", "mcc", "macro_f1", "auroc",
                   "auprc")
MONITORS = {  # early-stopping metrics each task's validation rows hold
    "binary": (*_CLASSIFICATION, "sensitivity", "specificity"),
    "multiclass": _CLASSIFICATION,
    "multilabel": ("val_loss", "subset_accuracy", "macro_f1", "auroc", "auprc"),
    "regression": ("val_loss", "mse", "mae", "pearson", "spearman", "r2"),
    "per_residue": ("val_loss", "accuracy", "q3", "q8", "macro_f1", "mcc", "protein_accuracy_mean"),
}



def _safe(fn, *args, **kwargs) -> float | None:
    """Metrics undefined for this data (e.g. one class only) are None, not an exception."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(fn(*args, **kwargs))
        except ValueError:
            return None
    return None if np.isnan(value) else value


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, names: tuple[str, ...],
                           *, binary: bool = False) -> dict:
    """y_true: (n,) class index; probs: (n, classes). With `binary`, AUROC/AUPRC are those
    of the positive (second) class and sensitivity/specificity are added; otherwise they
    are macro averages over classes."""
    y_pred = probs.argmax(1)
    labels = np.arange(len(names))
    onehot = (y_true[:, None] == labels[None]).astype(int)
    per_class = {}
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    for c, name in enumerate(names):
        per_class[name] = {
            "precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
            "support": int(support[c]),
            "auroc": _safe(skm.roc_auc_score, onehot[:, c], probs[:, c]),
            "auprc": _safe(skm.average_precision_score, onehot[:, c], probs[:, c]),
        }
    aurocs = [v["auroc"] for v in per_class.values() if v["auroc"] is not None]
    auprcs = [v["auprc"] for v in per_class.values() if v["auprc"] is not None]
    result = {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _safe(skm.balanced_accuracy_score, y_true, y_pred),
        "mcc": float(skm.matthews_corrcoef(y_true, y_pred)),
        "macro_f1": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro",
                                       zero_division=0)),
        "auroc": float(np.mean(aurocs)) if aurocs else None,
        "auprc": float(np.mean(auprcs)) if auprcs else None,
        "per_class": per_class,
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": list(names),
    }
    if binary:  # the positive class is the second
        result["auroc"] = per_class[names[1]]["auroc"]
        result["auprc"] = per_class[names[1]]["auprc"]
        tn, fp, fn, tp = np.asarray(result["confusion_matrix"]).ravel()
        result["sensitivity"] = float(tp / max(tp + fn, 1))
        result["specificity"] = float(tn / max(tn + fp, 1))
    return result


def multilabel_metrics(y_true: np.ndarray, probs: np.ndarray, names: tuple[str, ...]) -> dict:
    """y_true, probs: (n, labels)."""
    y_pred = (probs >= 0.5).astype(int)
    per_label = {
        name: {"auroc": _safe(skm.roc_auc_score, y_true[:, j], probs[:, j]),
               "auprc": _safe(skm.average_precision_score, y_true[:, j], probs[:, j]),
               "f1": float(skm.f1_score(y_true[:, j], y_pred[:, j], zero_division=0))}
        for j, name in enumerate(names)
    }
    aurocs = [v["auroc"] for v in per_label.values() if v["auroc"] is not None]
    auprcs = [v["auprc"] for v in per_label.values() if v["auprc"] is not None]
    return {
        "n": int(len(y_true)),
        "subset_accuracy": float((y_pred == y_true).all(1).mean()),
        "macro_f1": float(np.mean([v["f1"] for v in per_label.values()])),
        "auroc": float(np.mean(aurocs)) if aurocs else None,
        "auprc": float(np.mean(auprcs)) if auprcs else None,
        "per_label": per_label, "labels": list(names),
    }


def regression_metrics(y_true: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> dict:
    """y_true, pred: (n, targets) in original units."""
    per_target = {}
    for j, name in enumerate(names):
        t, p = y_true[:, j], pred[:, j]
        per_target[name] = {
            "mse": float(np.mean((t - p) ** 2)), "mae": float(np.mean(np.abs(t - p))),
            "pearson": _safe(lambda a, b: stats.pearsonr(a, b)[0], t, p),
            "spearman": _safe(lambda a, b: stats.spearmanr(a, b)[0], t, p),
            "r2": _safe(skm.r2_score, t, p),
        }
    summary = {k: _mean([v[k] for v in per_target.values()])
               for k in ("mse", "mae", "pearson", "spearman", "r2")}
    return {"n": int(len(y_true)), **summary, "per_target": per_target, "labels": list(names)}


def residue_metrics(y_true: np.ndarray, probs: np.ndarray, names: tuple[str, ...]) -> dict:
    """y_true: (n, length) class indices with IGNORE at residues that do not count;
    probs: (n, classes, length). Every number is over the counted residues only:
    `q{classes}` (Q3, Q8) is their accuracy; per-protein accuracies are summarised too."""
    valid = y_true != IGNORE
    predicted = probs.argmax(1)
    counted = valid.any(1)
    result = classification_metrics(y_true[valid].astype(np.int64),
                                    probs.transpose(0, 2, 1)[valid], names)
    correct = (predicted == y_true) & valid
    per_protein = correct.sum(1)[counted] / valid.sum(1)[counted]
    edges = np.linspace(0.0, 1.0, 21)
    result.update({
        f"q{len(names)}": result["accuracy"],
        "residues": int(valid.sum()), "proteins": int(counted.sum()),
        "protein_accuracy_mean": float(per_protein.mean()) if len(per_protein) else None,
        "protein_accuracy_median": float(np.median(per_protein)) if len(per_protein) else None,
        "protein_accuracy_histogram": {"edges": edges.tolist(),
                                       "counts": np.histogram(per_protein, edges)[0].tolist()},
    })
    return result


def compute_metrics(task: str, y_true: np.ndarray, scores: np.ndarray,
                    names: tuple[str, ...]) -> dict:
    if task in ("binary", "multiclass"):
        return classification_metrics(y_true.astype(np.int64), scores, names,
                                      binary=task == "binary")
    if task == "per_residue":
        return residue_metrics(y_true, scores, names)
    if task == "multilabel":
        return multilabel_metrics(y_true.astype(int), scores, names)
    return regression_metrics(y_true, scores, names)


def is_better(monitor: str, value: float | None, best: float | None) -> bool:
    if value is None:
        return False
    if best is None:
        return True
    return value < best if monitor in LOWER_IS_BETTER else value > best


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None
