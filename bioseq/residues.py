"""Per-residue inputs: one label letter (and optionally a resolved/unresolved mask digit)
for every residue of every sequence.

Two layouts are read as they come:
- a FASTA triple with the same IDs: sequences, labels (one letter per residue) and an
  optional mask (`1` resolved, `0` unresolved), split hints such as `SET=train|test` and
  `VALIDATION=True|False` in the headers (the NetSurfP-2.0 files);
- a table with id, sequence, label-string and optional mask columns (the CB513 layout).

Labels become a `(n, width)` uint8 matrix aligned with the token matrix, holding class
indices and `IGNORE` wherever a residue must not count (unresolved, padding).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import NamedTuple

import numpy as np

from .config import DatasetConfig
from .errors import BioseqError
from .io import iter_chunks, read_table
from .labels import split_code
from .tasks import IGNORE


class ResidueRecords(NamedTuple):
    ids: list[str]
    sequences: list[str]
    labels: list[str]  # one letter per residue
    masks: list[str] | None  # "1"/"0" per residue, or None when every residue counts
    split: np.ndarray | None  # (n,) int8 0 train, 1 val, 2 test from the input, or None


def _read_all(path: str | os.PathLike) -> tuple[list[str], list[str], list[str | None]]:
    ids: list[str] = []
    seqs: list[str] = []
    descriptions: list[str | None] = []
    for chunk_ids, chunk_seqs, chunk_descriptions in iter_chunks(str(path)):
        ids += chunk_ids
        seqs += chunk_seqs
        descriptions += chunk_descriptions
    return ids, seqs, descriptions


def _aligned(ids: list[str], other_ids: list[str], values: list[str], *, path: str,
             reference: str) -> list[str]:
    """`values` (read with `other_ids`) in the order of `ids`; every ID on both sides."""
    by_id = dict(zip(other_ids, values, strict=True))
    if len(by_id) != len(other_ids):
        counts = Counter(other_ids)
        duplicate = next(i for i in other_ids if counts[i] > 1)
        raise BioseqError("duplicate ID", path=path, record=duplicate)
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise BioseqError(f"no record for this ID of {reference} ({len(missing)} missing)",
                          path=path, record=missing[0])
    if len(by_id) > len(ids):
        known = set(ids)
        extra = next(i for i in other_ids if i not in known)
        raise BioseqError(f"ID not in {reference}", path=path, record=extra)
    return [by_id[i] for i in ids]


def _header_splits(ids: list[str], descriptions: list[str | None], *, path: str,
                   split_field: str, validation_field: str | None) -> np.ndarray | None:
    """Split codes from `SET=`-style fields; a true validation field moves train to val."""
    fields = [dict(w.split("=", 1) for w in (d or "").split() if "=" in w)
              for d in descriptions]
    if not any(split_field in f for f in fields):
        return None
    codes = np.empty(len(ids), np.int8)
    for i, f in enumerate(fields):
        if split_field not in f:
            raise BioseqError(f"no '{split_field}=' field while other records have one",
                              path=path, record=ids[i])
        codes[i] = split_code(f[split_field], source=path, record=ids[i])
        flag = f.get(validation_field, "false").lower() if validation_field else "false"
        if flag not in ("true", "false", "1", "0"):
            raise BioseqError(f"'{validation_field}' must be True or False, not '{flag}'",
                              path=path, record=ids[i])
        if codes[i] == 0 and flag in ("true", "1"):
            codes[i] = 1
    return codes


def read_fasta_triple(sequences: str | os.PathLike, labels: str | os.PathLike,
                      mask: str | os.PathLike | None = None, *, split_field: str = "SET",
                      validation_field: str | None = "VALIDATION") -> ResidueRecords:
    """Sequence, label and optional mask FASTA files with the same IDs (any order)."""
    ids, seqs, seq_descriptions = _read_all(sequences)
    if len(set(ids)) != len(ids):
        counts = Counter(ids)
        raise BioseqError("duplicate ID", path=str(sequences),
                          record=next(i for i in ids if counts[i] > 1))
    label_ids, label_values, label_descriptions = _read_all(labels)
    label_strings = _aligned(ids, label_ids, label_values, path=str(labels),
                             reference=str(sequences))
    masks = None
    if mask is not None:
        mask_ids, mask_values, _ = _read_all(mask)
        masks = _aligned(ids, mask_ids, mask_values, path=str(mask), reference=str(sequences))
    split = _header_splits(ids, seq_descriptions, path=str(sequences), split_field=split_field,
                           validation_field=validation_field)
    if split is None:  # NetSurfP keeps its split hints in the label headers
        ordered = _aligned(ids, label_ids, label_descriptions, path=str(labels),
                           reference=str(sequences))
        split = _header_splits(ids, ordered, path=str(labels), split_field=split_field,
                               validation_field=validation_field)
    records = ResidueRecords(ids, seqs, label_strings, masks, split)
    check_lengths(records, labels_path=str(labels), mask_path=str(mask) if mask else None)
    return records


def read_residue_table(path: str | os.PathLike, *, id_column: str = "id",
                       sequence_column: str = "sequence", label_column: str = "dssp3",
                       mask_column: str | None = None,
                       split_column: str | None = None) -> ResidueRecords:
    """A TSV/CSV with one sequence per row and its label string (and mask) in columns."""
    columns = [id_column, sequence_column, label_column, *filter(None, [mask_column])]
    table = read_table(path, required=tuple(columns))
    ids = table[id_column].tolist()
    duplicated = table[id_column].duplicated()
    if duplicated.any():
        raise BioseqError("duplicate ID", path=str(path), record=ids[int(np.argmax(duplicated))])
    split = None
    if split_column is not None and split_column in table.columns:
        split = np.array([split_code(v, source=str(path), record=i)
                          for v, i in zip(table[split_column], ids, strict=True)], np.int8)
    records = ResidueRecords(ids, table[sequence_column].tolist(), table[label_column].tolist(),
                             table[mask_column].tolist() if mask_column else None, split)
    check_lengths(records, labels_path=str(path), mask_path=str(path) if mask_column else None)
    return records


def check_lengths(records: ResidueRecords, *, labels_path: str, mask_path: str | None) -> None:
    """Every sequence non-empty, with a label (and mask) of exactly its length."""
    masks = records.masks or [None] * len(records.ids)
    for record_id, seq, label, mask in zip(records.ids, records.sequences, records.labels,
                                           masks, strict=True):
        if not seq:
            raise BioseqError("empty sequence", path=labels_path, record=record_id)
        if len(label) != len(seq):
            raise BioseqError(f"label has {len(label)} letters for {len(seq)} residues",
                              path=labels_path, record=record_id)
        if mask is not None and len(mask) != len(seq):
            raise BioseqError(f"mask has {len(mask)} digits for {len(seq)} residues",
                              path=mask_path, record=record_id)
        if mask is not None and mask.strip("01"):
            raise BioseqError(f"mask holds {mask.strip('01')[0]!r}; only 0 and 1 are allowed",
                              path=mask_path, record=record_id)


def residue_classes(labels: list[str], classes: tuple[str, ...] = (), *,
                    path: str = "<labels>") -> tuple[str, ...]:
    """The label alphabet: `classes` when given (every letter must be one), else sorted."""
    seen = set().union(*map(set, labels)) if labels else set()
    odd = sorted(c for c in seen if not (c.isascii() and c.isprintable() and not c.isspace()))
    if odd:
        raise BioseqError(f"label letter {odd[0]!r} is not a printable ASCII letter", path=path)
    if not classes:
        return tuple(sorted(seen))
    unknown = sorted(seen - set(classes))
    if unknown:
        raise BioseqError(f"label letter(s) {', '.join(map(repr, unknown))} not among the "
                          f"residue classes {list(classes)}", path=path)
    return tuple(classes)


def label_matrix(labels: list[str], masks: list[str] | None, starts: np.ndarray, width: int,
                 classes: tuple[str, ...]) -> np.ndarray:
    """(n, width) uint8 class indices at each window's real positions, `IGNORE` elsewhere
    (padding and residues whose mask digit is 0). Labels longer than the window are an
    error upstream: per-residue data is never truncated."""
    table = bytearray([IGNORE] * 256)
    for code, letter in enumerate(classes):
        table[ord(letter)] = code
    out = np.full((len(labels), width), IGNORE, np.uint8)
    for row, (label, start) in enumerate(zip(labels, starts, strict=True)):
        codes = np.frombuffer(label.encode("ascii").translate(table), np.uint8)
        if masks is not None:
            codes = np.where(np.frombuffer(masks[row].encode("ascii"), np.uint8) == ord("1"),
                             codes, IGNORE)
        out[row, start : start + len(codes)] = codes
    return out


def read_residue_dataset(config: DatasetConfig) -> ResidueRecords:
    """The per-residue records a data set config points at (FASTA triple or table)."""
    if config.residue_table:
        return read_residue_table(config.residue_table, id_column=config.id_column,
                                  sequence_column=config.sequence_column,
                                  label_column=config.label_field,
                                  mask_column=config.mask_column,
                                  split_column=config.split.field)
    return read_fasta_triple(config.fasta[0], config.residue_labels, config.residue_mask,
                             split_field=config.split.field,
                             validation_field=config.split.validation_field)
