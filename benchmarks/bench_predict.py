"""Inference: Predictor.predict on a list of strings vs one predict call per sequence.

A `cnn` (default hyper-parameters, untrained) is saved with save_checkpoint, loaded with
bioseq.load_model(path, device="cpu") and timed on 20,000 random 200-bp sequences in
batches of 256, against a naive loop that predicts one sequence per call (run on a
subset), and through predict_fasta on a FASTA file of the same sequences.

    python benchmarks/bench_predict.py [--small]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import best_of, machine_info, parse_args, print_table, random_sequences

import bioseq
from bioseq.checkpoint import save_checkpoint
from bioseq.encoding import EncodingPolicy, LengthPolicy
from bioseq.models import build_model
from bioseq.predict import Predictor

WIDTH = 200
BATCH = 256
FULL = {"sequences": 20_000, "naive": 500, "repeats": 2}
SMALL = {"sequences": 1_024, "naive": 32, "repeats": 1}


def make_predictor(tmp: Path) -> Predictor:
    """Build, save and reload a binary `cnn` checkpoint the way a user would."""
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=4, n_outputs=1)
    path = tmp / "cnn.pt"
    save_checkpoint(path, model, alphabet="dna", encoding=EncodingPolicy(),
                    length=LengthPolicy(length=WIDTH), task="binary",
                    label_names=("neg", "pos"))
    return bioseq.load_model(path, device="cpu")


def write_plain_fasta(path: Path, seqs: list[str]) -> None:
    """The same sequences as a FASTA file (`>seq1` .. `>seqN`, like predict's default ids)."""
    with open(path, "w") as handle:
        handle.writelines(f">seq{i + 1}\n{s}\n" for i, s in enumerate(seqs))


def predict_one_by_one(predictor: Predictor, seqs: list[str]) -> np.ndarray:
    """The naive loop: one predict call (one encode, one forward) per sequence."""
    return np.array([predictor.predict([s])["prob_pos"].iloc[0] for s in seqs])


def measure(predictor: Predictor, seqs: list[str], fasta: Path, size: dict) -> list[list]:
    """Rows [method, sequences, best s, sequences/s]; checks the three give the same scores."""
    repeats, naive = size["repeats"], seqs[: size["naive"]]
    predictor.predict(seqs[:BATCH], batch_size=BATCH)  # warm-up
    frames: dict[str, object] = {}

    def batched() -> None:
        frames["batched"] = predictor.predict(seqs, batch_size=BATCH)

    def from_fasta() -> None:
        frames["fasta"] = predictor.predict_fasta(fasta, batch_size=BATCH)

    batched_s = best_of(batched, repeats)
    fasta_s = best_of(from_fasta, repeats)
    started = time.perf_counter()
    single = predict_one_by_one(predictor, naive)
    naive_s = time.perf_counter() - started
    scores = frames["batched"]["prob_pos"].to_numpy()
    if not (np.allclose(scores, frames["fasta"]["prob_pos"].to_numpy(), atol=1e-5)
            and np.allclose(scores[: len(naive)], single, atol=1e-5)):
        raise SystemExit("batched, FASTA and one-by-one predictions disagree")
    n = len(seqs)
    return [
        [f"bioseq predict(list, batch_size={BATCH})", n, batched_s, n / batched_s],
        [f"bioseq predict_fasta(batch_size={BATCH})", n, fasta_s, n / fasta_s],
        ["naive: predict([seq]) per sequence", len(naive), naive_s, len(naive) / naive_s],
    ]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    size = SMALL if args.small else FULL
    print(f"bench_predict: cnn (default hparams) on {WIDTH}-bp DNA, CPU")
    print(machine_info())
    seqs = random_sequences(size["sequences"], WIDTH)
    with tempfile.TemporaryDirectory(prefix="bioseq-bench-") as name:
        tmp = Path(name)
        predictor = make_predictor(tmp)
        fasta = tmp / "input.fa"
        write_plain_fasta(fasta, seqs)
        params = sum(p.numel() for p in predictor.model.parameters())
        print(f"model: cnn, {params:,} parameters; {len(seqs):,} sequences "
              f"(naive loop on the first {size['naive']:,})\n")
        rows = measure(predictor, seqs, fasta, size)
    print_table(["method", "sequences", "best s", "sequences/s"], rows)
    print(f"\nratio: {rows[0][3] / rows[2][3]:.1f}x  (batched predict vs one-by-one, "
          "sequences/s)")


if __name__ == "__main__":
    main()
