"""The real Snakemake pipeline, run from the project's own Snakefile in a temporary folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import bioseq

REPO = Path(__file__).resolve().parents[1]
SPLICE = REPO / "resources" / "splice" / "splice.fasta"

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, timeout: int = 900, env: dict | None = None,
              interrupt: bool = False) -> subprocess.CompletedProcess:
    """Run the project's Snakefile in `workdir` with this interpreter's environment (plus
    `env`). interrupt: at `timeout` send SIGINT, as Ctrl-C does, so that Snakemake cancels
    the cluster jobs it submitted (a kill would leave them running)."""
    env = {**os.environ, **(env or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
               "--directory", str(workdir), *args]
    if interrupt:
        command = ["timeout", "-s", "INT", "-k", "60", str(timeout), *command]
        timeout += 90  # the backstop, should Snakemake ignore both signals
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def write_slice(path: Path, every: int = 5) -> list[str]:
    """Every `every`-th record of the shipped splice data (all three classes); returns ids."""
    lines = SPLICE.read_text().splitlines()
    records = [lines[i : i + 2] for i in range(0, len(lines), 2)][::every]
    path.write_text("".join(f"{h}\n{s}\n" for h, s in records))
    return [h[1:].split()[0] for h, _ in records]


TINY_MODELS = {
    "cnn": {"architecture": "cnn", "params": {"channels": [16], "kernel_sizes": [7],
                                              "pool": [2], "head_pool": "flatten"}},
    "bigru": {"architecture": "bigru", "params": {"hidden": 8, "layers": 1}},
}
GENOME_SLICE = REPO / "resources" / "genome" / "GRCh37_chr20_1-2000000.fa.gz"
NETSURFP = {kind: REPO / "tests" / "data" / f"netsurfp2_slice_{kind}.fasta"
            for kind in ("sequences", "labels", "mask")}


def write_residue_test_set(path: Path) -> list[str]:
    """A CB513-style table holding the first 3 chains of the NetSurfP fixture; returns ids."""
    lines = {kind: p.read_text().splitlines() for kind, p in NETSURFP.items()}
    rows = ["id\tsequence\tdssp3\tdisorder_mask"]
    ids = [h[1:].split()[0] for h in lines["sequences"][0:6:2]]
    for k in range(3):
        rows.append("\t".join([f"T{k}", *(lines[kind][2 * k + 1]
                                          for kind in ("sequences", "labels", "mask"))]))
    path.write_text("\n".join(rows) + "\n")
    return ids


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pipeline")
    ids = write_slice(workdir / "splice_slice.fa")
    write_residue_test_set(workdir / "ext.tsv")
    residues = {"alphabet": "protein", "task": "per_residue",
                "fasta": str(NETSURFP["sequences"]), "residue_labels": str(NETSURFP["labels"]),
                "residue_mask": str(NETSURFP["mask"]), "length": {"max_length": 100},
                "split": {"field": "SET", "validation_field": "VALIDATION"},
                "test_sets": {"ext": {"residue_table": "ext.tsv", "label_field": "dssp3",
                                      "mask_column": "disorder_mask"}},
                "models": ["rcnn"]}
    config = {
        "datasets": {"splice": {"fasta": "splice_slice.fa", "length": {"length": 60},
                                "models": list(TINY_MODELS)},
                     "ss": residues},
        "models": {**TINY_MODELS, "rcnn": {"architecture": "cnn", "params": {
            "channels": [8, 8], "kernel_sizes": [5, 3], "pool": 1}}},
        "training": {"epochs": 2, "batch_size": 32},
        # three prediction jobs per model, concatenated: the tables must equal the API's
        "resources": {"threads": 1, "predict_shards": 3},
        "variant_effect": {  # the VCF names chr20 "chr20"; the demo genome calls it "20"
            "vcf": "chr_named.vcf", "reference": str(GENOME_SLICE), "models": ["splice/cnn"],
            "contig_aliases": {"chr20": "20"}, "rc_average": True,
            "ism_regions": ["chr20:1318016-1318075"]},
    }
    vcf = (REPO / "resources/variants/demo.vcf").read_text()
    (workdir / "chr_named.vcf").write_text(re.sub(r"(?m)^20\t", "chr20\t",
                                                  vcf.replace("<ID=20,", "<ID=chr20,")))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, ids, result


def test_every_output_is_written(tiny_run):
    workdir, _, _ = tiny_run
    for model in TINY_MODELS:
        for name in ("model.pt", "history.tsv", "train.json", "metrics.json",
                     "test_predictions.tsv", "predictions.tsv", "learning_curves.png",
                     "confusion_matrix.png"):
            assert (workdir / "results/splice" / model / name).stat().st_size > 0, name
        for step in ("train", "evaluate", "predict", "predict/2-of-3"):
            assert (workdir / "logs/splice" / model / f"{step}.log").is_file()
        assert not list((workdir / "results/splice" / model).glob("shards/*"))  # temp()
    assert (workdir / "results/report.html").is_file()


def test_metrics_cover_the_test_split(tiny_run):
    workdir, ids, _ = tiny_run
    meta = json.loads((workdir / "results/splice/encoded/meta.json").read_text())
    assert meta["counts"]["records"] == len(ids)
    n_test = meta["counts"]["splits"]["test"]
    for model in TINY_MODELS:
        metrics = json.loads((workdir / "results/splice" / model / "metrics.json").read_text())
        assert metrics["n"] == n_test
        assert np.asarray(metrics["confusion_matrix"]).sum() == n_test
        assert 0.0 <= metrics["accuracy"] <= 1.0
        history = pd.read_csv(workdir / "results/splice" / model / "history.tsv", sep="\t")
        assert list(history["epoch"]) == [1, 2]
        assert history["best"].sum() == 1


def test_predictions_match_the_python_api(tiny_run):
    workdir, ids, _ = tiny_run
    for model in TINY_MODELS:
        table = pd.read_csv(workdir / "results/splice" / model / "predictions.tsv", sep="\t")
        assert list(table["id"]) == ids  # every record, in input order
        probs = table[["prob_EI", "prob_IE", "prob_N"]].to_numpy()
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
        api = bioseq.load_model(workdir / "results/splice" / model / "model.pt", device="cpu")
        expected = api.predict_fasta(workdir / "splice_slice.fa")
        np.testing.assert_allclose(probs, expected[["prob_EI", "prob_IE", "prob_N"]], atol=1e-5)
        assert list(table["predicted"]) == list(expected["predicted"])


def test_per_residue_dataset_runs_with_its_test_set(tiny_run):
    workdir = tiny_run[0]
    results = workdir / "results" / "ss"
    assert not (workdir / "results/splice/rcnn").exists()  # models: limits the runs
    assert not (results / "cnn").exists()
    meta = json.loads((results / "encoded/meta.json").read_text())
    assert meta["counts"]["test_set_overlap_dropped"] == {"ext": 3}
    ext = json.loads((results / "rcnn/test_sets/ext/metrics.json").read_text())
    test_ids = write_residue_test_set(workdir / "check.tsv")
    assert ext["proteins"] == len(test_ids) and ext["split"] == "test"
    table = pd.read_csv(results / "rcnn/test_sets/ext/test_predictions.tsv", sep="\t",
                        keep_default_na=False)
    assert table["id"].unique().tolist() == ["T0", "T1", "T2"]
    counted = table[table["label"] != "-"]
    assert ext["q3"] == pytest.approx((counted["label"] == counted["predicted"]).mean())
    fasta = (results / "rcnn/predictions.fasta").read_text().splitlines()
    assert len(fasta) == 2 * 32
    html = (workdir / "results/report.html").read_text()
    assert "<h4>ss / rcnn</h4>" in html and "<td>ext</td>" in html


def test_report_names_every_model(tiny_run):
    workdir, _, _ = tiny_run
    html = (workdir / "results/report.html").read_text()
    assert "<h3>splice</h3>" in html and "<h3>splice: leaderboard (test split)</h3>" in html
    for model in TINY_MODELS:
        assert f"<h4>splice / {model}</h4>" in html  # evaluation
        assert f"<h3>splice / {model}</h3>" in html  # training
    assert "Missing from this run" not in html


def test_variant_effects_and_ism_in_the_pipeline(tiny_run):
    workdir = tiny_run[0]
    folder = workdir / "results/splice/cnn/variant_effect"
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["records"], summary["scored"]) == (330, 328)
    scores = pd.read_csv(folder / "scores.tsv", sep="\t")
    assert len(scores) == 328 and set(scores["chrom"]) == {"chr20"}
    assert (folder / "annotated.vcf.gz.tbi").is_file() and (folder / "scores.png").is_file()
    ism = workdir / "results/splice/cnn/ism/chr20_1318016-1318075"
    assert np.load(ism / "ism.npy").shape == (60, 4, 3)
    assert (ism / "ism.png").stat().st_size > 0
    assert (workdir / "logs/splice/cnn/variant_effect.log").is_file()
    html = (workdir / "results/report.html").read_text()
    assert "Variant effects: splice / cnn" in html
    assert "In-silico mutagenesis: chr20:1318016-1318075" in html
    assert "330 VCF records, 332 REF/ALT pairs: 328 scored" in html


def test_rerun_has_nothing_to_do(tiny_run):
    workdir, _, _ = tiny_run
    result = snakemake(workdir, "--cores", "1", "--dry-run")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_adding_a_model_trains_it_alone(tiny_run):
    workdir, _, _ = tiny_run
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["models"]["rcnn2"] = {**config["models"]["rcnn"], "train": {"seed": 1}}
    config["datasets"]["ss"]["models"].append("rcnn2")
    more = workdir / "more_models.yaml"
    more.write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--configfile", str(more), "--cores", "1", "--dry-run",
                       "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-2000:]
    planned = dict(re.findall(r"(?m)^(\w+)\s+(\d+)$", result.stdout + result.stderr))
    assert planned["train"] == "1"  # rcnn2: neither the data nor the other models again
    assert "encode" not in planned and "encode_test_set" not in planned


def test_snakemake_report(tiny_run):
    workdir, _, _ = tiny_run
    result = snakemake(workdir, "--report", "results/snakemake_report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    html = (workdir / "results/snakemake_report.html").read_text()
    assert "bioseq workflow" in html


def test_unknown_config_key_stops_before_any_job(tmp_path):
    write_slice(tmp_path / "s.fa")
    config = {"datasets": {"s": {"fasta": "s.fa", "length": {"length": 60, "anchr": "left"}}},
              "models": TINY_MODELS}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "1")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("bioseq: error:")]
    assert lines == ["bioseq: error: dataset 's'.length: unknown key(s) anchr "
                     "(known: anchor, length, max_length, overlap, truncate)"]
    assert not (tmp_path / "results").exists()


def test_demo_pipeline_reaches_target_accuracy(tmp_path):
    """The default config on the shipped demo data, as a new user runs it."""
    for name in ("config.yaml", "resources"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    result = snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    datasets = config["datasets"]
    accuracy = {m: json.loads((tmp_path / f"results/splice/{m}/metrics.json").read_text())
                ["accuracy"] for m in datasets["splice"]["models"]}
    # 300 test sequences (one is 0.33 points): the CNN scored 0.957 where its settings were
    # chosen, 0.947 on an AVX2-only CPU (other kernels, other rounding) and 0.937-0.957 over
    # seeds 0-2 there; 0.94 leaves that spread, and the BiGRU (0.917) or a broken model fails
    assert max(accuracy.values()) >= 0.94, accuracy
    check_demo_secondary_structure(tmp_path / "results" / "secondary_structure",
                                   datasets["secondary_structure"]["models"])
    variants = json.loads((tmp_path / "results/splice/cnn/variant_effect/summary.json")
                          .read_text())
    assert variants["scored"] == 328 and variants["missing_contigs"] == {"21": 1}
    assert (tmp_path / "results/splice/cnn/ism/20_1318016-1318075/ism.png").is_file()
    check_demo_report_in_chromium(tmp_path / "results" / "report.html")


def check_demo_report_in_chromium(report: Path) -> None:
    """The demo's page in real headless Chromium; the screenshot is kept under results/."""
    from test_report import SECTIONS, browser_available, open_in_chromium

    if not browser_available():
        pytest.skip("needs /usr/bin/chromium and playwright")
    shot = REPO / "results" / "report_screenshot.png"
    seen = open_in_chromium(report, search="DONOR-1", screenshot=shot)
    assert seen["errors"] == [] and seen["dialogs"] == [] and seen["outside"] == []
    assert tuple(seen["sections"]) == SECTIONS
    assert seen["count_before"] == "3190 of 3190 rows"
    matching = int(seen["count_after"].split()[0])
    assert 0 < matching < 3190 and all("DONOR-1" in cell for cell in seen["cells"])
    assert shot.stat().st_size > 10_000
    html = report.read_text()
    for heading in ("Variant effects: splice / cnn", "In-silico mutagenesis: 20:1318016",
                    "per-residue tracks", "reliability diagram for cnn"):
        assert heading in html


