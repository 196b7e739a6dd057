"""K-fold cross-validation: fold stores over an encoded store, and per-fold model selection.

A fold store is the data set's store with a split of its own: fold k is the test split, a
stratified `val_fraction` of the other folds is the val split (early stopping and model
selection, never scored as a result) and the rest is train. Records the store dropped
(duplicates, conflicting labels, test-set overlap) stay dropped. A store encoded with
`split.method: homology` carries its clusters (`groups.npy`): then every cluster stays whole
in one fold, and in one of train and val, so near-copies never straddle a fold boundary.
The arrays are hard links to the parent store's files (copies where links are impossible),
so folds cost no space.

Selection is nested: in every fold, each model family keeps the grid member with the best
validation score, and the fold's "best" is the best of those on validation; their test
scores are then averaged over folds. No test fold ever takes part in a choice.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import BioseqError
from .io import atomic_path
from .labels import SPLITS
from .metrics import LOWER_IS_BETTER
from .splits import DROPPED, split_class_counts, split_counts
from .store import GROUPS_FILE, EncodedStore

FOLD_FILES = ("tokens.npy", "starts.npy", "lengths.npy", "labels.npy", "ids.txt", "dropped.tsv")
CLASSIFICATION = ("binary", "multiclass")


def deal_groups(counts: np.ndarray, shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(groups,) bin of each group, given `counts` (groups, classes) of each group's records
    per class and `shares` (bins, classes) of the records each bin should hold. Largest
    groups first (random among equals), each into the bin where it adds least to
    sum(filled**2 / share): that sum is least when every bin holds each class in proportion
    to its share, so classes spread as evenly as the groups allow. Ties (a class no bin
    holds yet) go to the bin least full overall, so bins fill evenly."""
    order = rng.permutation(len(counts))
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    shares = np.maximum(shares, 1e-9)
    filled = np.zeros(shares.shape)
    bins = np.empty(len(counts), np.int64)
    for g in order:
        cost = (counts[g] * (2 * filled + counts[g]) / shares).sum(axis=1)  # (bins,)
        overall = filled.sum(axis=1) / shares.sum(axis=1)  # (bins,)
        bins[g] = int(np.lexsort((overall, cost))[0])  # least cost, then least full
        filled[bins[g]] += counts[g]
    return bins


def _group_counts(labels: np.ndarray, rows: np.ndarray, groups: np.ndarray,
                  stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """For `rows` (r,): the (r,) group index of each, and (groups, classes) record counts."""
    if (groups[rows] < 0).any():
        raise AssertionError("a kept record has no homology cluster")
    _, group_index = np.unique(groups[rows], return_inverse=True)
    strata = labels[rows] if stratify else np.zeros(len(rows), np.int64)
    _, stratum = np.unique(strata, return_inverse=True)
    counts = np.zeros((group_index.max(initial=-1) + 1, stratum.max(initial=-1) + 1), np.int64)
    np.add.at(counts, (group_index, stratum), 1)
    return group_index, counts


def _grouped_folds(labels: np.ndarray, keep: np.ndarray, groups: np.ndarray, *, folds: int,
                   rng: np.random.Generator, stratify: bool) -> np.ndarray:
    """assign_folds for whole groups: (n,) fold of each kept record, -1 for the others."""
    rows = np.flatnonzero(keep)
    group_index, counts = _group_counts(labels, rows, groups, stratify)
    largest = int(counts.sum(axis=1).max())
    if largest > len(rows) / folds:
        raise BioseqError(f"a homology cluster holds {largest} of {len(rows)} records, more "
                          f"than one fold of {folds}: raise split.identity or split.kmer "
                          "(for DNA, e.g. kmer 8 and identity 0.8)")
    shares = np.repeat(counts.sum(axis=0, keepdims=True) / folds, folds, axis=0)
    fold_of = np.full(len(keep), -1, np.int64)
    fold_of[rows] = deal_groups(counts, shares, rng)[group_index]  # no fold left empty:
    return fold_of  # an empty one is always the cheapest, and no cluster exceeds a fold


def _grouped_val(labels: np.ndarray, rows: np.ndarray, groups: np.ndarray, *,
                 val_fraction: float, rng: np.random.Generator, stratify: bool) -> np.ndarray:
    """(r,) 0 train / 1 val for `rows`, whole groups. A class that val would lack gets the
    smallest of its groups that train can spare, so every class is scored in validation
    (as the record-by-record split guarantees)."""
    group_index, counts = _group_counts(labels, rows, groups, stratify)
    total = counts.sum(axis=0, keepdims=True)  # (1, classes)
    shares = np.concatenate([total * (1 - val_fraction), total * val_fraction])
    in_val = deal_groups(counts, shares, rng)  # (groups,)
    for c in range(counts.shape[1]):
        if counts[in_val == 1, c].sum() > 0:
            continue
        train_has = counts[in_val == 0, c].sum()
        spare = np.flatnonzero((in_val == 0) & (counts[:, c] > 0) & (counts[:, c] < train_has))
        if len(spare):
            in_val[spare[np.argmin(counts[spare].sum(axis=1))]] = 1
    return in_val[group_index]


def assign_folds(labels: np.ndarray, keep: np.ndarray, *, folds: int, seed: int,
                 stratify: bool, groups: np.ndarray | None = None) -> np.ndarray:
    """(n,) int64 fold 0..folds-1 of every kept record, -1 for the others. Stratified:
    each class is dealt round-robin after a seeded shuffle, so fold sizes differ by at most
    one and every fold holds each class in proportion. With `groups` (n,) every group lands
    whole in one fold, classes as evenly spread as the groups allow (`deal_groups`)."""
    if keep.sum() < folds:
        raise BioseqError(f"{int(keep.sum())} records cannot make {folds} folds")
    rng = np.random.default_rng(seed)
    if groups is not None:
        return _grouped_folds(labels, keep, groups, folds=folds, rng=rng, stratify=stratify)
    strata = labels if stratify else np.zeros(len(keep), np.int64)
    fold_of = np.full(len(keep), -1, np.int64)
    dealt = 0
    for stratum in np.unique(strata[keep]):
        members = rng.permutation(np.flatnonzero(keep & (strata == stratum)))
        fold_of[members] = (np.arange(len(members)) + dealt) % folds
        dealt += len(members)  # the next class continues the deal: sizes stay within one
    return fold_of


def fold_split(fold_of: np.ndarray, labels: np.ndarray, *, fold: int, val_fraction: float,
               seed: int, stratify: bool, groups: np.ndarray | None = None) -> np.ndarray:
    """(n,) int8 split codes for 0-based `fold`: 2 test (the fold), 1 val, 0 train, -1.
    With `groups`, each group goes whole to train or val."""
    split = np.full(len(fold_of), DROPPED, np.int8)
    split[fold_of == fold] = SPLITS.index("test")
    rest = (fold_of >= 0) & (fold_of != fold)
    rng = np.random.default_rng([seed, fold])
    if groups is not None:
        rows = np.flatnonzero(rest)
        split[rows] = _grouped_val(labels, rows, groups, val_fraction=val_fraction, rng=rng,
                                   stratify=stratify)  # 0 train, 1 val
        return split
    strata = labels if stratify else np.zeros(len(fold_of), np.int64)
    for stratum in np.unique(strata[rest]):
        members = rng.permutation(np.flatnonzero(rest & (strata == stratum)))
        n_val = min(max(1, int(round(len(members) * val_fraction))), len(members) - 1)
        split[members[:n_val]] = SPLITS.index("val")
        split[members[n_val:]] = SPLITS.index("train")
    return split


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)


