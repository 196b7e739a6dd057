"""The HTML report: calibration numbers, partial runs, escaping, and (with the pipeline
tests) the page in real headless Chromium."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from bioseq.report import build_report, evaluation

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SECTIONS = ("data", "training", "evaluation", "predictions", "variants", "provenance")
HOSTILE_IDS = ("<img/src=x/onerror=alert(1)>", "</script><svg/onload=alert(2)>")


def browser_available() -> bool:
    """Chromium and Playwright; CI installs both, so there a missing one is a failure."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        found = False
    else:
        found = CHROMIUM.is_file()
    if not found and os.environ.get("CI"):
        pytest.fail("CI needs /usr/bin/chromium and playwright for the report test")
    return found


def open_in_chromium(report: Path, *, search: str, screenshot: Path | None = None) -> dict:
    """Open the page headless; type `search` into the first predictions filter. Returns
    console errors, page errors, dialogs, requested URLs, section ids and table state."""
    from playwright.sync_api import sync_playwright

    seen: dict = {"errors": [], "dialogs": [], "requests": []}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error"
                else None)
        page.on("pageerror", lambda err: seen["errors"].append(str(err)))
        page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.goto(report.resolve().as_uri())
        seen["sections"] = page.eval_on_selector_all("section[id]", "s => s.map(e => e.id)")
        box = page.locator("div.predictions").first
        seen["count_before"] = box.locator(".count").text_content()
        box.locator("input[type=search]").fill(search)
        page.wait_for_timeout(500)  # the filter waits 120 ms for typing to pause
        seen["count_after"] = box.locator(".count").text_content()
        seen["cells"] = box.locator("tbody td:first-child").all_text_contents()
        seen["injected_images"] = page.locator("img[src=x]").count()
        seen["svg_onload"] = page.locator("svg[onload]").count()
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=False)
        browser.close()
    seen["outside"] = [u for u in seen["requests"]
                       if not u.startswith(("data:", report.resolve().as_uri()))]
    return seen


def test_calibration_of_hand_made_predictions():
    frame = pd.DataFrame({"label": ["a", "a", "b", "b"],
                          "prob_a": [0.95, 0.65, 0.62, 0.10],
                          "prob_b": [0.05, 0.35, 0.38, 0.90]})
    result = evaluation.calibration(frame, bins=10)
    # top-class confidence: 0.65 and 0.62 (one right, one wrong) in [0.6, 0.7); 0.95 and
    # 0.90 (both right) in [0.9, 1.0]
    assert [(round(c, 3), a, n) for c, a, n in result["bins"]] == [
        (0.635, 0.5, 2), (0.925, 1.0, 2)]
    assert result["ece"] == pytest.approx(2 / 4 * 0.135 + 2 / 4 * 0.075)


