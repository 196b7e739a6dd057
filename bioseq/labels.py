"""Labels and split hints for streamed records: from FASTA headers, a table, or per-class files.

Labels are kept as compact integer codes (or float rows) per chunk, so memory grows by a few
bytes per record, not by the size of the headers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from .config import DatasetConfig
from .errors import BioseqError
from .io import read_table

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
NO_SPLIT = -1


class Labels(NamedTuple):
    values: np.ndarray  # (n,) int64 class index, or (n, k) float32 for multilabel/regression
    names: tuple[str, ...]  # class / label / target names, in output order
    split: np.ndarray | None  # (n,) int8 0/1/2 from the input, or None when not given


class LabelCollector:
    """Collects labels chunk by chunk as records stream past."""

    def __init__(self, config: DatasetConfig):
        self.config = config
        self._codes: dict[str, int] = {}  # label string -> provisional code
        self._values: list[np.ndarray] = []
        self._splits: list[np.ndarray] = []
        self._field = _field_pattern(config.label_field)
        self._split_field = _field_pattern(config.split.field)
        self._table = _LabelTable(config) if config.labels_table else None

    def add(self, ids: Sequence[str], descriptions: Sequence[str | None], *, source: str,
            class_name: str | None = None) -> None:
        if None in descriptions:  # headers without a description
            descriptions = [d or "" for d in descriptions]
        joined = "\n".join(descriptions)  # one regex pass per field over the whole chunk
        table = self._table
        # table rows of this chunk, looked up once for labels and split alike
        rows = table.rows(ids) if table is not None and (class_name is None or
                                                         table.has_split) else None
        if class_name is not None:
            self._values.append(np.full(len(ids), self._code(class_name), np.int64))
        elif table is not None:
            self._values.append(table.lookup(ids, rows, self._code))
        else:
            self._values.append(self._from_headers(ids, descriptions, joined, source))
        if table is not None and table.has_split:
            self._splits.append(table.split_codes(ids, rows))
        else:
            self._splits.append(self._header_splits(ids, descriptions, joined, source))

    def finish(self) -> Labels:
        values = np.concatenate(self._values) if self._values else np.zeros(0, np.int64)
        splits = np.concatenate(self._splits) if self._splits else np.zeros(0, np.int8)
        split = None if (splits == NO_SPLIT).all() else splits
        if split is not None and (split == NO_SPLIT).any():
            raise BioseqError(f"dataset '{self.config.name}': the split field "
                              f"'{self.config.split.field}' is given for some records only")
        if self.config.task in ("multilabel", "regression"):
            return Labels(values, tuple(self.config.label_columns), split)
        names, values = self._ordered(values)
        if self.config.task == "binary" and len(names) != 2:
            raise BioseqError(f"dataset '{self.config.name}': task binary needs exactly 2 "
                              f"classes, found {len(names)} ({', '.join(names)})")
        return Labels(values, names, split)

    def _code(self, label: str) -> int:
        return self._codes.setdefault(label, len(self._codes))

    def _from_headers(self, ids, descriptions, joined: str, source) -> np.ndarray:
        # one regex pass over the whole chunk (at most one match per line); record by record
        # only when a record lacks the field or has it empty, to name that record
        values = self._field.findall(joined)
        if len(values) != len(descriptions) or "" in values:
            values = []
            for i, description in enumerate(descriptions):
                found = self._field.findall(description or "")
                if not found or not found[0]:
                    raise BioseqError(f"no label field '{self.config.label_field}=' in the "
                                      "header", path=source, record=ids[i])
                values.append(found[0])
        for label in sorted(set(values).difference(self._codes)):
            self._code(label)
        return np.fromiter(map(self._codes.__getitem__, values), np.int64, len(values))

    def _header_splits(self, ids, descriptions, joined: str, source) -> np.ndarray:
        codes = np.full(len(ids), NO_SPLIT, np.int8)
        if f"{self.config.split.field}=" not in joined:
            return codes
        for i, description in enumerate(descriptions):
            found = self._split_field.findall(description or "")
            if found:
                codes[i] = split_code(found[0], source=source, record=ids[i])
        return codes

    def _ordered(self, codes: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
        seen = list(self._codes)
        names = self.config.classes or tuple(sorted(seen))
        unknown = [s for s in seen if s not in names]
        if unknown:
            raise BioseqError(f"dataset '{self.config.name}': label(s) "
                              f"{', '.join(map(repr, unknown))} not among classes {names}")
        remap = np.array([names.index(s) for s in seen], np.int64)
        return tuple(names), remap[codes] if len(codes) else codes


class _LabelTable:
    """A TSV/CSV with an id column, label column(s) and optionally a split column."""

    def __init__(self, config: DatasetConfig):
        self.config = config
        columns = config.label_columns or (config.label_field,)
        self.path = config.labels_table
        table = read_table(self.path, required=(config.id_column, *columns))
        duplicated = table[config.id_column].duplicated()
        if duplicated.any():
            first = table[config.id_column][duplicated].iloc[0]
            raise BioseqError("duplicate ID in the labels table", path=self.path, record=first)
        self.index = pd.Index(table[config.id_column])
        self.raw = table[list(columns)].to_numpy()
        self.has_split = config.split.field in table.columns
        self.split_raw = table[config.split.field].to_numpy() if self.has_split else None
        if config.task in ("multilabel", "regression"):
            self.numeric = self._numeric(table, columns)

    def _numeric(self, table: pd.DataFrame, columns) -> np.ndarray:
        values = table[list(columns)].apply(pd.to_numeric, errors="coerce")
        bad = values.isna().any(axis=1)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise BioseqError("label value is not a number", path=self.path,
                              record=table[self.config.id_column].iloc[row])
        if self.config.task == "multilabel" and not values.isin([0, 1]).all().all():
            raise BioseqError("multilabel columns must hold 0 or 1", path=self.path)
        return values.to_numpy(np.float32)

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        rows = self.index.get_indexer(list(ids))
        missing = rows < 0
        if missing.any():
            raise BioseqError(f"no label for this ID ({int(missing.sum())} IDs in this chunk "
                              "lack one)", path=self.path, record=ids[int(np.argmax(missing))])
        return rows

    def lookup(self, ids: Sequence[str], rows: np.ndarray, code) -> np.ndarray:
        if self.config.task in ("multilabel", "regression"):
            return self.numeric[rows]
        labels = self.raw[rows, 0]
        for i, label in enumerate(labels):
            if label == "":
                raise BioseqError("empty label", path=self.path, record=ids[i])
        return np.fromiter((code(label) for label in labels), np.int64, len(labels))

    def split_codes(self, ids: Sequence[str], rows: np.ndarray) -> np.ndarray:
        values = self.split_raw[rows]
        return np.fromiter((split_code(v, source=self.path, record=i)
                            for v, i in zip(values, ids, strict=True)), np.int8, len(ids))


def _field_pattern(key: str) -> re.Pattern:
    """`key=value` as a word of a header description; on newline-joined descriptions,
    findall gives the first such field of each line and nothing for lines without one."""
    key = re.escape(key)
    return re.compile(rf"^(?:{key}=|[^\n]*?[ \t]{key}=)(\S*)", re.MULTILINE)


def split_code(value: str, *, source: str, record: str) -> int:
    try:
        return _SPLIT_ALIASES[value.lower()]
    except KeyError:
        raise BioseqError(f"unknown split '{value}' (use train, val or test)",
                          path=source, record=record) from None
