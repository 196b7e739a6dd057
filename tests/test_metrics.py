import math

import numpy as np
import pytest

from bioseq.metrics import (
    classification_metrics,
    compute_metrics,
    is_better,
    multilabel_metrics,
    regression_metrics,
)

# multiclass: predictions (argmax) are 0, 1, 1, 1, 2, 0
Y3 = np.array([0, 0, 1, 1, 2, 2])
P3 = np.array([
    [0.6, 0.3, 0.1],
    [0.3, 0.5, 0.2],
    [0.2, 0.7, 0.1],
    [0.1, 0.8, 0.1],
    [0.1, 0.2, 0.7],
    [0.5, 0.1, 0.4],
])
NAMES3 = ("EI", "IE", "N")

# binary: P(pos); predictions are 0, 1, 0, 1, 1, 0, 1, 0
Y2 = np.array([0, 0, 0, 1, 1, 1, 1, 0])
POS = np.array([0.1, 0.6, 0.2, 0.9, 0.8, 0.4, 0.7, 0.3])
P2 = np.stack([1 - POS, POS], axis=1)


def test_multiclass_accuracy_confusion_and_mcc():
    m = classification_metrics(Y3, P3, NAMES3)
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)), p = (2, 3, 1), t = (2, 2, 2)
    assert m["mcc"] == pytest.approx(12 / math.sqrt(22 * 24))
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["labels"] == ["EI", "IE", "N"]
    assert "sensitivity" not in m


def test_multiclass_per_class_values():
    per = classification_metrics(Y3, P3, NAMES3)["per_class"]
    assert per["EI"]["precision"] == pytest.approx(1 / 2)
    assert per["IE"]["precision"] == pytest.approx(2 / 3)
    assert per["N"]["precision"] == pytest.approx(1.0)
    assert [per[c]["recall"] for c in NAMES3] == pytest.approx([0.5, 1.0, 0.5])
    assert [per[c]["f1"] for c in NAMES3] == pytest.approx([0.5, 0.8, 2 / 3])
    assert [per[c]["support"] for c in NAMES3] == [2, 2, 2]


def test_multiclass_macro_f1_auroc_and_auprc():
    m = classification_metrics(Y3, P3, NAMES3)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # one-vs-rest: EI 7 of 8 pairs ordered; IE and N separate perfectly
    assert m["per_class"]["EI"]["auroc"] == pytest.approx(7 / 8)
    assert m["auroc"] == pytest.approx((7 / 8 + 1 + 1) / 3)
    # EI ranking: pos, neg, pos, ... -> AP = 0.5 * 1 + 0.5 * 2/3
    assert m["per_class"]["EI"]["auprc"] == pytest.approx(5 / 6)
    assert m["auprc"] == pytest.approx((5 / 6 + 1 + 1) / 3)


def test_binary_metrics_by_hand():
    m = classification_metrics(Y2, P2, ("neg", "pos"), binary=True)
    assert m["confusion_matrix"] == [[3, 1], [1, 3]]
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["mcc"] == pytest.approx((3 * 3 - 1 * 1) / math.sqrt(4 * 4 * 4 * 4))
    assert m["auroc"] == pytest.approx(15 / 16)  # of the positive (second) class
    assert m["auprc"] == pytest.approx(0.75 + 0.25 * 4 / 5)


def test_binary_sensitivity_and_specificity_are_not_symmetric():
    y = np.array([1, 1, 1, 1, 0, 0])
    pos = np.array([0.9, 0.8, 0.2, 0.3, 0.1, 0.2])
    m = classification_metrics(y, np.stack([1 - pos, pos], 1), ("neg", "pos"), binary=True)
    assert m["sensitivity"] == pytest.approx(2 / 4)
    assert m["specificity"] == pytest.approx(2 / 2)


def test_auroc_is_none_when_only_one_class_is_present():
    y = np.zeros(4, np.int64)
    pos = np.array([0.2, 0.7, 0.1, 0.4])
    m = classification_metrics(y, np.stack([1 - pos, pos], 1), ("neg", "pos"), binary=True)
    assert m["auroc"] is None
    assert m["per_class"]["pos"]["auroc"] is None
    assert m["per_class"]["neg"]["auroc"] is None
    assert m["accuracy"] == pytest.approx(3 / 4)
    assert m["sensitivity"] == 0.0  # no positives: 0 / max(0, 1)
    assert m["specificity"] == pytest.approx(3 / 4)


