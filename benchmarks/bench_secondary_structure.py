"""Protein secondary structure: CB513 and NEW364 Q3 (Q8 when 8-state labels are given) for
every architecture, the training time, and per-residue inference throughput.

Models and training settings are those of the pipeline config
`benchmarks/accuracy/secondary_structure.yaml`; the data are read in place from
`../shared/data/secondary_structure` through the same functions the pipeline rules call
(encode_dataset, encode_test_set, train_from_store, evaluate). Training chains whose
sequence is in CB513 are dropped (2). Inference throughput: the windowed, length-bucketed
batch predictor (what `bioseq predict` runs) against one protein per call (the baseline),
both on the CB513 chains with the first trained model.

    python benchmarks/bench_secondary_structure.py [--small] [--architectures cnn ...]
        [--epochs N] [--work DIR]

`--small` trains the cnn and bigru for 1 epoch on the 32-chain fixture in tests/data
(a smoke test).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from _common import machine_info, print_table

from bioseq.checkpoint import load_model
from bioseq.config import dataset_config, model_config
from bioseq.evaluate import evaluate
from bioseq.predict import predict_residue_scores
from bioseq.store import EncodedStore, encode_dataset, encode_test_set
from bioseq.training import train_from_store

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "benchmarks" / "accuracy" / "secondary_structure.yaml"
BASELINE_PROTEINS = {"full": 200, "small": 20}  # proteins timed one per call


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fixture data, 1 epoch")
    parser.add_argument("--architectures", nargs="+", default=None,
                        help="model names of the config to run (default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="override the config")
    parser.add_argument("--work", default=None, help="folder for stores and models")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--throughput-of", default=None, metavar="MODEL_PT",
                        help="skip training: time inference of this per-residue checkpoint")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def dataset_entry(config: dict, small: bool) -> tuple[str, dict]:
    name, entry = next(iter(config["datasets"].items()))
    entry = copy.deepcopy(entry)
    if small:
        fixture = REPO / "tests" / "data"
        entry.update(fasta=str(fixture / "netsurfp2_slice_sequences.fasta"),
                     residue_labels=str(fixture / "netsurfp2_slice_labels.fasta"),
                     residue_mask=str(fixture / "netsurfp2_slice_mask.fasta"))
        entry["test_sets"]["cb513"]["residue_table"] = str(
            REPO / "resources" / "secondary_structure" / "cb513.tsv")
    else:  # the config's paths are relative to the repository root
        for key in ("fasta", "residue_labels", "residue_mask"):
            entry[key] = str(REPO / entry[key])
        for test in entry["test_sets"].values():
            test["residue_table"] = str(REPO / test["residue_table"])
    return name, entry


def throughput(model_path: Path, store: EncodedStore, baseline_proteins: int) -> dict:
    """Residues per second: batched windows vs one protein per call."""
    predictor = load_model(model_path, device="cpu")
    rows = np.arange(len(store))
    args = (predictor.model, store.tokens, store.starts, store.lengths)
    options = dict(window=predictor.window, overlap=predictor.overlap)
    started = time.perf_counter()
    predict_residue_scores(*args, rows, predictor.expander, batch_size=64, **options)
    batched = store.lengths.sum() / (time.perf_counter() - started)
    subset = rows[:baseline_proteins]
    started = time.perf_counter()
    for row in subset:
        predict_residue_scores(*args, np.array([row]), predictor.expander, batch_size=1,
                               **options)
    single = store.lengths[subset].sum() / (time.perf_counter() - started)
    return {"batched": float(batched), "single": float(single)}


def run_model(name: str, config: dict, stores: dict, work: Path, epochs: int | None) -> dict:
    model = model_config(name, config["models"][name], config.get("training"))
    train = {**vars(model.train), **({"epochs": epochs} if epochs else {})}
    result = train_from_store(stores["train"], architecture=model.architecture,
                              params=dict(model.params), train=train, out_dir=work / name,
                              progress=False)
    row = {"model": name, "architecture": model.architecture,
           "epochs": len(result.history), "best_epoch": result.best_epoch,
           "seconds": result.seconds, "s_per_epoch": result.seconds / len(result.history),
           "device": result.device}
    for split, store in (("new364", stores["train"]), ("cb513", stores["cb513"])):
        metrics = evaluate(work / name / "model.pt", store, split="test").metrics
        row[f"{split}_q3"] = metrics.get("q3")
        row[f"{split}_q8"] = metrics.get("q8")
        row[f"{split}_residues"] = metrics["residues"]
    return row


def main() -> None:
    args = parse_args()
    config = yaml.safe_load(CONFIG.read_text())
    name, entry = dataset_entry(config, args.small)
    dataset = dataset_config(name, entry)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_ss_"))
    started = time.perf_counter()
    meta = encode_dataset(dataset, work / "store")
    encode_test_set(dataset, "cb513", work / "cb513", store_dir=work / "store")
    print(machine_info())
    print(f"data: {meta['counts']['splits']}; dropped for being in CB513: "
          f"{meta['counts']['test_set_overlap_dropped']}; encoded in "
          f"{time.perf_counter() - started:.1f} s")
    stores = {"train": work / "store", "cb513": work / "cb513"}
    if args.throughput_of:
        print_throughput(Path(args.throughput_of), EncodedStore(stores["cb513"]), args.small)
        return
    names = args.architectures or (["cnn", "bigru"] if args.small else list(config["models"]))
    epochs = 1 if args.small else args.epochs
    rows = []
    for model_name in names:
        rows.append(run_model(model_name, config, stores, work, epochs))
        print(json.dumps(rows[-1]), flush=True)
    print_table(["model", "arch", "epochs", "best", "train s", "s/epoch", "CB513 Q3", "CB513 Q8",
                 "NEW364 Q3"],
                [[r["model"], r["architecture"], r["epochs"], r["best_epoch"],
                  round(r["seconds"]), round(r["s_per_epoch"], 1), r["cb513_q3"],
                  r["cb513_q8"] if r["cb513_q8"] is not None else "n/a (3-state labels)",
                  r["new364_q3"]] for r in rows])
    print_throughput(work / names[0] / "model.pt", EncodedStore(stores["cb513"]), args.small)


def print_throughput(model_path: Path, store: EncodedStore, small: bool) -> None:
    speed = throughput(model_path, store, BASELINE_PROTEINS["small" if small else "full"])
    print(f"inference ({model_path}, CPU, {len(store)} CB513 chains, "
          f"{int(store.lengths.sum()):,} residues): {speed['batched']:,.0f} residues/s batched "
          f"vs {speed['single']:,.0f} residues/s one protein per call")
    print(f"ratio: {speed['batched'] / speed['single']:.2f}x")


if __name__ == "__main__":
    main()
