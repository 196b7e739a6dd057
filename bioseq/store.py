"""The encoded store: a directory of .npy arrays written in chunks, read as memmaps.

    tokens.npy   (n, width) uint8   token ids (alphabets.py), padding = alphabet.pad_token
    starts.npy   (n,) int32         first real position of each window
    lengths.npy  (n,) int32         real positions per window
    labels.npy   (n,) int64 | (n, k) float32
    split.npy    (n,) int8          0 train, 1 val, 2 test, -1 dropped
    ids.txt      one ID per line;  dropped.tsv  why records were dropped;  meta.json
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import __version__
from .alphabets import get_alphabet
from .config import DatasetConfig
from .encoding import SequenceEncoder
from .errors import BioseqError
from .io import CHUNK_CHARACTERS, atomic_path, iter_chunks
from .labels import SPLITS, LabelCollector
from .splits import (
    assign_splits,
    check_class_counts,
    find_duplicates,
    hash_groups,
    row_hashes,
    split_counts,
)

_HEADER_BYTES = 128  # reserved .npy header, so rows can be appended before n is known


class NpyRowWriter:
    """Appends rows to a 2-D .npy file whose row count is written at the end."""

    def __init__(self, path: Path, width: int, dtype=np.uint8):
        self.path, self.width, self.dtype = path, width, np.dtype(dtype)
        self.rows = 0
        self.handle = open(path, "wb")
        self.handle.write(b"\0" * _HEADER_BYTES)

    def append(self, rows: np.ndarray) -> None:
        self.handle.write(memoryview(np.ascontiguousarray(rows, self.dtype)))  # no copy
        self.rows += len(rows)

    def close(self) -> None:
        header = {"descr": self.dtype.str, "fortran_order": False,
                  "shape": (self.rows, self.width)}
        text = repr(header).encode("latin-1")
        pad = _HEADER_BYTES - 10 - len(text) - 1
        self.handle.seek(0)
        self.handle.write(b"\x93NUMPY\x01\x00" + (_HEADER_BYTES - 10).to_bytes(2, "little"))
        self.handle.write(text + b" " * pad + b"\n")
        self.handle.close()


def _max_length(paths: tuple[str, ...]) -> int:
    return max(max(map(len, seqs)) for path in paths for _, seqs, _ in iter_chunks(path))


def _sources(config: DatasetConfig) -> list[tuple[str, str | None]]:
    if config.fasta:
        return [(path, None) for path in config.fasta]
    return [(path, name) for name, paths in config.class_fastas.items() for path in paths]


def encode_dataset(config: DatasetConfig, out_dir: str | os.PathLike, *,
                   chunk_characters: int = CHUNK_CHARACTERS) -> dict:
    """Encode a data set's FASTA input(s) into a store at `out_dir`; returns its metadata."""
    alphabet = get_alphabet(config.alphabet)
    encoder = SequenceEncoder(alphabet, config.encoding, config.length)
    width = config.length.length
    if width is None:  # pad to the longest: one quick pass to find it
        width = encoder.width_for(_max_length(config.inputs))
    with atomic_path(out_dir, directory=True, marker="meta.json") as tmp:
        collector = LabelCollector(config)
        tokens = NpyRowWriter(tmp / "tokens.npy", width)
        parts: dict[str, list] = {"starts": [], "lengths": [], "hashes": [], "id_hashes": []}
        counts: dict = {}
        with open(tmp / "ids.txt", "w", encoding="utf-8") as id_file:
            for path, class_name in _sources(config):
                for ids, seqs, descriptions in iter_chunks(path, chunk_characters):
                    chunk = encoder.encode(ids, seqs, width=width, source=path)
                    collector.add(ids, descriptions, source=path, class_name=class_name)
                    tokens.append(chunk.tokens)
                    parts["starts"].append(chunk.starts)
                    parts["lengths"].append(chunk.lengths)
                    parts["hashes"].append(row_hashes(chunk.tokens, chunk.starts, chunk.lengths))
                    parts["id_hashes"].append(np.fromiter(map(hash, ids), np.int64, len(ids)))
                    id_file.write("\n".join(ids) + "\n")
                    _add_counts(counts, chunk.counts)
        tokens.close()
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        parts.clear()
        labels = collector.finish()
        meta = _finish_store(tmp, config, arrays, labels, counts, width)
    return meta


