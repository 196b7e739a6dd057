"""The benchmark scripts still run (their --small mode); their timings live in benchmarks/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.stem)
def test_benchmark_runs_and_prints_a_ratio(script: Path):
    result = subprocess.run([sys.executable, str(script), "--small"], capture_output=True,
                            text=True, timeout=300, cwd=script.parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio:" in result.stdout


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ACCURACY_RUNNER = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy" / "run.py"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data beside the checkout")
def test_accuracy_suite_smoke_run_writes_every_table(tmp_path):
    """The whole suite through the real pipeline, one fold and one epoch (CI's version)."""
    result = subprocess.run([sys.executable, str(ACCURACY_RUNNER), "all", "--smoke",
                             "--workdir", str(tmp_path)], capture_output=True, text=True,
                            timeout=1500)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    text = (tmp_path / "ACCURACY.md").read_text()
    for heading in ("## Promoters", "## Splice junctions", "## Protein secondary structure",
                    "## Promoters (CNNProm data), 5-fold cross-validation with homology-grouped"):
        assert heading in text
    grouped = json.loads((tmp_path / "results" / "ecoli_grouped" / "cv" / "fold1" / "encoded" /
                          "meta.json").read_text())
    assert grouped["cv"]["grouped_by"] == "homology"
    assert grouped["counts"]["homology_clusters"] == 1680
    for dataset in ("ecoli", "ecoli_grouped", "splice_cv"):  # the smoke data sets
        summary = tmp_path / "results" / dataset / "cv" / "summary.json"
        assert summary.is_file(), dataset
        assert f"| {dataset} | 1/" in text  # 1 fold run of 5 or 10
    assert "| mouse_tata |" not in text  # a smoke run keeps the smoke data sets only
    for architecture in ("cnn", "bigru", "transformer"):  # each in one smoke data set
        assert f"| {architecture} |" in text, architecture
    assert "k-mer baseline" in text and "CNNProm" in text
    cb513 = tmp_path / "results" / "netsurfp2" / "cnn" / "test_sets" / "cb513" / "metrics.json"
    assert cb513.is_file()
    history = pd.read_csv(cb513.parents[2] / "history.tsv", sep="\t")
    seconds = f"{history['seconds'].sum():.0f}"  # the training time column: its epochs' sum
    assert re.search(rf"\| cnn \| 0\.\d+ \| 0\.\d+ \| – \| {seconds} \|", text)


def _accuracy_runner():
    import importlib.util

    spec = importlib.util.spec_from_file_location("accuracy_run", ACCURACY_RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_accuracy_tables_keep_the_sections_of_tasks_not_run(tmp_path):
    """One task's run replaces its own section of ACCURACY.md and leaves the others as
    they were (tasks run on different days, so the file is never all one run)."""
    runner = _accuracy_runner()
    out = tmp_path / "ACCURACY.md"
    out.write_text("# Accuracy on real data\n\nold header\n\n"
                   "## Promoters (CNNProm data), 5-fold cross-validation\n\nE. coli 0.797\n\n"
                   "## Splice junctions (UCI), 10-fold cross-validation\n\nnot run\n")
    splice = "## Splice junctions (UCI), 10-fold cross-validation\n\naccuracy 0.961\n"
    text = runner.merged_tables(out, {"splice": splice}, command="splice")
    assert "E. coli 0.797" in text and "accuracy 0.961" in text
    assert "not run" not in text and "old header" not in text
    assert text.index("## Promoters") < text.index("## Splice")
    assert "## Protein secondary structure" not in text  # never run, never invented


def test_accuracy_overview_judges_the_target_on_the_chosen_single_model(tmp_path):
    _accuracy_runner()  # puts benchmarks/accuracy on the import path
    from tables import _cv_section

    def cell(mean):
        return {"accuracy": {"mean": mean, "sd": 0.01, "folds": 10}}

    summary = {"folds_run": 10, "folds_total": 10, "settings": {},
               "choices": [{"fold": 1, "best": "cnn.g2"}],
               "rows": {"best": {"kind": "best", **cell(0.9688)},
                        "ensemble": {"kind": "ensemble", **cell(0.9712)},
                        "kmer_baseline": {"kind": "baseline", **cell(0.697)}}}
    (tmp_path / "splice_cv" / "cv").mkdir(parents=True)
    (tmp_path / "splice_cv" / "cv" / "summary.json").write_text(json.dumps(summary))
    accuracy = {"target_metric": "accuracy", "metrics": ["accuracy"],
                "targets": {"splice_cv": 0.97}}
    lines = _cv_section({"datasets": {"splice_cv": {}}}, tmp_path, accuracy)
    row = next(line for line in lines if line.startswith("| splice_cv | 10/10"))
    assert row == ("| splice_cv | 10/10 | 0.969 ± 0.010 | cnn.g2 | 0.971 ± 0.010 | "
                   "0.697 ± 0.010 | – | ≥ 0.97: **not met**; ensemble +0.001 from it "
                   "(s.e. 0.003) |")
    del summary["rows"]["ensemble"]
    (tmp_path / "splice_cv" / "cv" / "summary.json").write_text(json.dumps(summary))
    lines = _cv_section({"datasets": {"splice_cv": {}}}, tmp_path, accuracy)
    assert lines[2].endswith("| – | 0.697 ± 0.010 | – | ≥ 0.97: **not met** |")


def test_split_tasks_judge_the_target_on_the_model_best_on_validation():
    _accuracy_runner()
    from tables import _chosen_model_lines

    scores = {"cnn": (0.731, {"cb513": 0.718}), "cnn_bigru": (0.728, {"cb513": 0.724}),
              "transformer": (None, {"cb513": 0.9})}  # no train.json: never chosen
    lines = _chosen_model_lines(scores, {"cb513": 0.72})
    assert lines == ["\ncb513: the deep model best on validation, cnn (validation 0.7310), "
                     "scores 0.7180; target ≥ 0.72: **not met**."]
    assert _chosen_model_lines({}, {"cb513": 0.72}) == []
