"""VCF in (pysam: VCF, VCF.gz, BCF) and the annotated VCF out (bgzip + tabix)."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pysam

from .errors import BioseqError
from .genome import is_bgzf, is_gzip


class VcfReader:
    """Records of a VCF / VCF.gz / BCF (pysam), with malformed lines reported by number."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        if not Path(path).is_file():
            raise BioseqError("VCF not found", path=self.path)
        try:
            with _quiet_htslib():
                self.file = pysam.VariantFile(_open_stream(self.path))
        except (OSError, ValueError) as err:
            raise BioseqError(f"cannot read VCF header ({_first_line(err)})",
                              path=self.path) from None
        self.records_read = 0

    def __iter__(self) -> Iterator[pysam.VariantRecord]:
        records = iter(self.file)
        with _quiet_htslib():
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    return
                except (OSError, ValueError) as err:
                    raise BioseqError(self._malformed(err), path=self.path) from None
                self.records_read += 1
                yield record

    def _malformed(self, err: Exception) -> str:
        number = self.records_read + 1
        found = _data_line(self.path, number)
        if found is None:
            return f"record {number}: malformed VCF record ({_first_line(err)})"
        line_number, text = found  # htslib's own message ("truncated file") says less
        return f"line {line_number}: malformed VCF record: {text!r}"

    def close(self) -> None:
        self.file.close()


def _open_stream(path: str):
    """A path htslib opens itself (plain, bgzip, BCF), or for plain gzip (which htslib
    cannot open through pysam) a pipe fed by a thread that decompresses it."""
    if not (is_gzip(Path(path)) and not is_bgzf(Path(path))):
        return path
    read_end, write_end = os.pipe()

    def feed() -> None:
        with contextlib.suppress(OSError, EOFError), gzip.open(path, "rb") as source, \
                os.fdopen(write_end, "wb") as sink:
            while block := source.read(1 << 20):
                sink.write(block)

    threading.Thread(target=feed, daemon=True).start()
    return os.fdopen(read_end, "rb")


def _data_line(path: str, number: int) -> tuple[int, str] | None:
    """The `number`-th non-header line of a text VCF (plain or gzip), for error messages."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic.startswith(b"BCF"):
        return None
    opener = gzip.open if magic[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", errors="replace") as handle:
        if magic[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):
                return _nth_data_line(handle, number)
            return None
        return _nth_data_line(handle, number)


def _nth_data_line(handle, number: int) -> tuple[int, str] | None:
    """(line number in the file, the line shortened for a message)."""
    seen = 0
    for line_number, line in enumerate(handle, 1):
        if not line.startswith("#"):
            seen += 1
            if seen == number:
                text = line.rstrip("\r\n").replace("\t", " ")
                return line_number, (text[:77] + "..." if len(text) > 80 else text)
    return None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextlib.contextmanager
def _quiet_htslib():
    """htslib prints its own warnings to stderr; bioseq reports problems itself."""
    previous = pysam.set_verbosity(0)
    try:
        yield
    finally:
        pysam.set_verbosity(previous)


INFO_ID = re.compile(r"[^0-9A-Za-z_.]")


def info_id(prefix: str, column: str) -> str:
    """An INFO key for a score column (VCF keys allow letters, digits, '_' and '.')."""
    return INFO_ID.sub("_", f"{prefix}_{column}")


class AnnotatedVcf:
    """The input records with score INFO fields added (one value per ALT, '.' where an ALT
    was not scored), declared in the header; written bgzip-compressed and tabix-indexed.

    Records are written as htslib formats them, with the new fields appended as text; that
    keeps every record, also those on contigs the input header never declared.
    """

    def __init__(self, reader: VcfReader, path: str | os.PathLike, *,
                 fields: dict[str, tuple[str, str, str]], meta: dict[str, str], prefix: str):
        """`fields`: column -> (Number, Type, Description); `meta`: the ##bioseq_model line."""
        self.path = Path(path)
        declared = reader.file.header.info
        taken = [key for key in (info_id(prefix, c) for c in fields) if key in declared]
        if taken:
            raise BioseqError(f"the VCF already has INFO field {taken[0]}; choose another "
                              "--info-prefix", path=reader.path)
        self.keys = {column: info_id(prefix, column) for column in fields}
        lines = [f"##{prefix.lower()}_model=<" + ",".join(
            f'{k}="{v}"' if k == "Description" else f"{k}={v}" for k, v in meta.items()) + ">"]
        lines += [f'##INFO=<ID={self.keys[c]},Number={n},Type={t},Description="{d}">'
                  for c, (n, t, d) in fields.items()]
        header = str(reader.file.header).rstrip("\n").split("\n")
        text = "\n".join(header[:-1] + lines + header[-1:]) + "\n"
        self.handle = pysam.BGZFile(str(self.path), "wb")
        self.handle.write(text.encode())

    def write(self, record: pysam.VariantRecord, values: dict[str, Sequence]) -> None:
        """`values`: column -> one value per ALT (None = missing) or a single value."""
        extra = ";".join(f"{self.keys[c]}={_info_value(v)}" for c, v in values.items()
                         if not _missing(v))
        fields = str(record).rstrip("\n").split("\t", 8)
        if extra:
            fields[7] = extra if fields[7] == "." else f"{fields[7]};{extra}"
        self.handle.write(("\t".join(fields) + "\n").encode())

    def close(self) -> None:
        """Finish the bgzip file and write its tabix index (`path.tbi`)."""
        self.handle.close()
        try:
            pysam.tabix_index(str(self.path), preset="vcf", force=True)
        except (OSError, ValueError) as err:
            raise BioseqError(f"cannot index the annotated VCF ({_first_line(err)}); is the "
                              "input sorted by position? (bcftools sort)",
                              path=str(self.path)) from None


def _missing(value) -> bool:
    """No value at all (for every ALT): the field is left out of the record."""
    if isinstance(value, (list, tuple)):
        return all(v is None for v in value)
    return value is None


def _info_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_info_value(v) for v in value)
    if value is None or (isinstance(value, float) and value != value):
        return "."
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)