def test_absent_class_is_left_out_of_the_macro_auroc():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.4, 0.5, 0.1]])
    m = classification_metrics(y, probs, NAMES3)
    assert m["per_class"]["N"]["auroc"] is None
    assert m["per_class"]["N"]["support"] == 0
    assert m["auroc"] == pytest.approx(1.0)


def test_regression_metrics_by_hand():
    y = np.array([[1, 1], [2, 2], [3, 3], [4, 4]], np.float64)
    pred = np.array([[1, 2], [3, 2], [2, 2], [5, 2]], np.float64)
    m = regression_metrics(y, pred, ("kd", "flat"))
    kd, flat = m["per_target"]["kd"], m["per_target"]["flat"]
    assert kd["mse"] == pytest.approx(3 / 4)
    assert kd["mae"] == pytest.approx(3 / 4)
    assert kd["r2"] == pytest.approx(1 - 3 / 5)
    assert kd["pearson"] == pytest.approx(5.5 / math.sqrt(5 * 8.75))
    assert kd["spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert flat["mse"] == pytest.approx(6 / 4)
    assert flat["mae"] == pytest.approx(1.0)
    assert flat["r2"] == pytest.approx(1 - 6 / 5)
    assert flat["pearson"] is None and flat["spearman"] is None  # constant prediction
    assert m["mse"] == pytest.approx((0.75 + 1.5) / 2)
    assert m["mae"] == pytest.approx(0.875)
    assert m["r2"] == pytest.approx((0.4 - 0.2) / 2)
    assert m["pearson"] == pytest.approx(kd["pearson"])
    assert m["n"] == 4
    assert m["labels"] == ["kd", "flat"]


def test_multilabel_metrics_by_hand():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.4, 0.6], [0.7, 0.3], [0.1, 0.1]])
    m = multilabel_metrics(y, probs, ("cpg", "tata"))
    assert m["subset_accuracy"] == pytest.approx(3 / 4)
    assert m["per_label"]["cpg"]["f1"] == pytest.approx(1.0)
    assert m["per_label"]["tata"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx(5 / 6)
    assert m["auroc"] == pytest.approx(1.0)


def test_compute_metrics_dispatches_on_the_task():
    assert compute_metrics("multiclass", Y3.astype(float), P3, NAMES3)["accuracy"] == \
        pytest.approx(4 / 6)
    assert compute_metrics("binary", Y2, P2, ("neg", "pos"))["sensitivity"] == 0.75
    y = np.array([[1.0], [2.0], [3.0], [4.0]])
    assert compute_metrics("regression", y, y, ("kd",))["mse"] == 0.0


@pytest.mark.parametrize(("monitor", "value", "best", "expected"), [
    ("val_loss", 0.4, 0.5, True), ("val_loss", 0.5, 0.5, False), ("val_loss", 0.6, 0.5, False),
    ("mse", 0.1, 0.2, True), ("accuracy", 0.9, 0.8, True), ("mcc", 0.7, 0.8, False),
    ("auroc", None, 0.8, False), ("accuracy", 0.1, None, True),
])
def test_is_better(monitor, value, best, expected):
    assert is_better(monitor, value, best) is expected


def test_two_class_multiclass_reports_macro_not_the_second_class():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    m = classification_metrics(y, probs, ("a", "b"))
    assert "sensitivity" not in m
    assert m["auprc"] == pytest.approx(np.mean([m["per_class"][c]["auprc"] for c in "ab"]))


def test_residue_metrics_count_resolved_residues_only():
    from bioseq.metrics import residue_metrics
    from bioseq.tasks import IGNORE

    y = np.array([[0, 1, 2, IGNORE], [2, 2, IGNORE, IGNORE], [IGNORE] * 4], np.uint8)
    predicted = np.array([[0, 1, 1, 0], [2, 0, 0, 0], [1, 1, 1, 1]])
    probs = np.eye(3)[predicted].transpose(0, 2, 1)  # (proteins, classes, length)
    m = residue_metrics(y, probs, ("C", "E", "H"))
    assert m["q3"] == m["accuracy"] == pytest.approx(3 / 5)
    assert m["residues"] == 5 and m["proteins"] == 2  # the all-unresolved chain is left out
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 1, 1]]
    assert m["protein_accuracy_mean"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert sum(m["protein_accuracy_histogram"]["counts"]) == 2
    assert m["per_class"]["H"]["recall"] == pytest.approx(1 / 3)
    assert m["per_class"]["E"]["precision"] == pytest.approx(1 / 2)
