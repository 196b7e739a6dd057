"""VCF in (pysam: VCF, VCF.gz, BCF) and the annotated VCF out (bgzip + tabix)."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import threading
import zlib
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
        self.feeder: _GzipFeeder | None = None
        source: object = self.path
        if is_gzip(Path(path)) and not is_bgzf(Path(path)):
            self.feeder = _GzipFeeder(self.path)
            source = self.feeder.stream
        try:
            with _quiet_htslib():
                self.file = pysam.VariantFile(source)
        except (OSError, ValueError) as err:
            if self.feeder is not None:  # the header never came: say why
                self.feeder.check()
            raise BioseqError(f"cannot read VCF header ({_first_line(err)})",
                              path=self.path) from None
        self.records_read = 0

    def __iter__(self) -> Iterator[pysam.VariantRecord]:
        """Records in file order; refuses unsorted input (the annotated VCF is indexed)."""
        records = iter(self.file)
        seen: dict[str, int] = {}  # contig -> last position (contigs must come in blocks)
        last = None
        with _quiet_htslib():
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    if self.feeder is not None:
                        self.feeder.check()
                    return
                except (OSError, ValueError) as err:
                    if self.feeder is not None:  # a cut-off last line: the file is cut
                        self.feeder.check()
                    raise BioseqError(self._malformed(err), path=self.path) from None
                self.records_read += 1
                chrom, pos = record.chrom, record.pos
                if chrom != last and chrom in seen or pos < seen.get(chrom, 0):
                    raise BioseqError(self._unsorted(chrom, pos, seen.get(chrom, 0)),
                                      path=self.path)
                seen[chrom], last = pos, chrom
                yield record

    def _unsorted(self, chrom: str, pos: int, before: int) -> str:
        found = _data_line(self.path, self.records_read)
        where = f"line {found[0]}" if found else f"record {self.records_read}"
        return (f"{where}: VCF is not sorted ({chrom}:{pos} after {chrom}:{before}); the "
                "annotated VCF is tabix-indexed, so sort it first (bcftools sort)")

    def _malformed(self, err: Exception) -> str:
        number = self.records_read + 1
        found = _data_line(self.path, number)
        if found is None:
            return f"record {number}: malformed VCF record ({_first_line(err)})"
        line_number, text = found  # htslib's own message ("truncated file") says less
        return f"line {line_number}: malformed VCF record: {text!r}"

    def close(self) -> None:
        self.file.close()


class _GzipFeeder:
    """Plain gzip (not bgzip), which htslib cannot open through pysam: a thread
    decompresses it into a pipe. A damaged or truncated file is an error at the end, not
    a shorter VCF."""

    def __init__(self, path: str):
        self.path, self.error = path, None
        read_end, write_end = os.pipe()
        self.stream = os.fdopen(read_end, "rb")
        self.thread = threading.Thread(target=self._feed, args=(write_end,), daemon=True)
        self.thread.start()

    def _feed(self, write_end: int) -> None:
        with os.fdopen(write_end, "wb") as sink:
            try:
                with gzip.open(self.path, "rb") as source:
                    while block := source.read(1 << 16):
                        sink.write(block)
            except BrokenPipeError:  # the reader stopped early (an error of its own)
                pass
            except (OSError, EOFError, zlib.error) as err:
                self.error = err

    def check(self) -> None:
        self.thread.join(timeout=60)
        if self.error is not None:
            raise BioseqError(f"damaged or truncated gzip ({_first_line(self.error)})",
                              path=self.path)


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
VALID_PREFIX = re.compile(r"^[A-Za-z][0-9A-Za-z_]*$")


def _escape(text: str) -> str:
    """A quoted VCF header value: backslashes and double quotes escaped, one line."""
    return " ".join(str(text).replace("\\", "\\\\").replace('"', '\\"').split())


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
        if not VALID_PREFIX.match(prefix):
            raise BioseqError(f"INFO prefix must be letters, digits and '_' starting with a "
                              f"letter, not '{prefix}'")
        self.keys = {column: info_id(prefix, column) for column in fields}
        keys = list(self.keys.values())
        clash = [c for c in fields if keys.count(self.keys[c]) > 1]
        if clash:
            same = [c for c in clash if self.keys[c] == self.keys[clash[0]]]
            raise BioseqError(f"score columns {' and '.join(map(repr, same))} give the same "
                              f"VCF INFO key {self.keys[clash[0]]}; rename the model's classes")
        taken = [key for key in self.keys.values() if key in reader.file.header.info]
        if taken:
            raise BioseqError(f"the VCF already has INFO field {taken[0]}; choose another "
                              "--info-prefix", path=reader.path)
        lines = [f"##{prefix.lower()}_model=<" + ",".join(
            f'{k}="{_escape(v)}"' for k, v in meta.items()) + ">"]
        lines += [f'##INFO=<ID={self.keys[c]},Number={n},Type={t},Description="{_escape(d)}">'
                  for c, (n, t, d) in fields.items()]
        header = str(reader.file.header).rstrip("\n").split("\n")
        if re.match(r"##fileformat=VCFv4\.0\s*$", header[0]):  # Number=A needs VCF 4.1+
            header[0] = "##fileformat=VCFv4.2"
        text = "\n".join(header[:-1] + lines + header[-1:]) + "\n"
        self.handle = pysam.BGZFile(str(self.path), "wb")
        self.handle.write(text.encode())

    def write(self, record: pysam.VariantRecord, values: dict[str, Sequence] | str) -> None:
        """`values`: column -> one value per ALT (None = missing) or a single value; or the
        INFO text to add, formatted already (`bioseq.variants.info_template`)."""
        extra = values if isinstance(values, str) else ";".join(
            f"{self.keys[c]}={_info_value(v)}" for c, v in values.items() if not _missing(v))
        fields = str(record).rstrip("\n").split("\t", 8)
        if extra:
            fields[7] = extra if fields[7] == "." else f"{fields[7]};{extra}"
        self.handle.write(("\t".join(fields) + "\n").encode())

    def close(self) -> None:
        """Finish the bgzip file and write its tabix index (`path.tbi`)."""
        self.handle.close()
        try:
            with _quiet_htslib():
                pysam.tabix_index(str(self.path), preset="vcf", force=True)
        except (OSError, ValueError) as err:
            raise BioseqError(f"cannot index the annotated VCF ({_first_line(err)})",
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


def join_annotated_vcfs(parts: list[Path], out: Path) -> None:
    """bgzip VCFs with one header (the first part's) and their records in part order,
    into `out` (bgzip) and `out.tbi`: the shards of one annotated VCF made whole."""
    plain = out.with_suffix("")  # annotated.vcf beside annotated.vcf.gz, removed below
    with open(plain, "wb") as sink:
        for k, part in enumerate(parts):
            with gzip.open(part, "rb") as source:
                for line in source:
                    if not line.startswith(b"#") or k == 0:
                        sink.write(line)
    try:
        with _quiet_htslib():
            pysam.tabix_compress(str(plain), str(out), force=True)
            pysam.tabix_index(str(out), preset="vcf", force=True)
    except (OSError, ValueError) as err:
        raise BioseqError(f"cannot index the joined VCF ({_first_line(err)})",
                          path=str(out)) from None
    finally:
        plain.unlink(missing_ok=True)
