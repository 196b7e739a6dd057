"""Transformer training steps with and without dropout on the attention weights.

The demo's two Transformers (config.yaml) take training steps on real inputs: the
per-residue one on length-sorted batches of 16 NetSurfP-2.0 chains from the demo slice
(`resources/secondary_structure/`, 20-1,000 residues, padded per batch), the splice one on
batches of 64 UCI splice sequences (60 nt). Each step is forward, a sum of the outputs as
the loss, backward and an AdamW step, in fp32. The baseline is the same model with
`attention_dropout` unset (= `dropout`, 0.1: one random number per pair of positions);
bioseq's demo setting is `attention_dropout: 0`. The two arms alternate batch by batch in
one process, from the same initial weights.

    python benchmarks/bench_attention_dropout.py [--small]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from _common import machine_info, parse_args, print_table

from bioseq.alphabets import get_alphabet
from bioseq.data import BatchLoader, TokenExpander
from bioseq.encoding import EncodingPolicy, LengthPolicy, SequenceEncoder
from bioseq.io import read_fasta
from bioseq.models import build_model

REPO = Path(__file__).resolve().parents[1]
HPARAMS = {"d_model": 64, "heads": 4, "layers": 2, "kernel_size": 9, "dropout": 0.1,
           "feedforward": 128}
TASKS = {  # name -> FASTA, alphabet, batch size, model output, extra hyper-parameters
    "secondary structure (per residue)": (
        REPO / "resources/secondary_structure/netsurfp2_sequences.fasta", "protein", 16,
        "position", {"head_hidden": 64, "head_dropout": 0.1}),
    "splice (per sequence)": (REPO / "resources/splice/splice.fasta", "dna", 64, "sequence",
                              {}),
}


def batches(path: Path, alphabet: str, batch: int, limit: int) -> list:
    """(x, mask) batches of the first `limit` records, sorted by length, padded per batch."""
    records = read_fasta(path)[:limit]
    records.sort(key=lambda r: len(r.sequence))
    encoder = SequenceEncoder(get_alphabet(alphabet), EncodingPolicy(ambiguous="soft"),
                              LengthPolicy(max_length=1000))
    chunk = encoder.encode([r.id for r in records], [r.sequence for r in records])
    loader = BatchLoader(chunk.tokens, chunk.starts, chunk.lengths, np.arange(len(records)),
                         batch_size=batch, trim=True)
    expand = TokenExpander(get_alphabet(alphabet), ambiguous="soft")
    return [expand(b) for b in loader]


def step_seconds(task: tuple, limit: int) -> dict[str, float]:
    """Seconds of all steps of each arm over the task's batches, arms alternating."""
    path, alphabet, batch, output, extra = task
    inputs = batches(path, alphabet, batch, limit)
    arms = {}
    for name, attention in (("attention_dropout = dropout (0.1)", None),
                            ("attention_dropout 0", 0.0)):
        torch.manual_seed(0)
        model = build_model("transformer", in_channels=inputs[0][0].shape[1], n_outputs=3,
                            output=output, attention_dropout=attention, **HPARAMS, **extra)
        arms[name] = (model.train(), torch.optim.AdamW(model.parameters()))
    seconds = dict.fromkeys(arms, 0.0)
    for x, mask in inputs:
        for name, (model, optimizer) in arms.items():
            started = time.perf_counter()
            model(x, mask).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
            seconds[name] += time.perf_counter() - started
    return seconds


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    limit = 48 if args.small else 100_000
    print("bench_attention_dropout: Transformer training steps (forward, backward, AdamW)")
    print(machine_info())
    rows, ratios = [], []
    for task_name, task in TASKS.items():
        seconds = step_seconds(task, limit)
        baseline, tuned = seconds.values()
        for arm, value in seconds.items():
            rows.append([f"{task_name}, {arm}", f"{value:.2f}"])
        ratios.append(baseline / tuned)
        print(f"{task_name}: {baseline / tuned:.2f}x")
    print_table(["task, setting", "seconds (all batches)"], rows)
    print(f"ratio: {ratios[0]:.2f}x (per-residue steps, attention dropout 0.1 / 0); "
          f"splice {ratios[1]:.2f}x")


if __name__ == "__main__":
    main()
