"""Training throughput per architecture: bioseq's batch path vs a per-sample Dataset.

For every architecture in bioseq.models.REGISTRY (default hyper-parameters, binary
output), one epoch of AdamW steps on random 200-bp DNA, two ways from the same initial
weights: (bioseq) BatchLoader + TokenExpander feeding the model, as bioseq.training.fit
does; (naive) a per-sample Dataset returning F.one_hot float32 tensors through
torch.utils.data.DataLoader(num_workers=0). Both clip gradients at 1.0 like fit().

    python benchmarks/bench_train.py [--small] [--threads N]
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from _common import OneHotDataset, machine_info, parse_args, print_table, random_tokens
from torch.utils.data import DataLoader

from bioseq.alphabets import get_alphabet
from bioseq.data import BatchLoader, TokenExpander
from bioseq.models import REGISTRY, SequenceModel, build_model

WIDTH = 200
FULL = {"samples": 2048, "batch": 64, "warmup": 2}
SMALL = {"samples": 32, "batch": 16, "warmup": 1}
Inputs = Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # x, mask, y


def step(model: SequenceModel, optimizer: torch.optim.Optimizer, x: torch.Tensor,
         mask: torch.Tensor, y: torch.Tensor) -> None:
    """One training step as in bioseq.training.fit (binary loss, clipping at 1.0)."""
    loss = F.binary_cross_entropy_with_logits(model(x, mask)[:, 0], y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def bioseq_inputs(tokens: np.ndarray, labels: np.ndarray, batch: int) -> Inputs:
    """Batches the bioseq way: BatchLoader gathers, TokenExpander expands per batch."""
    n = len(tokens)
    loader = BatchLoader(tokens, np.zeros(n, np.int32), np.full(n, WIDTH, np.int32),
                         np.arange(n), targets=labels, batch_size=batch, shuffle=True, seed=0)
    expander = TokenExpander(get_alphabet("dna"), ambiguous="soft")
    for b in loader:
        x, mask = expander(b)
        yield x, mask, b.targets


def naive_inputs(tokens: np.ndarray, labels: np.ndarray, batch: int) -> Inputs:
    """Batches the naive way: per-sample one-hot tensors collated by a DataLoader."""
    loader = DataLoader(OneHotDataset(tokens, labels), batch_size=batch, shuffle=True,
                        num_workers=0, generator=torch.Generator().manual_seed(0))
    for x, y in loader:
        yield x, torch.ones(len(x), WIDTH, dtype=torch.bool), y  # every window is full


def run_epoch(model: SequenceModel, state: dict, inputs: Inputs, limit: int | None = None
              ) -> tuple[float, float]:
    """Reset the weights to `state`, train over `inputs` (at most `limit` batches).

    Returns (total seconds, seconds spent producing batches).
    """
    model.load_state_dict(state)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    batches, data_s, done = iter(inputs), 0.0, 0
    started = time.perf_counter()
    while limit is None or done < limit:
        fetch = time.perf_counter()
        x, mask, y = next(batches, (None, None, None))
        data_s += time.perf_counter() - fetch
        if x is None:
            break
        step(model, optimizer, x, mask, y)
        done += 1
    return time.perf_counter() - started, data_s


def measure(arch: str, tokens: np.ndarray, labels: np.ndarray, size: dict) -> list:
    """Row [architecture, params, bioseq s (data s), naive s (data s), samples/s x2, ratio]."""
    torch.manual_seed(0)
    model = build_model(arch, in_channels=4, n_outputs=1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batch, n = size["batch"], len(tokens)
    run_epoch(model, state, bioseq_inputs(tokens, labels, batch), size["warmup"])
    bioseq_s, bioseq_data = run_epoch(model, state, bioseq_inputs(tokens, labels, batch))
    naive_s, naive_data = run_epoch(model, state, naive_inputs(tokens, labels, batch))
    params = sum(p.numel() for p in model.parameters())
    return [arch, params, bioseq_s, bioseq_data, naive_s, naive_data, n / bioseq_s,
            n / naive_s, naive_s / bioseq_s]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    size = SMALL if args.small else FULL
    print(f"bench_train: one epoch per architecture, {size['samples']:,} x {WIDTH}-bp DNA, "
          f"batch {size['batch']}, CPU")
    print(machine_info())
    tokens, labels = random_tokens(size["samples"], WIDTH)
    labels = labels.astype(np.float32)
    rows = []
    for arch in sorted(REGISTRY):
        rows.append(measure(arch, tokens, labels, size))
        print(f"  {arch}: done", flush=True)
    print()
    print_table(["architecture", "params", "bioseq s", "(data s)", "naive s", "(data s)",
                 "bioseq samples/s", "naive samples/s", "ratio"], rows)
    print("(data s = time spent producing batches, included in the epoch time)")
    geo = math.exp(sum(math.log(row[-1]) for row in rows) / len(rows))
    print(f"\nratio: {geo:.2f}x  (bioseq vs naive samples/s, geometric mean over "
          f"{len(rows)} architectures)")


if __name__ == "__main__":
    main()
