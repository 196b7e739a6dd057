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
    # sharded (multi-process) training: these rows are rows offset.. of a global batch of
    # global_size rows (0: the batch is the global one), so random draws can be made for the
    # global batch and sliced, the same on every process
    offset: int = 0
    global_size: int = 0


class BatchLoader:
    """Iterates over `indices` of a (n, width) token matrix in batches.

    `trim=True` (for data padded to the longest sequence, `length: null`) cuts each batch to
    its own longest sequence; fixed windows keep their full width. `bucket=True` groups
    sequences of similar length into the same batch (within pools of `BUCKET_POOL`
    batches, batch order still shuffled), so short sequences do not pay for long ones.
    `per_position=True` marks targets as (n, width) per-position rows, cut like the tokens;
    `crop=N` (training per-residue models) cuts sequences longer than N to a random window
    of N positions, the same one for tokens and targets. Crops need left-placed sequences.

    `shard=(rank, world)` (multi-process training) yields this process's contiguous part of
    every global batch; all processes draw the same global batches from the same seed.
    `set_epoch(e)` reseeds the shuffling for epoch e, so an epoch's order depends on
    (seed, epoch) only: what a resumed run needs. On CUDA, batches are copied from pinned
    memory without blocking, or gathered on the GPU when `resident=True` (data set on GPU).
    """

    def __init__(self, tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 indices: np.ndarray, *, targets: np.ndarray | None = None,
                 batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                 trim: bool = False, bucket: bool = False, per_position: bool = False,
                 crop: int | None = None, device: torch.device | str = "cpu",
                 shard: tuple[int, int] = (0, 1), resident: bool = False):
        self.tokens, self.starts, self.lengths = tokens, starts, lengths
        self.indices, self.targets = np.asarray(indices), targets
        self.batch_size, self.shuffle, self.trim = batch_size, shuffle, trim
        self.bucket, self.per_position, self.crop = bucket, per_position, crop
        if crop is not None and np.any(starts[self.indices] != 0):
            raise ValueError("crop needs left-placed sequences (every start 0)")
        self.device = torch.device(device)
        self.seed, self.rng = seed, np.random.default_rng(seed)
        self.rank, self.world = shard
        if not 0 <= self.rank < self.world:
            raise ValueError(f"shard {shard}: rank must be in [0, world)")
        self.ends = starts.astype(np.int64) + lengths  # (n,) end of the real span
        self.resident = None
        if resident:  # (n, width) tokens and their targets gathered on the device
            self.resident = (torch.from_numpy(np.ascontiguousarray(tokens)).to(self.device),
                             None if targets is None else torch.from_numpy(
                                 np.ascontiguousarray(targets)).to(self.device))

    def set_epoch(self, epoch: int) -> None:
        """Shuffle (and crop) epoch `epoch` from (seed, epoch) alone."""
        self.rng = np.random.default_rng((self.seed, epoch))

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

    def _global_batches(self) -> list[np.ndarray]:
        """`batches()`; sharded, a last batch too small to give every process a row joins
        the one before it (an empty part would stall the others)."""
        batches = self.batches()
        if self.world > 1 and len(batches) > 1 and len(batches[-1]) < self.world:
            batches[-2:] = [np.concatenate(batches[-2:])]
        return batches

    def _part(self, index: np.ndarray) -> tuple[int, np.ndarray]:
        """(offset, rows) of this process's contiguous part of the global batch `index`."""
        if self.world == 1:
            return 0, index
        bounds = np.linspace(0, len(index), self.world + 1).astype(np.int64)
        begin, end = bounds[self.rank], bounds[self.rank + 1]
        return int(begin), index[begin:end]

    def __iter__(self) -> Iterator[Batch]:
        buffer = np.empty((min(self.batch_size, max(len(self.indices), 1)),
                           self.tokens.shape[1]), np.uint8)
        for global_index in self._global_batches():
            offset, index = self._part(global_index)
            # crop windows are drawn for the whole global batch: every process's generator
            # stays in step, and its rows get the windows a single process would give them
            offsets = (None if self.crop is None else self.rng.integers(
                0, np.maximum(self.lengths[global_index] - self.crop, 0) + 1)[
                    offset : offset + len(index)])
            # padded to the longest in the batch when the store is padded to the longest overall
            width = int(self.ends[index].max()) if self.trim else self.tokens.shape[1]
            tokens, targets = self._gather(index, buffer, width)
            starts, lengths = self.starts[index].astype(np.int64), self.lengths[index]
            if offsets is not None and width > self.crop:
                tokens, targets, lengths = self._crop(tokens, targets, lengths, offsets)
            yield Batch(self._to_device(tokens), self._to_device(starts),
                        self._to_device(lengths.astype(np.int64)),
                        None if targets is None else self._to_device(targets), index,
                        offset, len(global_index) if self.world > 1 else 0)

    def _gather(self, index: np.ndarray, buffer: np.ndarray, width: int):
        """Tokens (B, width) and targets of the records `index` (numpy, or device tensors)."""
        if self.resident is not None:
            rows = torch.from_numpy(index).to(self.device)
            tokens = self.resident[0].index_select(0, rows)[:, :width]
            targets = None if self.resident[1] is None else self.resident[1].index_select(0, rows)
        else:
            rows = buffer[: len(index)]
            np.take(self.tokens, index, axis=0, out=rows, mode="wrap")
            tokens = rows[:, :width]
            targets = None if self.targets is None else self.targets[index]
        if self.per_position and targets is not None:
            targets = targets[:, :width]
        return tokens, targets

    def _to_device(self, values) -> torch.Tensor:
        if isinstance(values, torch.Tensor):
            return values.to(self.device)
        values = torch.from_numpy(np.ascontiguousarray(values))
        if self.device.type == "cuda":  # pinned pages copy asynchronously with compute
            return values.pin_memory().to(self.device, non_blocking=True)
        return values

    def _crop(self, tokens, targets, lengths: np.ndarray, offsets: np.ndarray):
        """(B, width) -> (B, crop): the window of each sequence starting at `offsets`."""
        columns = offsets[:, None] + np.arange(self.crop)  # (B, crop)
        rows = np.arange(len(tokens))[:, None]
        if isinstance(tokens, torch.Tensor):
            rows, columns = (torch.from_numpy(a).to(tokens.device) for a in (rows, columns))
        tokens = tokens[rows, columns]
        if self.per_position and targets is not None:
            targets = targets[rows, columns]
        return tokens, targets, np.minimum(lengths, self.crop)


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
        """Reverse-complement a random half of the batch (augmentation); the coin flips are
        drawn for the global batch of a sharded loader, then this part's are kept."""
        size = len(batch.tokens)
        draws = torch.rand(batch.global_size or size, generator=generator)
        flip = draws[batch.offset : batch.offset + size] < 0.5
        if not flip.any():
            return batch
        tokens = batch.tokens.clone()
        flip = flip.to(tokens.device)
        tokens[flip] = reverse_complement(tokens[flip], batch.starts[flip], batch.lengths[flip],
                                          self.complement)
        return batch._replace(tokens=tokens)