def check_demo_secondary_structure(results: Path, models: list[str]) -> None:
    """The per-residue part of the demo: leakage dropped, CB513 scored, outputs written."""
    meta = json.loads((results / "encoded" / "meta.json").read_text())
    assert meta["counts"]["test_set_overlap_dropped"] == {"cb513": 2}
    assert meta["counts"]["splits"] == {"train": 240, "val": 40, "test": 40, "dropped": 2}
    q3 = {}
    for model in models:
        new364 = json.loads((results / model / "metrics.json").read_text())
        cb513 = json.loads((results / model / "test_sets/cb513/metrics.json").read_text())
        assert new364["proteins"] == 40 and cb513["proteins"] == 61  # 1 of 62 fully masked
        q3[model] = cb513["q3"]
        predicted = (results / model / "predictions.fasta").read_text().splitlines()
        assert len(predicted) == 2 * 322
        table = pd.read_csv(results / model / "predictions.tsv", sep="\t")
        assert len(table) == sum(len(s) for s in predicted[1::2])
    # always guessing coil, the commonest state, scores 0.42 on this CB513 slice
    assert max(q3.values()) >= 0.60, q3


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    """3-fold cross-validation of a splice slice: a 2-member CNN grid, a BiGRU, the k-mer
    baseline and a top-2 ensemble, each fold's jobs scheduled by Snakemake."""
    workdir = tmp_path_factory.mktemp("cv")
    ids = write_slice(workdir / "splice_slice.fa", every=4)
    cnn = {**TINY_MODELS["cnn"], "grid": {"dropout": [0.0, 0.5]}}
    config = {"datasets": {"s": {"fasta": "splice_slice.fa", "length": {"length": 60},
                                 "cv": {"folds": 3, "ensemble": 2}, "baseline": {"kmer": 3}}},
              "models": {"cnn": cnn, "bigru": TINY_MODELS["bigru"]},
              "training": {"epochs": 2, "batch_size": 32}, "resources": {"threads": 1}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, ids


def test_cross_validation_tests_every_record_once(cv_run):
    workdir, ids = cv_run
    cv = workdir / "results" / "s" / "cv"
    tested = []
    for k in (1, 2, 3):
        frame = pd.read_csv(cv / f"fold{k}" / "cnn.g1" / "test_predictions.tsv", sep="\t")
        tested += frame["id"].tolist()
        for model in ("cnn.g2", "bigru", "ensemble"):  # every model scores the same fold
            other = pd.read_csv(cv / f"fold{k}" / model / "test_predictions.tsv", sep="\t")
            assert other["id"].tolist() == frame["id"].tolist()
    dropped = pd.read_csv(cv / "fold1" / "encoded" / "dropped.tsv", sep="\t")["id"]
    assert sorted(tested) == sorted(set(ids) - set(dropped))
    assert not (workdir / "results" / "s" / "cnn.g1").exists()  # no single-split run


def test_cross_validation_summary_follows_the_fold_files(cv_run):
    workdir, _ = cv_run
    cv = workdir / "results" / "s" / "cv"
    summary = json.loads((cv / "summary.json").read_text())
    assert summary["folds_run"] == 3 and summary["select"] == "accuracy"
    assert set(summary["rows"]) == {"cnn.g1", "cnn.g2", "bigru", "cnn", "best",
                                    "kmer_baseline", "ensemble"}

    def read(k, model, name):
        return json.loads((cv / f"fold{k}" / model / name).read_text())

    chosen_test = []
    for choice in summary["choices"]:
        k = choice["fold"]
        val = {m: read(k, m, "val_metrics.json")["accuracy"] for m in ("cnn.g1", "cnn.g2")}
        assert choice["family_choice"]["cnn"] == max(val, key=val.get)  # ties: first listed
        chosen_test.append(read(k, choice["best"], "metrics.json")["accuracy"])
        assert read(k, "ensemble", "metrics.json")["split"] == "test"
    assert summary["rows"]["best"]["accuracy"]["mean"] == pytest.approx(np.mean(chosen_test))
    table = pd.read_csv(cv / "summary.tsv", sep="\t").set_index("row")
    assert table.loc["best", "accuracy_mean"] == pytest.approx(np.mean(chosen_test), abs=1e-6)
    assert table.loc["kmer_baseline", "folds"] == 3
    assert summary["settings"]["cnn.g2"] == {"dropout": 0.5}
    html = (workdir / "results" / "report.html").read_text()
    assert "s: cross-validation (3 of 3 folds" in html


ACCURACY_CONFIGS = sorted((REPO / "benchmarks" / "accuracy").glob("*.yaml"))
SHARED = REPO.parent / "shared" / "data"


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data beside the checkout")
@pytest.mark.parametrize("config", ACCURACY_CONFIGS, ids=lambda p: p.stem)
def test_accuracy_configs_plan_their_jobs(config):
    """Every benchmark config passes the checks and plans its whole DAG on the real data."""
    result = snakemake(REPO, "--configfile", str(config), "--dry-run", "--cores", "2",
                       "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-3000:]


def test_grouped_promoter_config_trains_what_the_random_one_does():
    """promoters_grouped.yaml copies promoters.yaml's models and training (YAML has no
    include): the two sections of the accuracy suite must compare like with like."""
    import yaml

    folder = REPO / "benchmarks" / "accuracy"
    random_folds = yaml.safe_load((folder / "promoters.yaml").read_text())
    grouped = yaml.safe_load((folder / "promoters_grouped.yaml").read_text())
    for key in ("models", "training", "resources"):
        assert grouped[key] == random_folds[key], key
    for name, entry in grouped["datasets"].items():
        assert entry.pop("split") == {"method": "homology", "kmer": 8, "identity": 0.8}
        assert entry == random_folds["datasets"][name.removesuffix("_grouped")], name
