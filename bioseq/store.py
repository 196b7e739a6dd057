"""The encoded store: a directory of .npy arrays written in chunks, read as memmaps.

    tokens.npy   (n, width) uint8   token ids (alphabets.py), padding = alphabet.pad_token
    starts.npy   (n,) int32         first real position of each window
    lengths.npy  (n,) int32         real positions per window
    labels.npy   (n,) int64 | (n, k) float32 | (n, width) uint8 per-residue classes
                 (tasks.IGNORE at unresolved residues and padding)
    split.npy    (n,) int8          0 train, 1 val, 2 test, -1 dropped
    groups.npy   (n,) int64         homology cluster of each record, -1 dropped (only with
                                    split.method homology; cross-validation deals them whole)
    ids.txt      one ID per line;  dropped.tsv  why records were dropped;  meta.json
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from . import __version__
from .alphabets import get_alphabet
from .config import DatasetConfig
from .encoding import SequenceEncoder
from .errors import BioseqError
from .genome import Genome, bed_chunks
from .io import CHUNK_CHARACTERS, atomic_path, iter_chunks
from .labels import SPLITS, LabelCollector, Labels
from .residues import label_matrix, read_residue_dataset, residue_classes
from .splits import (
    DROPPED,
    Deduplication,
    assign_splits,
    check_class_counts,
    find_duplicates,
    hash_groups,
    homology_groups,
    row_hashes,
    split_class_counts,
    split_counts,
)
from .tasks import IGNORE

GROUPS_FILE = "groups.npy"  # homology clusters (split.method homology), dealt to CV folds
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
    if config.fasta or config.bed:
        return [(path, None) for path in config.fasta or config.bed]
    classes = config.class_fastas or config.class_beds
    return [(path, name) for name, paths in classes.items() for path in paths]


def _source_chunks(config: DatasetConfig, path: str, chunk_characters: int,
                   genome: Genome | None):
    """Chunks of a FASTA file, or of a BED file's windows on the reference genome."""
    if genome is None:
        return iter_chunks(path, chunk_characters)
    return bed_chunks(path, genome, width=config.length.length, anchor=config.length.anchor,
                      label_column=config.bed_label_column, label_field=config.label_field,
                      chunk_records=max(1, chunk_characters // config.length.length))


def encode_dataset(config: DatasetConfig, out_dir: str | os.PathLike, *,
                   chunk_characters: int = CHUNK_CHARACTERS, held_out: bool = False) -> dict:
    """Encode a data set's input(s) into a store at `out_dir`; returns its metadata.

    Training and validation records whose sequence is in one of the data set's test sets
    are dropped. `held_out=True` encodes a test set: every record in the test split, none
    dropped as a duplicate (so it is scored as published).
    """
    encoder = _encoder(config)
    held_out_spans = _test_set_spans(config, encoder)
    with atomic_path(out_dir, directory=True, marker="meta.json") as tmp:
        if config.task == "per_residue":
            arrays, labels, counts, width = _encode_residues(config, encoder, tmp)
        else:
            arrays, labels, counts, width = _encode_sequences(config, encoder, tmp,
                                                              chunk_characters)
        return _finish_store(tmp, config, arrays, labels, counts, width, held_out=held_out,
                             held_out_spans=held_out_spans)


def _encoder(config: DatasetConfig) -> SequenceEncoder:
    length = config.length
    if config.task == "per_residue":  # max_length is the predict window; proteins stay whole
        length = dataclasses.replace(length, max_length=None, overlap=None)
    return SequenceEncoder(get_alphabet(config.alphabet), config.encoding, length)


def _encode_sequences(config: DatasetConfig, encoder: SequenceEncoder, tmp: Path,
                      chunk_characters: int):
    width = config.length.length
    if width is None:  # pad to the longest: one quick pass to find it
        width = encoder.width_for(_max_length(config.inputs))
    collector = LabelCollector(config)
    tokens = NpyRowWriter(tmp / "tokens.npy", width)
    parts: dict[str, list] = {"starts": [], "lengths": [], "hashes": [], "id_hashes": []}
    counts: dict = {}
    with open(tmp / "ids.txt", "w", encoding="utf-8") as id_file, \
            contextlib.ExitStack() as stack:
        genome = stack.enter_context(Genome(config.reference)) if config.reference else None
        for path, class_name in _sources(config):
            numbered = 0
            for ids, seqs, descriptions in _source_chunks(config, path, chunk_characters,
                                                          genome):
                if config.record_ids == "numbered":  # headers that do not name records
                    ids = [f"{Path(path).name}#{numbered + k}" for k in range(1, len(ids) + 1)]
                    numbered += len(ids)
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
    return arrays, collector.finish(), counts, width


def _encode_residues(config: DatasetConfig, encoder: SequenceEncoder, tmp: Path):
    """Per-residue records (read whole: label strings are as long as the sequences)."""
    records = read_residue_dataset(config)
    source = config.residue_labels or config.residue_table
    names = residue_classes(records.labels, config.classes, path=source)
    width = encoder.width_for(max(map(len, records.sequences), default=1))
    chunk = encoder.encode(records.ids, records.sequences, width=width, source=config.inputs[0])
    np.save(tmp / "tokens.npy", chunk.tokens)
    with open(tmp / "ids.txt", "w", encoding="utf-8") as id_file:
        id_file.write("".join(f"{i}\n" for i in records.ids))
    values = label_matrix(records.labels, records.masks, chunk.starts, width, names)
    arrays = {"starts": chunk.starts, "lengths": chunk.lengths,
              "hashes": row_hashes(chunk.tokens, chunk.starts, chunk.lengths),
              "id_hashes": np.fromiter(map(hash, records.ids), np.int64, len(records.ids))}
    counts = dict(chunk.counts)
    counts["residues_counted"] = int((values != IGNORE).sum())
    return arrays, Labels(values, names, records.split), counts, width


def _test_set_spans(config: DatasetConfig,
                    encoder: SequenceEncoder) -> dict[bytes, tuple[str, str]]:
    """Encoded sequence -> (test set, record ID) for every record of the test sets."""
    spans: dict[bytes, tuple[str, str]] = {}
    for name in config.test_sets:
        test = config.test_set(name)
        if test.task == "per_residue":
            records = read_residue_dataset(test)
            batches = [(records.ids, records.sequences)]
        else:
            batches = [(ids, seqs) for path in test.inputs for ids, seqs, _ in iter_chunks(path)]
        for ids, seqs in batches:
            width = config.length.length or encoder.width_for(max(map(len, seqs), default=1))
            chunk = encoder.encode(ids, seqs, width=width, source=", ".join(test.inputs))
            for record_id, row, start, length in zip(ids, chunk.tokens, chunk.starts,
                                                     chunk.lengths, strict=True):
                spans.setdefault(row[start : start + length].tobytes(), (name, record_id))
    return spans


def _finish_store(tmp: Path, config: DatasetConfig, arrays: dict, labels, counts: dict,
                  width: int, *, held_out: bool, held_out_spans: dict) -> dict:
    tokens = np.load(tmp / "tokens.npy", mmap_mode="r")
    starts, lengths = arrays["starts"], arrays["lengths"]

    def rows(i):
        return tokens[i].tobytes(), starts[i], lengths[i]

    _check_duplicate_ids(tmp, arrays, labels.values, config)
    n = len(starts)
    if held_out:  # a test set is scored whole, as published
        dedup = Deduplication(np.ones(n, bool), [], 0, 0)
        given = np.full(n, SPLITS.index("test"), np.int8)
    else:
        dedup = find_duplicates(arrays["hashes"], rows, labels.values, labels.split,
                                drop_conflicts=config.task != "per_residue")
        given = labels.split
    classification = config.task in ("binary", "multiclass")
    if classification and not held_out:
        check_class_counts(labels.values, dedup.keep, labels.names,
                           where=f"dataset '{config.name}'")
    groups = None
    if config.split.method == "homology" and given is not None and not held_out:
        raise BioseqError(f"split.method homology: the input already gives splits (field "
                          f"'{config.split.field}'); drop one or the other",
                          path=", ".join(config.inputs))
    if config.split.method == "homology" and given is None:
        groups = homology_groups(tokens, starts, lengths, dedup.keep, kmer=config.split.kmer,
                                 identity=config.split.identity)
    split = assign_splits(labels.values, dedup.keep, given=given,
                          val_fraction=config.split.val_fraction,
                          test_fraction=config.split.test_fraction, seed=config.split.seed,
                          stratify=classification, groups=groups)
    overlap = _drop_test_set_overlap(tokens, starts, lengths, split, held_out_spans, dedup)
    counts["test_set_overlap_dropped"] = overlap
    if groups is not None:  # cross-validation deals these clusters to folds
        counts["homology_clusters"] = int(len(np.unique(groups[groups >= 0])))
        np.save(tmp / GROUPS_FILE, groups)
    np.save(tmp / "starts.npy", starts)
    np.save(tmp / "lengths.npy", lengths)
    np.save(tmp / "labels.npy", labels.values)
    np.save(tmp / "split.npy", split)
    ids = _read_ids(tmp / "ids.txt") if dedup.dropped else []
    if len(ids) != len(starts) and dedup.dropped:
        raise AssertionError("ids.txt out of step with the arrays")
    with open(tmp / "dropped.tsv", "w") as handle:
        handle.write("id\treason\tother_id\n")
        for i, reason, other in sorted(dedup.dropped):
            other_id = other if isinstance(other, str) else ids[other]
            handle.write(f"{ids[i]}\t{reason}\t{other_id}\n")
    meta = _metadata(config, labels, counts, split, dedup, width, held_out=held_out)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _drop_test_set_overlap(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                           split: np.ndarray, spans: dict[bytes, tuple[str, str]],
                           dedup) -> dict[str, int]:
    """Train/val records whose sequence is in a test set leave the split (in place);
    returns the count per test set and adds each to `dedup.dropped`."""
    counts: dict[str, int] = {}
    if not spans:
        return counts
    for i in np.flatnonzero((split == 0) | (split == 1)):
        found = spans.get(tokens[i, starts[i] : starts[i] + lengths[i]].tobytes())
        if found is not None:
            split[i] = DROPPED
            name, record_id = found
            counts[name] = counts.get(name, 0) + 1
            dedup.dropped.append((int(i), f"in_test_set_{name}", record_id))
    return counts


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
              width: int, *, held_out: bool) -> dict:
    class_counts = {}
    if config.task in ("binary", "multiclass", "per_residue"):  # records, or residues
        class_counts = split_class_counts(labels.values, split, labels.names)
    return {
        "bioseq_version": __version__,
        "dataset": config.name,
        "inputs": list(config.inputs),
        "alphabet": config.alphabet,
        "task": config.task,
        "label_names": list(labels.names),
        "encoding": {"ambiguous": config.encoding.ambiguous,
                     "soft_masked": config.encoding.soft_masked},
        "length": dataclasses.asdict(config.length),
        "width": width,
        "split_source": ("input" if labels.split is not None else
                         "held_out" if held_out else config.split.method),
        "counts": {**counts, "duplicates_dropped": dedup.duplicates,
                   "conflicting_label_records_dropped": dedup.conflicts,
                   "splits": split_counts(split), "classes": class_counts},
    }


def encode_test_set(config: DatasetConfig, name: str, out_dir: str | os.PathLike, *,
                    store_dir: str | os.PathLike) -> dict:
    """Encode test set `name` of `config` as a held-out store whose labels are in the order
    of the data set's own store at `store_dir` (the model's output order)."""
    if name not in config.test_sets:
        raise BioseqError(f"dataset '{config.name}' has no test set '{name}' "
                          f"(have: {', '.join(config.test_sets) or 'none'})")
    names = EncodedStore(store_dir).label_names
    test = config.test_set(name)
    if test.task in ("binary", "multiclass", "per_residue"):
        test = dataclasses.replace(test, classes=names)
    elif tuple(test.label_columns) != names:  # multilabel/regression: the model's outputs
        raise BioseqError(f"test set '{name}': label columns {list(test.label_columns)} "
                          f"differ from the data set's {list(names)}")
    return encode_dataset(test, out_dir, held_out=True)


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
