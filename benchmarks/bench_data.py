"""Batch loading from the uint8 store: BatchLoader + TokenExpander vs per-sample Datasets.

One shuffled epoch of (batch, 4, width) float32 one-hot batches, three ways:
  (a) bioseq.data.BatchLoader (np.take into a reused buffer) + TokenExpander,
  (b) a torch Dataset whose __getitem__ returns one F.one_hot float tensor per sample,
      through torch.utils.data.DataLoader(num_workers=0),
  (c) fancy indexing `tokens[idx]` per batch + F.one_hot.
Plus the gather alone (token batches, no one-hot) for (a) and (c).

    python benchmarks/bench_data.py [--small]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import OneHotDataset, best_of, machine_info, parse_args, print_table, write_fasta
from torch.utils.data import DataLoader

from bioseq.config import dataset_config
from bioseq.data import BatchLoader, TokenExpander
from bioseq.store import EncodedStore, encode_dataset

WIDTH = 200
BATCH = 256
FULL = {"records": 200_000, "repeats": 3, "naive_repeats": 1}
SMALL = {"records": 20_000, "repeats": 2, "naive_repeats": 1}


def build_store(tmp: Path, n: int) -> EncodedStore:
    """A real store made by encode_dataset from a random FASTA (binary labels)."""
    fasta = tmp / "input.fa"
    write_fasta(fasta, n, WIDTH)
    config = dataset_config("bench", {"fasta": str(fasta), "task": "binary",
                                      "length": {"length": WIDTH}})
    encode_dataset(config, tmp / "store")
    fasta.unlink()
    return EncodedStore(tmp / "store")


def bioseq_loader(store: EncodedStore, *, shuffle: bool = True) -> BatchLoader:
    return BatchLoader(store.tokens, store.starts, store.lengths, np.arange(len(store)),
                       targets=store.labels.astype(np.float32), batch_size=BATCH,
                       shuffle=shuffle, seed=0)


def epoch_bioseq(loader: BatchLoader, expander: TokenExpander | None) -> int:
    """(a): one epoch of BatchLoader batches, expanded to one-hot unless `expander` is None."""
    seen = 0
    for batch in loader:
        if expander is not None:
            x, _ = expander(batch)
            seen += len(x)
        else:
            seen += len(batch.tokens)
    return seen


def epoch_naive(store: EncodedStore) -> int:
    """(b): per-sample Dataset + default collate through a DataLoader."""
    dataset = OneHotDataset(store.tokens, store.labels)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(0))
    return sum(len(x) for x, _ in loader)


def epoch_fancy(store: EncodedStore, *, expand: bool = True) -> int:
    """(c): `tokens[idx]` per batch (fancy indexing the memmap), then F.one_hot."""
    order = np.random.default_rng(0).permutation(len(store))
    labels = store.labels.astype(np.float32)
    seen = 0
    for begin in range(0, len(order), BATCH):
        index = order[begin : begin + BATCH]
        tokens = torch.from_numpy(store.tokens[index])
        _ = torch.from_numpy(labels[index])
        if expand:
            tokens = F.one_hot(tokens.long(), num_classes=4).float().transpose(1, 2).contiguous()
        seen += len(tokens)
    return seen


def check_same_batches(store: EncodedStore, expander: TokenExpander) -> None:
    """All three ways must give the same one-hot tensor for the same records."""
    batch = next(iter(bioseq_loader(store, shuffle=False)))
    x_bioseq, _ = expander(batch)
    index = np.arange(len(batch.index))
    x_fancy = F.one_hot(torch.from_numpy(store.tokens[index]).long(), 4).float().transpose(1, 2)
    dataset = OneHotDataset(store.tokens, store.labels)
    x_naive = torch.stack([dataset[int(i)][0] for i in index])
    if not (torch.equal(x_bioseq, x_fancy) and torch.equal(x_bioseq, x_naive)):
        raise SystemExit("the three loaders disagree on the one-hot batches")


def measure(store: EncodedStore, size: dict) -> list[list]:
    """Rows [method, samples, best s, samples/s] for every way of loading an epoch."""
    n, repeats = len(store), size["repeats"]
    expander = TokenExpander(store.alphabet, ambiguous="soft")
    check_same_batches(store, expander)
    loader = bioseq_loader(store)
    epoch_bioseq(loader, expander)  # warm the page cache and allocator
    cases = [
        ("(a) bioseq BatchLoader + TokenExpander", lambda: epoch_bioseq(loader, expander),
         repeats),
        ("(b) naive Dataset + F.one_hot + DataLoader", lambda: epoch_naive(store),
         size["naive_repeats"]),
        ("(c) fancy indexing tokens[idx] + F.one_hot", lambda: epoch_fancy(store), repeats),
        ("gather only: BatchLoader (np.take, buffer)", lambda: epoch_bioseq(loader, None),
         repeats),
        ("gather only: tokens[idx]", lambda: epoch_fancy(store, expand=False), repeats),
    ]
    rows = []
    for name, fn, reps in cases:
        seconds = best_of(fn, reps)
        rows.append([name, n, seconds, n / seconds])
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    size = SMALL if args.small else FULL
    print(f"bench_data: one shuffled epoch of batch-{BATCH} float one-hot batches")
    print(machine_info())
    with tempfile.TemporaryDirectory(prefix="bioseq-bench-") as name:
        store = build_store(Path(name), size["records"])
        print(f"store: {len(store):,} records x {store.tokens.shape[1]} uint8 tokens "
              "(memory-mapped tokens.npy, written by encode_dataset)\n")
        rows = measure(store, size)
        del store  # release the memmap before the directory goes
    print_table(["method", "samples", "best s", "samples/s"], rows)
    print(f"\nratio: {rows[0][3] / rows[1][3]:.1f}x  ((a) bioseq vs (b) naive, samples/s)")


if __name__ == "__main__":
    main()
