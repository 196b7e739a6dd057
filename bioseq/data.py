"""Batches from a uint8 token matrix: whole-batch gathers into a reused buffer.

Per-sample `__getitem__` and float batches through DataLoader worker processes are the
slow paths on small machines (about 12x slower, benchmarks/bench_data.py);
`np.take(..., out=buffer, mode="wrap")` into a reused buffer beats fancy indexing by ~1.6x.
One-hot expansion happens per batch on the target device (`TokenExpander`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from .alphabets import Alphabet
from .encoding import expansion_table, one_hot, reverse_complement, span_mask

BUCKET_POOL = 50  # batches whose sequences are sorted together when bucketing by length


class Batch(NamedTuple):
    tokens: torch.Tensor  # (B, width) uint8, valid until the next batch is drawn
    starts: torch.Tensor  # (B,) int64
    lengths: torch.Tensor  # (B,) int64
    targets: torch.Tensor | None  # (B,) or (B, k); per-position (B, width)
    index: np.ndarray  # (B,) record numbers in the source arrays


class BatchLoader:
    """Iterates over `indices` of a (n, width) token matrix in batches.

    `trim=True` (for data padded to the longest sequence, `length: null`) cuts each batch to
    its own longest sequence; fixed windows keep their full width. `bucket=True` groups
    sequences of similar length into the same batch (within pools of `BUCKET_POOL`
    batches, batch order still shuffled), so short sequences do not pay for long ones.
    `per_position=True` marks targets as (n, width) per-position rows, cut like the tokens;
    `crop=N` (training per-residue models) cuts sequences longer than N to a random window
    of N positions, the same one for tokens and targets. Crops need left-placed sequences.
    """

    def __init__(self, tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 indices: np.ndarray, *, targets: np.ndarray | None = None,
                 batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                 trim: bool = False, bucket: bool = False, per_position: bool = False,
                 crop: int | None = None, device: torch.device | str = "cpu"):
        self.tokens, self.starts, self.lengths = tokens, starts, lengths
        self.indices, self.targets = np.asarray(indices), targets
        self.batch_size, self.shuffle, self.trim = batch_size, shuffle, trim
        self.bucket, self.per_position, self.crop = bucket, per_position, crop
        if crop is not None and np.any(starts[self.indices] != 0):
            raise ValueError("crop needs left-placed sequences (every start 0)")
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.ends = starts.astype(np.int64) + lengths  # (n,) end of the real span

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def batches(self) -> list[np.ndarray]:
        """The record numbers of each batch of one epoch (advances the shuffling)."""
        order = self.rng.permutation(self.indices) if self.shuffle else self.indices
        size = self.batch_size
        if not self.bucket:
            return [order[i : i + size] for i in range(0, len(order), size)]
        batches = []
        for begin in range(0, len(order), size * BUCKET_POOL):
            pool = order[begin : begin + size * BUCKET_POOL]
            pool = pool[np.argsort(self.ends[pool], kind="stable")]  # by length in the pool
            batches += [pool[i : i + size] for i in range(0, len(pool), size)]
        if self.shuffle:
            batches = [batches[i] for i in self.rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[Batch]:
        buffer = np.empty((min(self.batch_size, max(len(self.indices), 1)),
                           self.tokens.shape[1]), np.uint8)
        for index in self.batches():
            rows = buffer[: len(index)]
            np.take(self.tokens, index, axis=0, out=rows, mode="wrap")
            # padded to the longest in the batch when the store is padded to the longest overall
            width = int(self.ends[index].max()) if self.trim else rows.shape[1]
            starts, lengths = self.starts[index].astype(np.int64), self.lengths[index]
            targets = None if self.targets is None else self.targets[index]
            tokens = rows[:, :width]
            if self.per_position and targets is not None:
                targets = targets[:, :width]
            if self.crop is not None and width > self.crop:
                tokens, targets, lengths = self._crop(tokens, targets, lengths)
            yield Batch(
                torch.from_numpy(np.ascontiguousarray(tokens)).to(self.device),
                torch.from_numpy(starts).to(self.device),
                torch.from_numpy(lengths.astype(np.int64)).to(self.device),
                None if targets is None else torch.from_numpy(targets).to(self.device),
                index,
            )

    def _crop(self, tokens: np.ndarray, targets: np.ndarray | None, lengths: np.ndarray):
        """(B, width) -> (B, crop): a random window of each sequence longer than crop."""
        crop = self.crop
        offsets = self.rng.integers(0, np.maximum(lengths - crop, 0) + 1)  # (B,)
        columns = offsets[:, None] + np.arange(crop)  # (B, crop)
        rows = np.arange(len(tokens))[:, None]
        tokens = tokens[rows, columns]
        if self.per_position and targets is not None:
            targets = targets[rows, columns]
        return tokens, targets, np.minimum(lengths, crop)


class TokenExpander:
    """Turns token batches into model inputs on the batch's device."""

    def __init__(self, alphabet: Alphabet, *, ambiguous: str, device: torch.device | str = "cpu"):
        self.alphabet = alphabet
        self.table = torch.from_numpy(expansion_table(alphabet, ambiguous=ambiguous)).to(device)
        self.complement = (torch.tensor(alphabet.token_complement(), device=device)
                           if alphabet.has_strands else None)

    def __call__(self, batch: Batch, *, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """-> x (B, alphabet, width) float and mask (B, width) bool."""
        tokens = batch.tokens
        if reverse:
            tokens = reverse_complement(tokens, batch.starts, batch.lengths, self.complement)
        mask = span_mask(batch.starts, batch.lengths, tokens.shape[1])
        return one_hot(tokens, self.table), mask

    def random_reverse(self, batch: Batch, generator: torch.Generator) -> Batch:
        """Reverse-complement a random half of the batch (augmentation)."""
        flip = torch.rand(len(batch.tokens), generator=generator) < 0.5
        if not flip.any():
            return batch
        tokens = batch.tokens.clone()
        flip = flip.to(tokens.device)
        tokens[flip] = reverse_complement(tokens[flip], batch.starts[flip], batch.lengths[flip],
                                          self.complement)
        return batch._replace(tokens=tokens)
