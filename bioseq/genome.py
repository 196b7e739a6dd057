"""Reference genomes (random access through pyfaidx) and BED intervals -> fixed windows.

Coordinates inside bioseq are 0-based and half-open, like BED and Python slices; VCF's
1-based positions are converted where a VCF is read (`bioseq.variants`).
"""

from __future__ import annotations

import gzip
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pyfaidx

from .errors import BioseqError

OFF_CONTIG = "N"  # what a window holds beyond a contig's ends
CACHE_BLOCK = 1 << 14  # bases read at once around a request


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def is_bgzf(path: Path) -> bool:
    """BGZF blocks are gzip members with a 'BC' extra subfield (SAM spec, section 4.1)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    return len(head) == 16 and head[3] & 4 and head[12:14] == b"BC"


class Genome:
    """A reference FASTA opened for random access: plain (with or without `.fai`), or
    bgzip-compressed with its `.fai` and `.gzi` indexes. Nothing is written beside the
    user's file: a missing `.fai` of a plain FASTA is built in a temporary folder.

    `aliases` maps names used elsewhere (a VCF's `chr20`) to the FASTA's names (`20`).
    """

    def __init__(self, path: str | os.PathLike, *, aliases: Mapping[str, str] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise BioseqError("reference FASTA not found", path=str(path))
        self._tmp = None
        self._cached_key: tuple[str, int] | None = None
        self._cached = ""
        options = {"as_raw": True, "sequence_always_upper": False, "build_index": False,
                   "rebuild": False}
        if is_gzip(self.path):
            self._check_bgzip_indexes()
        elif not _fresh_index(self.path, ".fai"):  # missing or older than the FASTA
            self._tmp = tempfile.TemporaryDirectory(prefix="bioseq-fai-")
            options.update(indexname=str(Path(self._tmp.name) / "index.fai"), build_index=True)
        try:
            self._fasta = pyfaidx.Fasta(str(self.path), **options)
        except (pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, ValueError,
                OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            self.close()
            raise BioseqError(f"cannot read reference FASTA ({first})", path=str(path)) from None
        self.lengths = {name: len(record) for name, record in self._fasta.records.items()}
        self.aliases = dict(aliases or {})
        unknown = sorted(set(self.aliases.values()) - set(self.lengths))
        if unknown:
            raise BioseqError(f"contig alias target '{unknown[0]}' is not in the reference "
                              f"(has: {_names(self.lengths)})", path=str(path))

    def _check_bgzip_indexes(self) -> None:
        if not is_bgzf(self.path):
            raise BioseqError("gzip-compressed FASTA is not bgzip (BGZF): random access needs "
                              "it recompressed with 'bgzip' and indexed with 'samtools faidx'",
                              path=str(self.path))
        missing = [suffix for suffix in (".fai", ".gzi")
                   if not Path(f"{self.path}{suffix}").is_file()]
        if missing:
            raise BioseqError(f"bgzip FASTA is not indexed ({' and '.join(missing)} missing; "
                              "create them with 'samtools faidx')", path=str(self.path))
        stale = [suffix for suffix in (".fai", ".gzi") if not _fresh_index(self.path, suffix)]
        if stale:
            raise BioseqError(f"{' and '.join(stale)} index is older than the FASTA; "
                              "re-create it with 'samtools faidx'", path=str(self.path))

    def contig(self, name: str) -> str | None:
        """The reference's name for `name` (after aliases), or None when it has none."""
        name = self.aliases.get(name, name)
        return name if name in self.lengths else None

    def fetch(self, contig: str, start: int, end: int) -> str:
        """Bases [start, end) of `contig` as stored (soft-masked case kept); positions
        beyond either end of the contig come back as N."""
        size = self.lengths[contig]
        lo, hi = max(start, 0), min(end, size)
        if hi <= lo:
            return OFF_CONTIG * (end - start)
        return OFF_CONTIG * (lo - start) + self._bases(contig, lo, hi) + OFF_CONTIG * (end - hi)

    def _bases(self, contig: str, lo: int, hi: int) -> str:
        """Bases inside the contig, from a one-block cache: nearby windows (a sorted VCF)
        then cost a string slice instead of a pyfaidx call each."""
        block = lo // CACHE_BLOCK
        if block != (hi - 1) // CACHE_BLOCK:
            return self._fasta[contig][lo:hi]
        if self._cached_key != (contig, block):
            first = block * CACHE_BLOCK
            self._cached = self._fasta[contig][first : min(first + CACHE_BLOCK,
                                                           self.lengths[contig])]
            self._cached_key = (contig, block)
        offset = block * CACHE_BLOCK
        return self._cached[lo - offset : hi - offset]

    def describe(self) -> str:
        return f"{self.path.name} ({_names(self.lengths)})"

    def close(self) -> None:
        fasta = getattr(self, "_fasta", None)
        if fasta is not None:
            fasta.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fresh_index(path: Path, suffix: str) -> bool:
    index = Path(f"{path}{suffix}")
    return index.is_file() and index.stat().st_mtime >= path.stat().st_mtime


def _names(lengths: Mapping[str, int], limit: int = 5) -> str:
    names = list(lengths)
    more = f", ... {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def parse_aliases(pairs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """`['chr20=20', ...]` (command line) or a mapping (config) -> {other name: FASTA name}."""
    if pairs is None:
        return {}
    if isinstance(pairs, Mapping):
        return {str(k): str(v) for k, v in pairs.items()}
    aliases = {}
    for pair in pairs:
        name, sep, target = pair.partition("=")
        if not sep or not name or not target:
            raise BioseqError(f"contig alias must look like VCF_NAME=FASTA_NAME, not '{pair}'")
        aliases[name] = target
    return aliases


class Interval(NamedTuple):
    contig: str
    start: int  # 0-based
    end: int  # exclusive
    name: str  # the BED name column, or contig:start-end (1-based, inclusive)
    label: str | None


def read_bed(path: str | os.PathLike, *, label_column: int | None = None) -> Iterator[Interval]:
    """Intervals of a BED file (plain or gzip); `label_column` (1-based, e.g. 4 or 5) gives
    each interval's label. Header, track, browser and comment lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise BioseqError("BED file not found", path=str(path))
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rt") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            yield _bed_interval(line.rstrip("\r\n").split("\t"), label_column,
                                where=f"line {number}", path=str(path))


