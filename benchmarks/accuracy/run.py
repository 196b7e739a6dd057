"""The accuracy suite: each task's config run through the real pipeline, then ACCURACY.md.

    python benchmarks/accuracy/run.py promoters            # one task
    python benchmarks/accuracy/run.py all --cores 2        # every task, then ACCURACY.md
    python benchmarks/accuracy/run.py all --smoke --workdir /tmp/acc   # one fold, one epoch

Each task is `snakemake --configfile benchmarks/accuracy/<task>.yaml`; the data are read in
place from ../shared/data. Results go to `<workdir>/results/` (default: the repository's),
the table to benchmarks/ACCURACY.md (smoke runs: <workdir>/ACCURACY.md). A smoke run keeps
the data sets and models of each config's `accuracy.smoke` (all by default), one fold, one
epoch and at most two values per grid key, so it only proves the suite runs end to end.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _common import machine_info  # noqa: E402
from tables import task_section  # noqa: E402

TASKS = ("promoters", "promoters_grouped", "splice", "secondary_structure")
PATH_KEYS = ("fasta", "labels_table", "residue_labels", "residue_mask", "residue_table",
             "predict", "bed", "reference")


def _absolute(value, base: Path):
    if isinstance(value, list):
        return [_absolute(v, base) for v in value]
    return str((base / value).resolve()) if isinstance(value, str) else value


def _resolve_paths(entry: dict, base: Path) -> dict:
    """Input paths of a dataset (and of its test sets) made absolute from `base`."""
    entry = dict(entry)
    for key in PATH_KEYS:
        if key in entry:
            entry[key] = _absolute(entry[key], base)
    if "class_fastas" in entry:
        entry["class_fastas"] = {c: _absolute(p, base) for c, p in entry["class_fastas"].items()}
    if "test_sets" in entry:
        entry["test_sets"] = {n: _resolve_paths(t, base) for n, t in entry["test_sets"].items()}
    return entry


def _smoke(config: dict) -> dict:
    """One fold, one epoch, the smoke data sets, at most two values per grid key."""
    smoke = config.get("accuracy", {}).get("smoke", {})
    keep = smoke.get("datasets") or list(config["datasets"])
    config["datasets"] = {n: d for n, d in config["datasets"].items() if n in keep}
    if smoke.get("models"):
        config["models"] = {n: m for n, m in config["models"].items() if n in smoke["models"]}
    for entry in config["datasets"].values():
        entry.update(smoke.get("dataset", {}))
        if entry.get("cv", {}).get("folds"):
            entry["cv"]["run"] = 1
    for model in config["models"].values():
        if "grid" in model:
            model["grid"] = {k: v[:2] for k, v in model["grid"].items()}
        model.setdefault("train", {})["epochs"] = 1
    config.setdefault("training", {})["epochs"] = 1
    return config


def task_config(task: str, *, smoke: bool, models: list[str] | None) -> dict:
    config = yaml.safe_load((HERE / f"{task}.yaml").read_text())
    if smoke:
        config = _smoke(copy.deepcopy(config))
    config["datasets"] = {n: _resolve_paths(d, REPO) for n, d in config["datasets"].items()}
    if models:
        config["models"] = {n: m for n, m in config["models"].items() if n in models}
        for entry in config["datasets"].values():
            entry["models"] = [m for m in entry.get("models", config["models"])
                               if m in config["models"]]
    config["report"] = f"results/accuracy_{task}.html"
    return config


def run_task(task: str, config: dict, *, workdir: Path, cores: int) -> float:
    """Run the pipeline on one task's config; returns the wall time in seconds."""
    config_path = workdir / ".accuracy" / f"{task}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
               "-d", str(workdir), "--configfile", str(config_path), "--cores", str(cores),
               "--rerun-incomplete", "--quiet", "rules"]
    started = time.perf_counter()
    print(f"[{task}] {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def merged_tables(out: Path, sections: dict[str, str], *, command: str) -> str:
    """ACCURACY.md with the sections of this run; other tasks' sections stay as they were
    (each task is a run of its own, often on another day or machine)."""
    kept = split_sections(out.read_text()) if out.is_file() else {}
    titles = {t: yaml.safe_load((HERE / f"{t}.yaml").read_text())["accuracy"]["title"]
              for t in TASKS}
    body = []
    for task in TASKS:
        if task in sections:
            body.append(sections[task])
        elif titles[task] in kept:
            body.append(kept[titles[task]])
    header = ["# Accuracy on real data", "",
              "Generated by `python benchmarks/accuracy/run.py TASK` from the pipeline's own "
              "outputs, one section per task run (last: `run.py " + command + "`); do not "
              "edit by hand.", ""]
    return "\n".join(header + body).rstrip("\n") + "\n"


def split_sections(text: str) -> dict[str, str]:
    """'## title' -> that section's text (up to the next '## ')."""
    parts, title = {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            parts[title] = ""
        if title is not None:
            parts[title] += line
    return {t: body.rstrip("\n") + "\n" for t, body in parts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+", choices=(*TASKS, "all"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="one fold, one epoch")
    parser.add_argument("--workdir", type=Path, default=REPO)
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/ACCURACY.md")
    parser.add_argument("--models", default=None,
                        help="comma-separated config models to keep (e.g. cnn on a CPU)")
    parser.add_argument("--collect-only", action="store_true",
                        help="write the table from results already there")
    args = parser.parse_args()
    tasks = list(TASKS) if "all" in args.tasks else list(dict.fromkeys(args.tasks))
    workdir = args.workdir.resolve()
    out = args.out or (workdir / "ACCURACY.md" if args.smoke else HERE.parent / "ACCURACY.md")
    models = args.models.split(",") if args.models else None
    sections = {}
    for task in tasks:
        config = task_config(task, smoke=args.smoke, models=models)
        timing = workdir / "results" / f"accuracy_{task}.json"  # kept for --collect-only
        if args.collect_only:
            run = json.loads(timing.read_text()) if timing.is_file() else {}
            if run and "machine" not in run:  # a record from before runs kept the machine
                run["machine"] = f"{machine_info()}\n(machine read when this table was written)"
        else:
            run = {"seconds": run_task(task, config, workdir=workdir, cores=args.cores),
                   "cores": args.cores, "finished": time.strftime("%Y-%m-%d %H:%M"),
                   "smoke": args.smoke, "models": models, "machine": machine_info()}
            timing.write_text(json.dumps(run, indent=2) + "\n")
        sections[task] = task_section(task, config, workdir / "results",
                                      seconds=run.get("seconds"), machine=run.get("machine"))
    out.write_text(merged_tables(out, sections, command=" ".join(sys.argv[1:])))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
