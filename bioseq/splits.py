"""Duplicate removal and train/val/test assignment.

Identical encoded sequences are duplicates. Among copies with the same label one is kept
(the one in the most held-out split when splits are given, so test sequences never leak
into training); copies whose labels disagree are all dropped and reported.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import BioseqError
from .labels import NO_SPLIT, SPLITS

DROPPED = NO_SPLIT  # one sentinel for "in no split"
_PRIME = np.uint64(0x100000001B3)


class Deduplication(NamedTuple):
    keep: np.ndarray  # (n,) bool
    dropped: list[tuple[int, str, int]]  # (record, reason, other record)
    duplicates: int  # copies dropped whose labels agreed
    conflicts: int  # records dropped because copies disagree on the label


def row_hashes(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """64-bit hash per row of a (n, width) uint8 token matrix (FNV-style over 8-byte words)."""
    n, width = tokens.shape
    padded = np.zeros((n, -(-width // 8) * 8), np.uint8)
    padded[:, :width] = tokens
    words = padded.view(np.uint64)  # (n, width / 8)
    h = np.full(n, 0xCBF29CE484222325, np.uint64)
    with np.errstate(over="ignore"):
        for column in words.T:
            h = (h ^ column) * _PRIME
        h = (h ^ starts.astype(np.uint64)) * _PRIME
        h = (h ^ lengths.astype(np.uint64)) * _PRIME
    return h


def hash_groups(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order, and start and size of each run of equal values in sorted order."""
    order = np.argsort(hashes)
    ordered = hashes[order]
    first = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return order, first, np.diff(np.append(first, len(hashes)))


def _equal_groups(members: np.ndarray, rows) -> list[np.ndarray]:
    """Split records that share a hash into groups of truly identical rows."""
    groups: list[list[int]] = []
    for i in members:
        for group in groups:
            if np.array_equal(rows(group[0]), rows(i)):
                group.append(i)
                break
        else:
            groups.append([i])
    return [np.array(g) for g in groups if len(g) > 1]


def find_duplicates(hashes: np.ndarray, rows, labels: np.ndarray,
                    split: np.ndarray | None) -> Deduplication:
    """`rows(i)` returns record i's exact content (tokens, start, length) for verification."""
    keep = np.ones(len(hashes), bool)
    dropped: list[tuple[int, str, int]] = []
    duplicates = conflicts = 0
    order, first, counts = hash_groups(hashes)
    for start, count in zip(first[counts > 1], counts[counts > 1], strict=True):
        for group in _equal_groups(np.sort(order[start : start + count]), rows):
            group_labels = labels[group]
            if all(np.array_equal(group_labels[0], g) for g in group_labels[1:]):
                # keep the copy in the most held-out split (test > val > train)
                rank = split[group] if split is not None else np.zeros(len(group))
                winner = group[int(np.argmax(rank))]
                for i in group[group != winner]:
                    keep[i] = False
                    dropped.append((int(i), "duplicate", int(winner)))
                duplicates += len(group) - 1
            else:
                keep[group] = False
                for i in group:
                    other = group[0] if i != group[0] else group[1]
                    dropped.append((int(i), "conflicting_labels", int(other)))
                conflicts += len(group)
    return Deduplication(keep, sorted(dropped), duplicates, conflicts)


def assign_splits(labels: np.ndarray, keep: np.ndarray, *, given: np.ndarray | None,
                  val_fraction: float, test_fraction: float, seed: int,
                  stratify: bool) -> np.ndarray:
    """(n,) int8: 0 train, 1 val, 2 test, -1 dropped. Given splits win over fractions."""
    if given is not None:
        split = given.astype(np.int8).copy()
        split[~keep] = DROPPED
        return split
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise BioseqError("split fractions must be in [0, 1) and sum to less than 1")
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), DROPPED, np.int8)
    strata = labels if stratify else np.zeros(len(labels), np.int64)
    for stratum in np.unique(strata[keep]):
        members = rng.permutation(np.flatnonzero(keep & (strata == stratum)))
        n_test = int(round(len(members) * test_fraction))
        n_val = int(round(len(members) * val_fraction))
        split[members[:n_test]] = 2
        split[members[n_test : n_test + n_val]] = 1
        split[members[n_test + n_val :]] = 0
    return split


def check_class_counts(labels: np.ndarray, keep: np.ndarray, names: tuple[str, ...],
                       *, where: str) -> None:
    counts = np.bincount(labels[keep], minlength=len(names))
    for name, count in zip(names, counts, strict=True):
        if count < 2:
            raise BioseqError(f"{where}: class '{name}' has {count} example(s) after "
                              "removing duplicates; every class needs at least 2")


def split_counts(split: np.ndarray) -> dict[str, int]:
    counts = {name: int((split == code).sum()) for code, name in enumerate(SPLITS)}
    counts["dropped"] = int((split == DROPPED).sum())
    return counts