def write_fold_store(store_dir: str | os.PathLike, out_dir: str | os.PathLike, *, fold: int,
                     folds: int, val_fraction: float = 0.1, seed: int = 0) -> dict:
    """Write fold `fold` (1-based) of `folds` of a store as a store of its own; returns its
    metadata (the parent's, with this fold's split counts and a `cv` entry)."""
    if not 1 <= fold <= folds:
        raise BioseqError(f"fold {fold} is not one of 1..{folds}")
    store = EncodedStore(store_dir)
    stratify = store.task in CLASSIFICATION
    labels = store.labels if stratify else np.zeros(len(store), np.int64)
    groups_path = store.path / GROUPS_FILE
    groups = np.load(groups_path) if groups_path.is_file() else None
    if groups is None and store.meta.get("split_source") == "homology":
        raise BioseqError(f"{store.path}: split by homology but without {GROUPS_FILE} (encoded "
                          "by an older bioseq): encode it again for homology-grouped folds")
    fold_of = assign_folds(labels, store.split >= 0, folds=folds, seed=seed, stratify=stratify,
                           groups=groups)
    split = fold_split(fold_of, labels, fold=fold - 1, val_fraction=val_fraction, seed=seed,
                       stratify=stratify, groups=groups)
    meta = json.loads(json.dumps(store.meta))  # a deep copy
    meta["split_source"] = "cv"
    meta["cv"] = {"fold": fold, "folds": folds, "seed": seed, "val_fraction": val_fraction,
                  "grouped_by": "homology" if groups is not None else None}
    meta["counts"]["splits"] = split_counts(split)
    if stratify:
        meta["counts"]["classes"] = split_class_counts(store.labels, split, store.label_names)
    with atomic_path(out_dir, directory=True, marker="meta.json") as tmp:
        for name in FOLD_FILES + ((GROUPS_FILE,) if groups is not None else ()):
            _link_or_copy(store.path / name, tmp / name)
        np.save(tmp / "split.npy", split)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def rank_models(val_metrics: Mapping[str, Mapping], *, select: str) -> list[str]:
    """Model names from best to worst by validation metric `select` (ties: config order);
    models whose metric is undefined come last."""
    sign = 1.0 if select in LOWER_IS_BETTER else -1.0

    def key(item: tuple[int, str]) -> tuple:
        value = val_metrics[item[1]].get(select)
        return (value is None, sign * value if value is not None else 0.0, item[0])

    return [name for _, name in sorted(enumerate(val_metrics), key=key)]