def test_report_of_a_partial_run_lists_what_is_missing(tmp_path):
    model = tmp_path / "results" / "toy" / "cnn"
    model.mkdir(parents=True)
    (model / "train.json").write_text(json.dumps({"architecture": "cnn", "best_epoch": 1,
                                                  "monitor": "val_loss", "seconds": 1.0,
                                                  "device": "cpu", "parameters": 10}))
    build_report(tmp_path / "results", tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "Missing from this run" in html
    assert "toy/cnn: evaluation (metrics.json)" in html
    assert "toy: encoded data (encoded/meta.json)" in html
    for section in SECTIONS:
        assert f'<section id="{section}">' in html


def test_text_from_inputs_is_escaped(tmp_path):
    model = tmp_path / "results" / "toy" / "cnn"
    model.mkdir(parents=True)
    (model / "metrics.json").write_text(json.dumps({"task": "binary", "accuracy": 0.5}))
    rows = [{"id": name, "predicted": "<b>yes</b>", "prob_no": 0.4, "prob_<b>yes</b>": 0.6}
            for name in HOSTILE_IDS]
    pd.DataFrame(rows).to_csv(model / "predictions.tsv", sep="\t", index=False)
    build_report(tmp_path / "results", tmp_path / "report.html",
                 config={"note": "</pre><script>alert(3)</script>"})
    html = (tmp_path / "report.html").read_text()
    for raw in (*HOSTILE_IDS, "<b>yes</b>", "<script>alert(3)"):
        assert raw not in html
    assert "\\u003cimg/src=x/onerror=alert(1)\\u003e" in html  # in the JSON, inert
    assert "&lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in html


@pytest.mark.slow
def test_page_in_headless_chromium(tmp_path):
    """A small report with hostile IDs, opened in Chromium (the demo's is opened by
    tests/test_workflow.py)."""
    if not browser_available():
        pytest.skip("needs /usr/bin/chromium and playwright")
    model = tmp_path / "results" / "toy" / "cnn"
    model.mkdir(parents=True)
    (model / "metrics.json").write_text(json.dumps({"task": "binary", "accuracy": 0.5}))
    names = [*HOSTILE_IDS, *(f"seq{i}" for i in range(200))]
    pd.DataFrame({"id": names, "predicted": "yes", "prob_no": 0.25, "prob_yes": 0.75}).to_csv(
        model / "predictions.tsv", sep="\t", index=False)
    build_report(tmp_path / "results", tmp_path / "report.html")
    seen = open_in_chromium(tmp_path / "report.html", search="onerror")
    assert seen["errors"] == [] and seen["dialogs"] == [] and seen["outside"] == []
    assert tuple(seen["sections"]) == SECTIONS
    assert seen["count_before"] == "202 of 202 rows"
    assert seen["count_after"] == "1 of 202 rows"
    assert seen["cells"] == [HOSTILE_IDS[0]]  # shown as text
    assert seen["injected_images"] == 0 and seen["svg_onload"] == 0


def test_baseline_row_and_cross_validation_table(tmp_path, splice_store):
    """A real k-mer baseline joins the leaderboard (never as the best model), and a
    cross-validation summary becomes a table of mean ± s.d. with each fold's choices."""
    from bioseq.baselines import fit_baseline, write_baseline
    from bioseq.crossval import summarize_folds
    from bioseq.store import EncodedStore

    results = tmp_path / "results"
    result = fit_baseline(EncodedStore(splice_store), kmax=3, C=(1.0,))
    write_baseline(result, results / "toy" / "baselines" / "kmer",
                   settings={"kmer": 3, "window": 7, "max_records": 1000})
    model = results / "toy" / "cnn"
    model.mkdir(parents=True)
    (model / "metrics.json").write_text(json.dumps({"task": "multiclass", "accuracy": 0.5}))
    scores = {1: (("cnn.g1", 0.9, 0.81), ("cnn.g2", 0.7, 0.93)),  # (model, val, test)
              2: (("cnn.g1", 0.9, 0.79), ("cnn.g2", 0.7, 0.95))}
    folds = [{"fold": k, "models": {m: {"val": {"accuracy": v}, "test": {"accuracy": t}}
                                    for m, v, t in scores[k]},
              "baseline": {"accuracy": 0.6}, "ensemble": None} for k in (1, 2)]
    summary = summarize_folds(folds, select="accuracy",
                              family={"cnn.g1": "cnn", "cnn.g2": "cnn"})
    summary.update(folds_total=5, settings={"cnn.g1": {"dropout": 0.1},
                                            "cnn.g2": {"dropout": 0.4}})
    (results / "cvset" / "cv").mkdir(parents=True)
    (results / "cvset" / "cv" / "summary.json").write_text(json.dumps(summary))
    build_report(results, tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    accuracy = f"{result.metrics['accuracy']:.4f}"
    assert "<td>kmer_baseline</td><td>logistic regression, k-mers k &lt;= 3</td>" in html
    assert accuracy in html
    assert '<tr class="best"><td>cnn</td>' in html  # the model, not the baseline
    assert "cvset: cross-validation (2 of 5 folds" in html
    # best: cnn.g1, chosen on val both times, though cnn.g2 is better on test
    best_row = html[html.index('<tr class="best"><td>best</td>'):]
    best_row = best_row[: best_row.index("</tr>")]
    assert "0.8000 ± 0.0141" in best_row and "0.9400" not in best_row
    assert "cnn → cnn.g1 (dropout=0.1)" in html