def _finish_store(tmp: Path, config: DatasetConfig, arrays: dict, labels, counts: dict,
                  width: int) -> dict:
    tokens = np.load(tmp / "tokens.npy", mmap_mode="r")
    starts, lengths = arrays["starts"], arrays["lengths"]

    def rows(i):
        return tokens[i].tobytes(), starts[i], lengths[i]

    _check_duplicate_ids(tmp, arrays, labels.values, config)
    dedup = find_duplicates(arrays["hashes"], rows, labels.values, labels.split)
    classification = config.task in ("binary", "multiclass")
    if classification:
        check_class_counts(labels.values, dedup.keep, labels.names,
                           where=f"dataset '{config.name}'")
    split = assign_splits(labels.values, dedup.keep, given=labels.split,
                          val_fraction=config.split.val_fraction,
                          test_fraction=config.split.test_fraction, seed=config.split.seed,
                          stratify=classification)
    np.save(tmp / "starts.npy", starts)
    np.save(tmp / "lengths.npy", lengths)
    np.save(tmp / "labels.npy", labels.values)
    np.save(tmp / "split.npy", split)
    ids = _read_ids(tmp / "ids.txt") if dedup.dropped else []
    with open(tmp / "dropped.tsv", "w") as handle:
        handle.write("id\treason\tother_id\n")
        for i, reason, other in dedup.dropped:
            handle.write(f"{ids[i]}\t{reason}\t{ids[other]}\n")
    meta = _metadata(config, labels, counts, split, dedup, width)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _check_duplicate_ids(tmp: Path, arrays: dict, labels: np.ndarray,
                         config: DatasetConfig) -> None:
    """Repeated IDs are allowed only for exact copies (same sequence and label)."""
    order, first, counts = hash_groups(arrays["id_hashes"])
    if not (counts > 1).any():
        return
    repeated = np.sort(np.concatenate([order[s : s + c] for s, c
                                       in zip(first[counts > 1], counts[counts > 1], strict=True)]))
    ids = _read_ids(tmp / "ids.txt")
    first_seen: dict[str, int] = {}
    for i in repeated:
        j = first_seen.setdefault(ids[i], i)
        if j != i and (arrays["hashes"][i] != arrays["hashes"][j]
                       or not np.array_equal(labels[i], labels[j])):
            raise BioseqError(f"duplicate ID with a different sequence or label (records "
                              f"{j + 1} and {i + 1})", path=", ".join(config.inputs),
                              record=ids[i])


def _read_ids(path: Path) -> list[str]:
    # split on "\n" only: IDs may hold other characters that splitlines() breaks on
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _add_counts(total: dict, chunk: dict) -> None:
    for key, value in chunk.items():
        if isinstance(value, dict):
            sub = total.setdefault(key, {})
            for k, v in value.items():
                sub[k] = sub.get(k, 0) + v
        else:
            total[key] = total.get(key, 0) + value


def _metadata(config: DatasetConfig, labels, counts: dict, split: np.ndarray, dedup,
              width: int) -> dict:
    class_counts = {}
    if config.task in ("binary", "multiclass"):
        for code, name in enumerate(SPLITS):
            members = labels.values[split == code]
            class_counts[name] = {labels.names[c]: int((members == c).sum())
                                  for c in range(len(labels.names))}
    return {
        "bioseq_version": __version__,
        "dataset": config.name,
        "inputs": list(config.inputs),
        "alphabet": config.alphabet,
        "task": config.task,
        "label_names": list(labels.names),
        "encoding": {"ambiguous": config.encoding.ambiguous,
                     "soft_masked": config.encoding.soft_masked},
        "length": {"length": config.length.length, "max_length": config.length.max_length,
                   "anchor": config.length.anchor, "truncate": config.length.truncate},
        "width": width,
        "split_source": "input" if labels.split is not None else "random",
        "counts": {**counts, "duplicates_dropped": dedup.duplicates,
                   "conflicting_label_records_dropped": dedup.conflicts,
                   "splits": split_counts(split), "classes": class_counts},
    }


class EncodedStore:
    """Read side of the store; arrays are memory-mapped, not loaded."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise BioseqError("not an encoded store (meta.json missing)", path=str(self.path))
        self.meta = json.loads(meta_path.read_text())
        self.tokens = np.load(self.path / "tokens.npy", mmap_mode="r")  # (n, width) uint8
        self.starts = np.load(self.path / "starts.npy")
        self.lengths = np.load(self.path / "lengths.npy")
        self.labels = np.load(self.path / "labels.npy")
        self.split = np.load(self.path / "split.npy")
        self.alphabet = get_alphabet(self.meta["alphabet"])

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.meta["label_names"])

    def __len__(self) -> int:
        return len(self.tokens)

    def ids(self) -> list[str]:
        return _read_ids(self.path / "ids.txt")

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == SPLITS.index(split))