def flat_metrics(metrics: Mapping) -> dict[str, float]:
    """The numbers a cross-validation table averages: scalar metrics, and per class its
    error rate (1 - recall) for classification."""
    flat = {k: float(v) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "n"}
    for name, values in (metrics.get("per_class") or {}).items():
        if "recall" in values and values.get("support", 1) > 0:  # absent: no error rate
            flat[f"error_{name}"] = 1.0 - float(values["recall"])
    return flat


def _mean_sd(values: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = sorted({k for v in values for k in v})
    summary = {}
    for key in keys:
        column = np.array([v[key] for v in values if key in v], float)
        summary[key] = {"mean": float(column.mean()),
                        "sd": float(column.std(ddof=1)) if len(column) > 1 else 0.0,
                        "folds": int(len(column))}
    return summary


def summarize_folds(folds: list[Mapping], *, select: str,
                    family: Mapping[str, str]) -> dict:
    """Mean and s.d. over folds of every row of the cross-validation table.

    `folds`: per fold {"fold": k, "models": {name: {"val": metrics, "test": metrics}},
    "baseline": test metrics or None, "ensemble": test metrics or None}. Rows: every model
    (grid member), every family (its member chosen on each fold's val split), `best` (the
    family choice best on val), the k-mer baseline and the ensemble."""
    rows: dict[str, dict] = {}
    choices = []

    def add(row: str, kind: str, metrics: Mapping | None) -> None:
        if metrics is not None:
            entry = rows.setdefault(row, {"kind": kind, "per_fold": []})
            entry["per_fold"].append(flat_metrics(metrics))

    for fold in folds:
        models = fold["models"]
        val = {name: entry["val"] for name, entry in models.items()}
        chosen = {}
        for fam in dict.fromkeys(family[name] for name in models):
            members = {n: val[n] for n in models if family[n] == fam}
            chosen[fam] = rank_models(members, select=select)[0]
        best = rank_models({chosen[f]: val[chosen[f]] for f in chosen}, select=select)[0]
        choices.append({"fold": fold["fold"], "family_choice": chosen, "best": best})
        for name, entry in models.items():
            add(name, "model", entry["test"])
        for fam, name in chosen.items():
            if any(family[n] == fam and n != fam for n in models):  # a grid: its choice
                add(fam, "family", models[name]["test"])
        add("best", "best", models[best]["test"])
        add("kmer_baseline", "baseline", fold.get("baseline"))
        add("ensemble", "ensemble", fold.get("ensemble"))
    table = {row: {"kind": entry["kind"], **_mean_sd(entry["per_fold"])}
             for row, entry in rows.items()}
    return {"select": select, "folds_run": len(folds), "choices": choices, "rows": table}


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def summarize_cv_results(cv_dir: str | os.PathLike, *, folds: list[int], models: list[str],
                         family: Mapping[str, str], select: str,
                         settings: Mapping[str, Mapping] | None = None,
                         folds_total: int | None = None, baseline: bool = False,
                         ensemble: bool = False) -> dict:
    """Read `cv_dir/fold{k}/{model}/{metrics,val_metrics}.json` (and, where asked for, the
    baseline's and the ensemble's) and summarise them with `summarize_folds`."""
    cv_dir = Path(cv_dir)
    per_fold = []
    for k in folds:
        fold_dir = cv_dir / f"fold{k}"
        entry = {"fold": k, "models": {m: {"val": _read(fold_dir / m / "val_metrics.json"),
                                           "test": _read(fold_dir / m / "metrics.json")}
                                       for m in models}}
        entry["baseline"] = (_read(fold_dir / "baselines" / "kmer" / "metrics.json")
                             if baseline else None)
        entry["ensemble"] = _read(fold_dir / "ensemble" / "metrics.json") if ensemble else None
        per_fold.append(entry)
    summary = summarize_folds(per_fold, select=select, family={m: family[m] for m in models})
    summary["folds_total"] = folds_total or len(folds)
    summary["settings"] = {m: dict((settings or {}).get(m) or {}) for m in models}
    summary["family"] = {m: family[m] for m in models}
    seconds = {m: [_read(cv_dir / f"fold{k}" / m / "train.json")["seconds"] for k in folds]
               for m in models}
    summary["train_seconds"] = {m: float(np.sum(s)) for m, s in seconds.items()}
    return summary


def summary_table(summary: Mapping) -> list[dict]:
    """One row per table entry: kind, folds and `metric_mean`/`metric_sd` columns."""
    rows = []
    for name, row in summary["rows"].items():
        metrics = {k: v for k, v in row.items() if k != "kind"}
        line = {"row": name, "kind": row["kind"],
                "folds": max((v["folds"] for v in metrics.values()), default=0)}
        for metric, value in metrics.items():
            line[f"{metric}_mean"], line[f"{metric}_sd"] = value["mean"], value["sd"]
        rows.append(line)
    return rows
