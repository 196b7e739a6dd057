"""Markdown tables of ACCURACY.md, read from the pipeline's outputs.

Cross-validated data sets: `results/<dataset>/cv/summary.json` (mean ± s.d. over test
folds). Data sets with one split and test sets (secondary structure): each model's
`metrics.json` and `test_sets/<name>/metrics.json`, and the baseline's. Published numbers
and targets come from the config's `accuracy:` section.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bioseq.config import dataset_config, dataset_models
from bioseq.crossval import rank_models

LABELS = {"sensitivity": "Sn", "specificity": "Sp", "mcc": "CC (MCC)", "accuracy": "accuracy",
          "auroc": "AUROC", "q3": "Q3", "q8": "Q8"}


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _train_seconds(folder: Path) -> str:
    """Training time of a deep model: the sum of its epochs in history.tsv (all epochs of a
    run resumed after a kill, also one trained before train.json counted them); of the
    baseline: its baseline.json seconds."""
    history = folder / "history.tsv"
    if history.is_file():
        seconds = pd.read_csv(history, sep="\t")["seconds"].sum()
        return f"{seconds:.0f}"
    record = _read(folder / "baseline.json") or {}
    return f"{record['seconds']:.0f}" if "seconds" in record else "–"


def _cell(row: dict, metric: str) -> str:
    value = row.get(metric)
    if value is None:
        return "–"
    if isinstance(value, dict):  # mean ± s.d. over folds
        return f"{value['mean']:.3f} ± {value['sd']:.3f}"
    return f"{value:.3f}"


def _target_status(value: float | None, target: float | None) -> str:
    if target is None:
        return "reported"
    if value is None:
        return f"≥ {target}: not run"
    return f"≥ {target}: {'**met**' if value >= target else '**not met**'}"


def _describe(name: str, row: dict, summary: dict) -> str:
    kind = row["kind"]
    if kind == "best":
        return "**bioseq best** (chosen per fold on validation)"
    if kind == "family":
        return f"{name} (grid member chosen per fold on validation)"
    if kind == "baseline":
        return "k-mer baseline (logistic regression)"
    if kind == "ensemble":
        return "ensemble (top models per fold, by validation)"
    settings = summary["settings"].get(name) or {}
    suffix = f" {json.dumps(settings)}" if settings else ""
    return f"{name}{suffix}"


def cv_table(dataset: str, summary: dict, metrics: list[str], published: dict | None) -> list[str]:
    """One table: every row of a cross-validation summary, plus the published one."""
    lines = [f"| {dataset} | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    order = {"best": 0, "family": 1, "model": 2, "ensemble": 3, "baseline": 4}
    rows = sorted(summary["rows"].items(), key=lambda item: order[item[1]["kind"]])
    for name, row in rows:
        lines.append(f"| {_describe(name, row, summary)} | "
                     + " | ".join(_cell(row, m) for m in metrics) + " |")
    if published:
        lines.append(f"| published: {published['source']} | "
                     + " | ".join(_cell(published, m) for m in metrics) + " |")
    return lines


def _target_cell(best: dict | None, ensemble: dict | None, target: float | None) -> str:
    """The target's status, judged on the single model chosen on validation; where an
    ensemble ran, its margin over the target beside its standard error, for information."""
    single = _target_status(best["mean"] if best else None, target)
    if ensemble is None or target is None:
        return single
    error = ensemble["sd"] / max(ensemble["folds"], 1) ** 0.5
    return (f"{single}; ensemble {ensemble['mean'] - target:+.3f} from it "
            f"(s.e. {error:.3f})")


def _cv_section(config: dict, results: Path, accuracy: dict) -> list[str]:
    metrics = accuracy.get("metrics", ["sensitivity", "specificity", "mcc", "accuracy", "auroc"])
    key = accuracy.get("target_metric", "mcc")
    overview = [f"| data set | folds | bioseq best {LABELS.get(key, key)} | best model per fold "
                f"| ensemble | k-mer baseline | published | target |",
                "|---|---|---|---|---|---|---|---|"]
    tables = []
    for name in config["datasets"]:
        summary = _read(results / name / "cv" / "summary.json")
        published = (accuracy.get("published") or {}).get(name)
        target = (accuracy.get("targets") or {}).get(name)
        if summary is None:
            overview.append(f"| {name} | – | not run | | | | | |")
            continue
        best = summary["rows"]["best"].get(key)
        ensemble = summary["rows"].get("ensemble", {}).get(key)
        baseline = summary["rows"].get("kmer_baseline", {}).get(key)
        chosen = ", ".join(dict.fromkeys(c["best"] for c in summary["choices"]))
        overview.append(
            f"| {name} | {summary['folds_run']}/{summary['folds_total']} | "
            f"{_cell(summary['rows']['best'], key)} | {chosen} | "
            f"{_cell({key: ensemble}, key)} | "
            f"{_cell({key: baseline}, key)} | {_cell(published or {}, key)} | "
            f"{_target_cell(best, ensemble, target)} |")
        tables += ["", *cv_table(name, summary, metrics, published)]
    return overview + tables


def _split_section(config: dict, results: Path, accuracy: dict) -> list[str]:
    """Single-split data sets with external test sets: one row per model."""
    lines = []
    targets = accuracy.get("targets") or {}
    for name, entry in config["datasets"].items():
        dataset = dataset_config(name, entry)
        test_sets = list(dataset.test_sets)
        metric = accuracy.get("target_metric", "q3")
        split_name = accuracy.get("test_split_name", f"{name} test split")
        header = ["model", f"{split_name} {LABELS.get(metric, metric)}",
                  *[f"{t} {LABELS.get(metric, metric)}" for t in test_sets], "Q8",
                  "train time (s)"]
        lines += [f"| {' | '.join(header)} |", "|---|" + "---|" * (len(header) - 1)]
        models = [(m, results / name / m, True)
                  for m in dataset_models(dataset, config["models"])]
        models.append(("k-mer baseline (one-hot window, logistic regression)",
                       results / name / "baselines" / "kmer", False))
        scores = {}  # deep model -> (validation score, {test set: score})
        monitor = metric  # the training's validation metric, read from train.json
        for label, folder, deep in models:
            metrics = _read(folder / "metrics.json")
            if metrics is None:
                lines.append(f"| {label} | not run |" + " |" * (len(header) - 2))
                continue
            cells = [_cell(metrics, metric)]
            tested = {t: (_read(folder / "test_sets" / t / "metrics.json") or {}).get(metric)
                      for t in test_sets}
            cells += [_cell({metric: v}, metric) for v in tested.values()]
            if deep:
                trained = _read(folder / "train.json") or {}
                scores[label] = (trained.get("best_score"), tested)
                monitor = trained.get("monitor", monitor)
            cells += [_cell(metrics, "q8"), _train_seconds(folder)]
            lines.append(f"| {label} | {' | '.join(cells)} |")
        lines += _chosen_model_lines(scores, (targets.get(name) or {}), select=monitor)
        for source in (accuracy.get("published") or {}).get(name, []):
            lines.append(f"\nPublished: {source}")
    return lines


def _chosen_model_lines(scores: dict[str, tuple], targets: dict, *,
                        select: str = "q3") -> list[str]:
    """The target judged on the deep model best on the validation split by its training's
    monitor `select` (lower is better for losses), never on a test set's own scores."""
    validated = {m: v for m, v in scores.items() if v[0] is not None}
    if not validated:
        return []
    chosen = rank_models({m: {select: v[0]} for m, v in validated.items()}, select=select)[0]
    lines = []
    for test_set, value in validated[chosen][1].items():
        if value is not None:
            lines.append(f"\n{test_set}: the deep model best on validation, {chosen} "
                         f"(validation {validated[chosen][0]:.4f}), scores {value:.4f}; target "
                         f"{_target_status(value, targets.get(test_set))}.")
    return lines


def task_section(task: str, config: dict, results: Path, *, seconds: float | None,
                 machine: str | None = None) -> str:
    accuracy = config.get("accuracy") or {}
    title = accuracy.get("title", task)
    wall = (f"Pipeline run: {seconds / 60:.1f} min wall for the last invocation (work that "
            "earlier ones finished or left to resume is not in it)." if seconds is not None else
            "**Not run** by the suite run that wrote this file (no timing record).")
    lines = [f"## {title}", "", f"{accuracy.get('protocol', '')} {wall}", ""]
    if machine:
        lines += ["```", machine, "```", ""]
    cross_validated = any((entry.get("cv") or {}).get("folds")
                          for entry in config["datasets"].values())
    lines += (_cv_section if cross_validated else _split_section)(config, results, accuracy)
    return "\n".join(lines) + "\n"
