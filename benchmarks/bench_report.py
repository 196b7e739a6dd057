"""Report: build_report time and page size for 100,000 predictions, vs a pandas HTML table.

A results folder is made in a temporary directory: one 3-class data set (encoded lengths,
metrics.json, train.json, history.tsv) with a model whose predictions.tsv has 100,000
rows and whose test_predictions.tsv has 10,000 labelled rows, plus (when present) the
demo's own `results/` folder of this checkout. `bioseq.report.build_report` writes the
self-contained page (figures inline, predictions as JSON rendered by the page's script).
The baseline is what a quick script does: `DataFrame.to_html` of the same 100,000 rows
(a static table, no figures, search or paging).

    python benchmarks/bench_report.py [--small]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import best_of, machine_info, parse_args, print_table

from bioseq.report import build_report

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("EI", "IE", "N")
FULL = {"rows": 100_000, "labelled": 10_000, "repeats": 2}
SMALL = {"rows": 2_000, "labelled": 500, "repeats": 1}
TARGET_SECONDS, TARGET_MB = 10.0, 20.0


def make_results(root: Path, rows: int, labelled: int, seed: int = 0) -> pd.DataFrame:
    """A results folder with one data set and one model; returns the predictions."""
    rng = np.random.default_rng(seed)
    data, model = root / "synthetic", root / "synthetic" / "cnn"
    (data / "encoded").mkdir(parents=True)
    model.mkdir()
    np.save(data / "encoded" / "lengths.npy", rng.integers(40, 200, rows).astype(np.int32))
    probs = rng.dirichlet(np.ones(3), rows).astype(np.float32)
    frame = pd.DataFrame({"id": [f"chr{i % 22 + 1}:{i * 100}-{i * 100 + 200}"
                                 for i in range(rows)],
                          "predicted": np.asarray(CLASSES)[probs.argmax(1)]})
    for j, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = probs[:, j]
    frame.to_csv(model / "predictions.tsv", sep="\t", index=False, float_format="%.6g")
    test = frame.iloc[:labelled].copy()
    test.insert(1, "label", np.where(rng.random(labelled) < 0.8, test["predicted"],
                                     rng.choice(CLASSES, labelled)))
    test.insert(3, "correct", test["label"] == test["predicted"])
    test.to_csv(model / "test_predictions.tsv", sep="\t", index=False, float_format="%.6g")
    (model / "metrics.json").write_text(json.dumps({
        "task": "multiclass", "accuracy": float(test["correct"].mean()), "labels": CLASSES,
        "confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}))
    (model / "train.json").write_text(json.dumps({
        "architecture": "cnn", "best_epoch": 3, "monitor": "val_loss", "seconds": 1.0,
        "device": "cpu", "parameters": 1000}))
    pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.8, 0.7],
                  "val_loss": [1.1, 0.9, 0.85], "accuracy": [0.5, 0.6, 0.7],
                  "best": [False, False, True]}).to_csv(model / "history.tsv", sep="\t",
                                                        index=False)
    return frame


def measure(results: Path, out: Path, repeats: int) -> tuple[float, float]:
    seconds = best_of(lambda: build_report(results, out), repeats)
    return seconds, out.stat().st_size / 1e6


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    size = SMALL if args.small else FULL
    print("bench_report: build_report (self-contained HTML)")
    print(machine_info())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bioseq-bench-") as name:
        tmp = Path(name)
        frame = make_results(tmp / "results", size["rows"], size["labelled"])
        seconds, mb = measure(tmp / "results", tmp / "report.html", size["repeats"])
        rows.append([f"build_report, {size['rows']:,} predictions", seconds, mb])
        started = time.perf_counter()
        (tmp / "naive.html").write_text(frame.to_html(index=False))
        naive_s = time.perf_counter() - started
        rows.append([f"baseline: DataFrame.to_html, {size['rows']:,} rows", naive_s,
                     (tmp / "naive.html").stat().st_size / 1e6])
        demo = REPO / "results"
        if (demo / "splice").is_dir():
            demo_s, demo_mb = measure(demo, tmp / "demo.html", size["repeats"])
            rows.append(["build_report, this checkout's demo results/", demo_s, demo_mb])
    print_table(["page", "best s", "MB"], rows)
    met = seconds < TARGET_SECONDS and mb < TARGET_MB
    print(f"target < {TARGET_SECONDS:.0f} s and < {TARGET_MB:.0f} MB for {size['rows']:,} "
          f"predictions: {'met' if met else 'NOT met'} ({seconds:.2f} s, {mb:.1f} MB)")
    print(f"ratio: {rows[1][2] / mb:.2f}x (page size of the pandas table / bioseq's page, "
          f"which adds figures, search, sorting and paging)")


if __name__ == "__main__":
    main()