def _bed_interval(fields: list[str], label_column: int | None, *, where: str,
                  path: str) -> Interval:
    if len(fields) < 3:
        raise BioseqError(f"{where}: BED needs tab-separated chrom, start, end", path=path)
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise BioseqError(f"{where}: start and end must be integers, not "
                          f"'{fields[1]}', '{fields[2]}'", path=path) from None
    if not 0 <= start < end:
        raise BioseqError(f"{where}: need 0 <= start < end, got {start}-{end}", path=path)
    label = None
    if label_column is not None:
        if len(fields) < label_column:
            raise BioseqError(f"{where}: no column {label_column} (label_column)", path=path)
        label = fields[label_column - 1]
        if not label or any(c.isspace() for c in label):
            raise BioseqError(f"{where}: label {label!r} (column {label_column}) is empty or "
                              "contains spaces", path=path)
    name = fields[3] if len(fields) > 3 and label_column != 4 and fields[3] not in ("", ".") \
        else f"{fields[0]}:{start + 1}-{end}"
    return Interval(fields[0], start, end, name, label)


def window_start(interval: Interval, width: int, anchor: str) -> int:
    """First position of the `width`-long window placed on `interval` by `anchor`: its
    centre on the interval's midpoint, or flush with its start (left) or end (right)."""
    if anchor == "left":
        return interval.start
    if anchor == "right":
        return interval.end - width
    return (interval.start + interval.end) // 2 - width // 2


def interval_sequences(genome: Genome, intervals: Sequence[Interval], *, width: int,
                       anchor: str, source: str) -> list[str]:
    """Fixed-width windows of the genome on `intervals` (N beyond contig ends)."""
    seqs = []
    for interval in intervals:
        contig = genome.contig(interval.contig)
        if contig is None:
            raise BioseqError(f"contig '{interval.contig}' is not in the reference "
                              f"{genome.describe()}", path=source, record=interval.name)
        start = window_start(interval, width, anchor)
        seqs.append(genome.fetch(contig, start, start + width))
    return seqs


def bed_chunks(path: str, genome: Genome, *, width: int, anchor: str,
               label_column: int | None, label_field: str,
               chunk_records: int = 8192) -> Iterator[tuple[list, list, list]]:
    """(ids, sequences, descriptions) chunks like `io.iter_chunks`, from BED intervals: the
    label (if any) is handed on as a `label_field=value` description."""
    batch: list[Interval] = []

    def chunk() -> tuple[list, list, list]:
        seqs = interval_sequences(genome, batch, width=width, anchor=anchor, source=path)
        descriptions = [None if i.label is None else f"{label_field}={i.label}" for i in batch]
        return [i.name for i in batch], seqs, descriptions

    for interval in read_bed(path, label_column=label_column):
        batch.append(interval)
        if len(batch) >= chunk_records:
            yield chunk()
            batch = []
    if batch:
        yield chunk()
