"""Bidirectional GRU/LSTM on variable-length batches: bioseq's CPU path vs packed sequences.

Per-residue models (secondary structure) run their recurrent layers on length-bucketed
batches whose rows have different lengths. The textbook way keeps padding out of the
recurrence with pack_padded_sequence; on a CPU that is several times slower than running
the padded batch. bioseq's RecurrentBackbone runs the forward direction on the padded
batch and the backward one on each row reversed within its length, which gives the packed
result exactly (the max difference is printed). Both are timed here in the same process,
alternating, on the protein lengths of the demo slice (resources/secondary_structure,
322 NetSurfP-2.0 chains) in sorted batches of 32, with 128 input features per residue (what
the dilated CNN of the cnn_bilstm hybrid hands over), forward + backward as in training.

    python benchmarks/bench_recurrent.py [--small] [--threads N]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from _common import machine_info, parse_args, print_table
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bioseq.io import read_fasta
from bioseq.models.recurrent import RecurrentBackbone

FASTA = (Path(__file__).resolve().parents[1] / "resources" / "secondary_structure"
         / "netsurfp2_sequences.fasta")
FEATURES, BATCH = 128, 32
SETTINGS = [("gru", 64, 1), ("gru", 128, 1), ("gru", 128, 2), ("lstm", 128, 2)]


def length_batches(max_batches: int) -> list[np.ndarray]:
    """The demo proteins' lengths, sorted and cut into batches of BATCH."""
    lengths = np.sort([len(record.sequence) for record in read_fasta(FASTA)])
    batches = [lengths[i:i + BATCH] for i in range(0, len(lengths), BATCH)]
    return batches[:max_batches]


def make_inputs(lengths: np.ndarray, generator: torch.Generator):
    """Random (B, C, L) features and a (B, L) mask, each row real up to its length."""
    width = int(lengths.max())
    x = torch.randn(len(lengths), FEATURES, width, generator=generator)
    mask = torch.arange(width)[None, :] < torch.as_tensor(lengths)[:, None]
    return x * mask[:, None, :], mask


def packed_forward(backbone: RecurrentBackbone, x: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
    """The baseline: the same module over packed sequences, (B, 2H, L)."""
    lengths = mask.sum(1)
    packed = pack_padded_sequence(x.transpose(1, 2), lengths, batch_first=True,
                                  enforce_sorted=False)
    out, _ = backbone.rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[2])
    return out.transpose(1, 2) * mask[:, None, :]


def bioseq_forward(backbone: RecurrentBackbone, x: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
    return backbone(x, mask)[0]


def time_epoch(forward, backbone, inputs) -> float:
    """Seconds for forward + backward over every batch."""
    started = time.perf_counter()
    for x, mask in inputs:
        forward(backbone, x.requires_grad_(), mask).square().mean().backward()
    return time.perf_counter() - started


def measure(cell: str, hidden: int, layers: int, inputs, repeats: int) -> list:
    torch.manual_seed(0)
    backbone = RecurrentBackbone(FEATURES, cell=cell, hidden=hidden, layers=layers,
                                 dropout=0.0)
    with torch.no_grad():
        diff = max((bioseq_forward(backbone, x, m) - packed_forward(backbone, x, m))
                   .abs().max().item() for x, m in inputs)
    arms = {"packed": packed_forward, "bioseq": bioseq_forward}
    time_epoch(bioseq_forward, backbone, inputs[:1])  # warm-up, untimed
    best = dict.fromkeys(arms, float("inf"))
    for repeat in range(repeats):  # alternating, either first, so drifting load hits both
        for name in (arms if repeat % 2 == 0 else reversed(arms)):
            best[name] = min(best[name], time_epoch(arms[name], backbone, inputs))
    residues = sum(int(m.sum()) for _, m in inputs)
    return [f"{cell} {hidden} x {layers} layer{'s' if layers > 1 else ''}",
            residues / best["packed"], residues / best["bioseq"],
            f"{best['packed'] / best['bioseq']:.2f}x", f"{diff:.1e}"]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    generator = torch.Generator().manual_seed(0)
    batches = length_batches(2 if args.small else 1000)
    inputs = [make_inputs(lengths, generator) for lengths in batches]
    settings = [("gru", 16, 1), ("lstm", 16, 2)] if args.small else SETTINGS
    print("bench_recurrent: bidirectional RNN forward + backward on variable-length batches")
    print(machine_info())
    sizes = np.concatenate(batches)
    print(f"input: {len(sizes)} demo proteins ({sizes.min()}-{sizes.max()} residues), "
          f"{len(batches)} sorted batches of {BATCH}, {FEATURES} features per residue")
    rows = [measure(*setting, inputs, repeats=1 if args.small else 3) for setting in settings]
    print_table(["recurrent layer", "packed residues/s", "bioseq residues/s", "ratio",
                 "max |diff|"], rows)
    print(f"ratio: {rows[-1][3]} (bioseq / packed sequences, residues/s, {rows[-1][0]})")


if __name__ == "__main__":
    main()
