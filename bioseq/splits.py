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
                    split: np.ndarray | None, *, drop_conflicts: bool = True) -> Deduplication:
    """`rows(i)` returns record i's exact content (tokens, start, length) for verification.

    `drop_conflicts=False` (per-residue labels, where two structures of one sequence may
    differ a little) keeps the most held-out copy even when the labels disagree."""
    keep = np.ones(len(hashes), bool)
    dropped: list[tuple[int, str, int]] = []
    duplicates = conflicts = 0
    order, first, counts = hash_groups(hashes)
    for start, count in zip(first[counts > 1], counts[counts > 1], strict=True):
        for group in _equal_groups(np.sort(order[start : start + count]), rows):
            group_labels = labels[group]
            agree = all(np.array_equal(group_labels[0], g) for g in group_labels[1:])
            if agree or not drop_conflicts:
                # keep the copy in the most held-out split (test > val > train)
                rank = split[group] if split is not None else np.zeros(len(group))
                winner = group[int(np.argmax(rank))]
                for i in group[group != winner]:
                    keep[i] = False
                    dropped.append((int(i), "duplicate" if agree else "duplicate_other_labels",
                                    int(winner)))
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
                  stratify: bool, groups: np.ndarray | None = None) -> np.ndarray:
    """(n,) int8: 0 train, 1 val, 2 test, -1 dropped. Given splits win over fractions;
    with `groups` (n,) every group lands whole in one split."""
    if given is not None:
        split = given.astype(np.int8).copy()
        split[~keep] = DROPPED
        return split
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise BioseqError("split fractions must be in [0, 1) and sum to less than 1")
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), DROPPED, np.int8)
    if groups is not None:
        return _assign_groups(split, keep, groups, rng, val_fraction, test_fraction)
    strata = labels if stratify else np.zeros(len(labels), np.int64)
    for stratum in np.unique(strata[keep]):
        members = rng.permutation(np.flatnonzero(keep & (strata == stratum)))
        n_test = int(round(len(members) * test_fraction))
        n_val = int(round(len(members) * val_fraction))
        split[members[:n_test]] = 2
        split[members[n_test : n_test + n_val]] = 1
        split[members[n_test + n_val :]] = 0
    return split


def _assign_groups(split: np.ndarray, keep: np.ndarray, groups: np.ndarray, rng,
                   val_fraction: float, test_fraction: float) -> np.ndarray:
    """Whole groups, in random order, go to test while they fit its share, then to val
    likewise, else to train; a group bigger than a share always trains."""
    names, sizes = np.unique(groups[keep], return_counts=True)
    total = int(sizes.sum())
    room = {2: round(total * test_fraction), 1: round(total * val_fraction)}
    by_group = np.zeros(len(names), np.int8)
    for g in rng.permutation(len(names)):
        for code in (2, 1):
            if sizes[g] <= room[code]:
                by_group[g], room[code] = code, room[code] - sizes[g]
                break
    split[keep] = by_group[np.searchsorted(names, groups[keep])]
    return split


HOMOLOGY_MIN_SHARED = 3  # k-mers two sequences must share to be linked at all
HOMOLOGY_COMMON = 0.002  # k-mers in more than this share of sequences (at least 5) ...
HOMOLOGY_NEAR_COPY = 0.8  # ... still link sequences this identical (large close families)


