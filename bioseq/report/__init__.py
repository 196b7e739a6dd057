"""A single self-contained HTML page summarising every dataset x model in a results folder.

Layout read: `{results}/{dataset}/encoded/meta.json` and
`{results}/{dataset}/{model}/{train.json, history.tsv, metrics.json}`. Anything missing is
listed on the page instead of failing. All text from inputs is escaped by Jinja2.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from .. import __version__
from ..config import dataset_config, dataset_models
from ..io import write_text_atomic
from . import evaluation, plots

_SUMMARY_METRICS = ("q3", "q8", "accuracy", "balanced_accuracy", "mcc", "macro_f1", "auroc",
                    "auprc", "protein_accuracy_mean", "subset_accuracy", "pearson",
                    "spearman", "r2", "mse", "ece")
_NOT_MODELS = ("encoded", "test_sets", "cv", "baselines")  # beside the model folders
CV_COLUMNS = ("accuracy", "mcc", "sensitivity", "specificity", "auroc", "macro_f1", "r2",
              "pearson")


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _model_section(dataset: str, model_dir: Path, missing: list[str]) -> dict:
    train = _read_json(model_dir / "train.json")
    metrics = _read_json(model_dir / "metrics.json")
    history_path = model_dir / "history.tsv"
    section = {"name": model_dir.name, "train": train, "metrics": metrics, "curves": None,
               "confusion": None, "proteins": None, "test_sets": _test_sets(model_dir)}
    if train is None:
        missing.append(f"{dataset}/{model_dir.name}: training summary (train.json)")
    if metrics is None:
        missing.append(f"{dataset}/{model_dir.name}: evaluation (metrics.json)")
    elif "confusion_matrix" in metrics:
        section["confusion"] = plots.data_uri(plots.confusion_matrix(
            metrics["confusion_matrix"], metrics["labels"], title=model_dir.name))
    if metrics and "protein_accuracy_histogram" in metrics:
        section["proteins"] = plots.data_uri(plots.protein_accuracy(
            metrics["protein_accuracy_histogram"], title=f"{model_dir.name}: test split"))
    if history_path.is_file():
        history = pd.read_csv(history_path, sep="\t")
        monitor = (train or {}).get("monitor", "val_loss")
        section["curves"] = plots.data_uri(plots.learning_curves(
            history, monitor=monitor, title=f"{dataset} / {model_dir.name}",
            label_smoothing=(train or {}).get("label_smoothing")))
    else:
        missing.append(f"{dataset}/{model_dir.name}: learning curves (history.tsv)")
    section["summary"] = {k: metrics.get(k) for k in _SUMMARY_METRICS
                          if metrics and metrics.get(k) is not None}
    section.update(_test_figures(model_dir, metrics, section["summary"]))
    section["variants"] = _variant_effects(model_dir / "variant_effect", missing)
    section["ism"] = _ism(model_dir / "ism")
    return section


TOP_VARIANTS = 15


def _test_figures(model_dir: Path, metrics: dict | None, summary: dict) -> dict:
    """ROC/PR curves and the reliability diagram of a classifier's test predictions; its
    expected calibration error joins the summary metrics."""
    found = {"roc": None, "calibration": None}
    path = model_dir / "test_predictions.tsv"
    if not metrics or metrics.get("task") not in ("binary", "multiclass") or not path.is_file():
        return found
    frame = pd.read_csv(path, sep="\t", dtype={"id": str, "label": str},
                        keep_default_na=False)
    if "label" not in frame or not evaluation.probability_columns(frame) or frame.empty:
        return found
    result = evaluation.calibration(frame)
    summary["ece"] = result["ece"]
    found["roc"] = plots.data_uri(evaluation.curves_figure(frame, title=model_dir.name))
    found["calibration"] = plots.data_uri(evaluation.calibration_figure(
        result, title=model_dir.name))
    return found


def _variant_effects(folder: Path, missing: list[str]) -> dict | None:
    """Counts, a figure and the top variants of a variant-effect run, when there is one."""
    summary = _read_json(folder / "summary.json")
    if summary is None:
        return None
    scores_path = folder / "scores.tsv"
    if not scores_path.is_file():
        missing.append(f"{folder}: scores.tsv")
        return {"summary": summary, "figure": None, "top": [], "columns": []}
    top, sample = variant_score_digest(scores_path)
    return {"summary": summary, "top": top.to_dict("records"), "columns": list(top.columns),
            "figure": plots.data_uri(plots.variant_scores(sample, title=str(folder.parent.name)))}


def variant_score_digest(path: str | os.PathLike, *, top: int = TOP_VARIANTS,
                         points: int = 50_000, chunk_rows: int = 200_000
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the `top` variants by max_abs_diff, up to about `points` rows to plot: the largest
    effects plus an even sample of the rest), read in chunks so that memory does not grow
    with the table."""
    best, sample = None, []
    rng = np.random.default_rng(0)
    for chunk in pd.read_csv(path, sep="\t", dtype={"chrom": str, "id": str},
                             chunksize=chunk_rows):
        columns = ["chrom", "pos", "id", "ref", "alt",
                   *(c for c in chunk.columns if c.startswith(("diff_", "log_odds_",
                                                              "log2_fc_"))), "max_abs_diff"]
        chunk = chunk[columns]
        best = pd.concat([b for b in (best, chunk) if b is not None]).nlargest(
            max(top, points // 5), "max_abs_diff")
        sample.append(chunk.sample(n=min(len(chunk), points), random_state=rng))
    if best is None:
        empty = pd.DataFrame(columns=["chrom", "pos", "id", "ref", "alt", "max_abs_diff"])
        return empty, empty
    rest = pd.concat(sample)
    rest = rest.sample(n=min(len(rest), points - len(best)), random_state=rng)
    plotted = pd.concat([best, rest]).drop_duplicates(["chrom", "pos", "ref", "alt"])
    return best.head(top), plotted.sort_values(["chrom", "pos"], kind="stable")


def _ism(folder: Path) -> list[dict]:
    """Heat maps of the saturation mutagenesis runs of a model."""
    from ..mutagenesis import SaturationMutagenesis

    found = []
    for meta_path in sorted(folder.glob("*/ism.json")):
        meta = _read_json(meta_path)
        effects = np.load(meta_path.parent / "ism.npy", allow_pickle=False)
        result = SaturationMutagenesis(meta["sequence"], meta["letters"],
                                       tuple(meta["outputs"]),
                                       np.asarray(meta["reference_scores"]), effects,
                                       meta["region"])
        found.append({"region": meta["region"] or meta_path.parent.name,
                      "figure": plots.data_uri(plots.ism_heatmap(result))})
    return found


def _test_sets(model_dir: Path) -> list[dict]:
    """Summary metrics of a model on each of its data set's external test sets."""
    found = []
    for path in sorted((model_dir / "test_sets").glob("*/metrics.json")):
        metrics = _read_json(path)
        found.append({"name": path.parent.name,
                      "summary": {k: metrics[k] for k in _SUMMARY_METRICS
                                  if metrics.get(k) is not None},
                      "n": metrics.get("proteins", metrics.get("n"))})
    return found


def _baseline_section(folder: Path) -> dict | None:
    """The k-mer baseline as a leaderboard row (no curves: it has no epochs)."""
    metrics, fit = _read_json(folder / "metrics.json"), _read_json(folder / "baseline.json")
    if metrics is None:
        return None
    train = {"architecture": f"logistic regression, k-mers k <= {fit['kmer']}"
             if metrics["task"] != "per_residue" else
             f"logistic regression, window ±{fit['window']}",
             "best_epoch": "–", "seconds": fit["seconds"], "device": "cpu",
             "parameters": "–", "monitor": "–"}
    summary = {k: metrics[k] for k in _SUMMARY_METRICS if metrics.get(k) is not None}
    return {"name": "kmer_baseline", "train": train, "metrics": metrics, "curves": None,
            "confusion": None, "proteins": None, "test_sets": _test_sets(folder),
            "summary": summary, "baseline": True, "variants": None, "ism": [], "roc": None,
            "calibration": None}


def _cross_validation(dataset_dir: Path) -> dict | None:
    """The cross-validation table: mean ± s.d. over test folds of each row."""
    summary = _read_json(dataset_dir / "cv" / "summary.json")
    if summary is None:
        return None
    present = {k for row in summary["rows"].values() for k in row}
    columns = [c for c in CV_COLUMNS if c in present]
    columns += sorted(k for k in present if k.startswith("error_"))
    settings = summary.get("settings", {})
    choices = [{**c, "grid": "; ".join(
        f"{family} → {member} ({', '.join(f'{k}={v}' for k, v in settings[member].items())})"
        for family, member in c["family_choice"].items() if settings.get(member))}
        for c in summary["choices"]]
    return {"folds_run": summary["folds_run"], "folds_total": summary["folds_total"],
            "select": summary["select"], "columns": columns, "rows": summary["rows"],
            "choices": choices}


def _best_model(models: list[dict], metric_names: list[str]) -> str | None:
    """The model with the highest first summary metric (lowest for mse and ece); never the
    baseline, which has no predictions to show."""
    models = [m for m in models if not m.get("baseline")]
    if not metric_names:
        return models[0]["name"] if models else None
    key = metric_names[0]
    scored = [m for m in models if m["summary"].get(key) is not None]
    if not scored:
        return None
    sign = -1 if key in ("mse", "ece") else 1
    return max(scored, key=lambda m: sign * m["summary"][key])["name"]


def _predictions(dataset_dir: Path, best: str | None, meta: dict | None) -> dict:
    """The best model's predictions table, or per-residue tracks, for the page."""
    if best is None:
        return {"predictions": None, "tracks": []}
    model_dir = dataset_dir / best
    if meta and meta.get("task") == "per_residue":
        return {"predictions": None,
                "tracks": evaluation.residue_tracks(model_dir / "test_predictions.tsv")}
    return {"predictions": evaluation.prediction_rows(model_dir / "predictions.tsv",
                                                      model_dir / "test_predictions.tsv"),
            "tracks": []}


def collect(results_dir: str | os.PathLike,
            selection: dict[str, list[str]] | None = None) -> dict:
    """Everything the page shows, gathered from a results folder; `selection` (dataset ->
    model names, from a config) limits it to one run's data sets and models."""
    results_dir = Path(results_dir)
    datasets, missing = [], []
    for dataset_dir in sorted(p for p in results_dir.iterdir() if p.is_dir()) \
            if results_dir.is_dir() else []:
        if selection is not None and dataset_dir.name not in selection:
            continue
        meta = _read_json(dataset_dir / "encoded" / "meta.json")
        model_dirs = sorted(p for p in dataset_dir.iterdir()
                            if p.is_dir() and p.name not in _NOT_MODELS
                            and (selection is None or p.name in selection[dataset_dir.name]))
        baseline = _baseline_section(dataset_dir / "baselines" / "kmer")
        cross_validation = _cross_validation(dataset_dir)
        if meta is None and not model_dirs and cross_validation is None:
            continue
        if meta is None:
            missing.append(f"{dataset_dir.name}: encoded data (encoded/meta.json)")
        models = [_model_section(dataset_dir.name, d, missing) for d in model_dirs]
        if baseline is not None:
            models.append(baseline)
        metric_names = sorted({k for m in models for k in m["summary"]},
                              key=_SUMMARY_METRICS.index)
        best = _best_model(models, metric_names)
        lengths_path = dataset_dir / "encoded" / "lengths.npy"
        lengths = (plots.data_uri(plots.length_histogram(np.load(lengths_path),
                                                         title=dataset_dir.name))
                   if lengths_path.is_file() else None)
        datasets.append({"name": dataset_dir.name, "meta": meta, "models": models,
                         "metric_names": metric_names, "best": best, "lengths": lengths,
                         "cv": cross_validation,
                         **_predictions(dataset_dir, best, meta)})
    if not datasets:
        missing.append(f"no results found under {results_dir}")
    return {"datasets": datasets, "missing": missing}


def _git_commit() -> str | None:
    """The checkout's commit (with '+changes' when the tree differs), if this is one."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if dirty else "") if commit else None


def _torch_version() -> str:
    import torch

    return torch.__version__


def build_report(results_dir: str | os.PathLike, out_path: str | os.PathLike, *,
                 config: dict | None = None) -> None:
    """Render `report.html` for a results folder (written atomically)."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("bioseq", "report"), autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    selection = None
    if config and isinstance(config.get("datasets"), dict) and config.get("models"):
        selection = {name: dataset_models(dataset_config(name, entry), config["models"])
                     for name, entry in config["datasets"].items()}
    page = environment.get_template("template.html").render(
        **collect(results_dir, selection),
        provenance={"bioseq_version": __version__, "python": platform.python_version(),
                    "machine": f"{platform.machine()} {platform.system()} ({os.cpu_count()} cpus)",
                    "date": datetime.datetime.now().isoformat(timespec="seconds"),
                    "commit": _git_commit(), "torch": _torch_version()},
        config_text=json.dumps(config, indent=2, default=str) if config else None,
    )
    write_text_atomic(out_path, page)