def homology_groups(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                    keep: np.ndarray, *, kmer: int, identity: float) -> np.ndarray:
    """(n,) int64 cluster number of each kept record (-1 for the others), linking two
    sequences whose alignment-free identity estimate reaches `identity`.

    The estimate is the share of the shorter sequence's distinct k-mers found in the other,
    to the power 1/k (a k-mer survives with probability identity**k under random
    substitutions); a link needs 3 shared k-mers. K-mers found in many sequences (more than
    0.2% and more than 5: expression tags, protease sites, low-complexity repeats) would
    link unrelated proteins, so they count only towards close copies (estimate >= 0.8),
    which still links large families of close homologs. Clusters are connected components:
    single linkage, so homologs of homologs stay together too.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    rows = np.flatnonzero(keep)
    spans = [tokens[i, starts[i] : starts[i] + lengths[i]] for i in rows]
    record_of, codes = _kmer_codes(spans, kmer)
    pairs = np.unique(np.stack([record_of, codes]), axis=1)  # distinct (record, k-mer)
    _, columns, spread = np.unique(pairs[1], return_inverse=True, return_counts=True)
    common = (spread > max(5, HOMOLOGY_COMMON * len(rows)))[columns]  # (pairs,)
    distinct = np.bincount(pairs[0], minlength=len(rows))  # (records,) distinct k-mers
    edges = [_kmer_links(pairs[0][~common], columns[~common], distinct, identity ** kmer)]
    if common.any():
        edges.append(_kmer_links(pairs[0], columns, distinct, HOMOLOGY_NEAR_COPY ** kmer,
                                 among=np.unique(pairs[0][common])))
    first, second = (np.concatenate(e) for e in zip(*edges, strict=True))
    graph = sparse.coo_matrix((np.ones(len(first)), (first, second)),
                              shape=(len(rows), len(rows)))
    _, component = connected_components(graph, directed=False)
    groups = np.full(len(tokens), -1, np.int64)
    groups[rows] = component
    return groups


def _kmer_links(records: np.ndarray, kmers: np.ndarray, distinct: np.ndarray,
                threshold: float, among: np.ndarray | None = None):
    """Record pairs sharing at least `threshold` of the shorter one's distinct k-mers (and
    HOMOLOGY_MIN_SHARED); `among` limits the search to those records."""
    from scipy import sparse

    if among is not None:
        chosen = np.isin(records, among)
        records, kmers = records[chosen], kmers[chosen]
    matrix = sparse.csr_matrix((np.ones(len(records), np.float32), (records, kmers)),
                               shape=(len(distinct), int(kmers.max(initial=-1)) + 1))
    shared = (matrix @ matrix.T).tocoo()  # (records, records) k-mers in common
    smaller = np.maximum(np.minimum(distinct[shared.row], distinct[shared.col]), 1)
    linked = (shared.data / smaller >= threshold) & (shared.data >= HOMOLOGY_MIN_SHARED)
    return shared.row[linked], shared.col[linked]


def _kmer_codes(spans: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every k-mer of every span as one int64 (5 bits per token) and the span it is from."""
    lengths = np.array([len(s) for s in spans], np.int64)
    joined = np.concatenate(spans).astype(np.int64) if spans else np.zeros(0, np.int64)
    span_of = np.repeat(np.arange(len(spans)), lengths)
    offset = np.repeat(np.cumsum(lengths) - lengths, lengths)
    valid = np.arange(len(joined)) - offset + k <= np.repeat(lengths, lengths)
    first = np.flatnonzero(valid)
    codes = np.zeros(len(first), np.int64)
    for j in range(k):
        codes = (codes << 5) | joined[first + j]
    return span_of[first], codes


def check_class_counts(labels: np.ndarray, keep: np.ndarray, names: tuple[str, ...],
                       *, where: str) -> None:
    counts = np.bincount(labels[keep], minlength=len(names))
    for name, count in zip(names, counts, strict=True):
        if count < 2:
            raise BioseqError(f"{where}: class '{name}' has {count} example(s) after "
                              "removing duplicates; every class needs at least 2")


def split_class_counts(labels: np.ndarray, split: np.ndarray,
                       names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Per split, the count of each class (labels: class indices, per record or residue)."""
    counts = {}
    for code, split_name in enumerate(SPLITS):
        members = labels[split == code]
        counts[split_name] = {name: int((members == c).sum()) for c, name in enumerate(names)}
    return counts


def split_counts(split: np.ndarray) -> dict[str, int]:
    counts = {name: int((split == code).sum()) for code, name in enumerate(SPLITS)}
    counts["dropped"] = int((split == DROPPED).sum())
    return counts

