"""Reading FASTA and label tables; writing outputs atomically."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pyfastx

from .errors import BioseqError

_GZIP_MAGIC = b"\x1f\x8b"
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
CHUNK_CHARACTERS = 1_000_000  # per-chunk buffers stay reused by the allocator (4 MB: 2.6x slower)


class FastaRecord(NamedTuple):
    id: str
    sequence: str
    description: str  # header text after the id ("" when absent)


def check_fasta(path: str | os.PathLike) -> None:
    """Fail with a one-line error unless `path` is a readable, non-empty FASTA file."""
    path = Path(path)
    if not path.is_file():
        raise BioseqError("no such file", path=str(path))
    with open(path, "rb") as handle:
        magic = handle.read(2)
    opener = gzip.open if magic == _GZIP_MAGIC else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4096).lstrip()
    except (OSError, EOFError) as err:
        raise BioseqError(f"cannot read compressed file ({err})", path=str(path)) from None
    if not head:
        raise BioseqError("empty file", path=str(path))
    if not head.startswith(b">"):
        first = head[:1].decode("latin-1")
        raise BioseqError(f"not a FASTA file (first character {first!r}, expected '>')",
                          path=str(path))
    if magic == _GZIP_MAGIC:
        _check_gzip_complete(path)


def _check_gzip_complete(path: Path) -> None:
    """pyfastx stops silently where a gzip stream breaks off, so check the ending first.

    A BGZF file that ends with its standard end-of-file block is complete (one cheap read);
    anything else is decompressed once, member by member, without keeping the output.
    """
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) >= len(_BGZF_EOF):
            handle.seek(-len(_BGZF_EOF), os.SEEK_END)
            if handle.read() == _BGZF_EOF:
                return
        handle.seek(0)
        stream = zlib.decompressobj(wbits=31)
        try:
            while block := handle.read(1 << 20):
                while block:
                    if stream.eof:  # the previous member ended: the next one starts here
                        stream = zlib.decompressobj(wbits=31)
                    stream.decompress(block)  # output dropped: only the ending matters
                    block = stream.unused_data if stream.eof else b""
        except zlib.error as err:
            raise BioseqError(f"corrupt gzip data ({err})", path=str(path)) from None
    if not stream.eof:
        raise BioseqError("truncated gzip file (the compressed stream ends early)", path=str(path))


def iter_fasta(path: str | os.PathLike) -> Iterator[FastaRecord]:
    """Records of a plain, gzip or bgzip FASTA file, one at a time."""
    for ids, seqs, descriptions in iter_chunks(path):
        for record in zip(ids, seqs, descriptions, strict=True):
            yield FastaRecord(record[0], record[1], record[2] or "")


Chunk = tuple[list[str], list[str], list[str | None]]  # ids, sequences, descriptions


def iter_chunks(path: str, chunk_characters: int = CHUNK_CHARACTERS) -> Iterator[Chunk]:
    """(ids, sequences, descriptions) lists of about `chunk_characters` sequence characters.

    The hot path of reading: pyfastx's tuples go straight into three flat lists of strings
    (keeping the tuples instead makes the garbage collector scan them, twice as slow).
    A description is None when the header has none.
    """
    check_fasta(path)
    ids: list[str] = []
    seqs: list[str] = []
    descriptions: list[str | None] = []
    add_id, add_seq, add_description = ids.append, seqs.append, descriptions.append
    size = 0
    try:
        for record_id, seq, description in pyfastx.Fastx(str(path), comment=True):
            add_id(record_id)
            add_seq(seq)
            add_description(description)
            size += len(seq)
            if size >= chunk_characters:
                yield ids, seqs, descriptions
                ids, seqs, descriptions, size = [], [], [], 0
                add_id, add_seq, add_description = ids.append, seqs.append, descriptions.append
    except (RuntimeError, UnicodeDecodeError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BioseqError(f"cannot parse FASTA ({first})", path=str(path)) from None
    if ids:
        yield ids, seqs, descriptions


def count_records(path: str | os.PathLike) -> int:
    """Records of a plain or gzip FASTA file: lines that start with '>' (no parsing)."""
    check_fasta(path)
    with open(path, "rb") as handle:
        opener = gzip.open if handle.read(2) == _GZIP_MAGIC else open
    count, previous = 0, b"\n"
    with opener(path, "rb") as handle:
        while block := handle.read(1 << 22):
            # a header right after a block boundary has its newline in the previous block
            count += block.count(b"\n>") + (previous == b"\n" and block[:1] == b">")
            previous = block[-1:]
    return count


def shard_bounds(records: int, shard: int, shards: int) -> tuple[int, int]:
    """[begin, end) of shard `shard` (1-based) of `shards` near-equal contiguous parts."""
    if not 1 <= shard <= shards:
        raise BioseqError(f"shard {shard}/{shards}: the shard must be between 1 and {shards}")
    return (shard - 1) * records // shards, shard * records // shards


def concatenate(parts: list[str | os.PathLike], out: str | os.PathLike, *,
                header_lines: int = 0) -> None:
    """Write `parts` one after another into `out` (atomically), keeping the first
    `header_lines` lines once; every part must have the same header."""
    with atomic_path(out) as tmp, open(tmp, "wb") as target:
        header = None
        for part in parts:
            with open(part, "rb") as source:
                lines = [source.readline() for _ in range(header_lines)]
                if header is None:
                    header = lines
                    target.writelines(lines)
                elif lines != header:
                    raise BioseqError(f"its header differs from that of {parts[0]}",
                                      path=str(part))
                shutil.copyfileobj(source, target, 1 << 22)


def read_fasta(path: str | os.PathLike) -> list[FastaRecord]:
    return list(iter_fasta(path))


def header_fields(description: str) -> dict[str, str]:
    """`key=value` fields of a FASTA header description (`>id label=EI split=test`); the
    first of a repeated key wins, as in label parsing."""
    fields: dict[str, str] = {}
    for word in description.split():
        key, sep, value = word.partition("=")
        if sep:
            fields.setdefault(key, value)
    return fields


def read_table(path: str | os.PathLike, *, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A TSV or CSV (chosen by extension) read as strings; checks required columns."""
    path = Path(path)
    if not path.is_file():
        raise BioseqError("no such file", path=str(path))
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BioseqError(f"cannot parse table ({first})", path=str(path)) from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise BioseqError(
            f"unknown column(s) {', '.join(map(repr, missing))}; the table has "
            f"{', '.join(map(repr, table.columns))}", path=str(path),
        )
    return table


def _check_replaceable(final: Path, directory: bool, marker: str | None) -> None:
    """Refuse to put an output where it would destroy something that is not an output."""
    if not final.exists():
        return
    if not directory:
        if final.is_dir():
            raise BioseqError("is a directory, not a file to write", path=str(final))
        return
    resolved, here = final.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise BioseqError("refusing to replace the current directory or one of its parents",
                          path=str(final))
    earlier_output = final.is_dir() and (
        not any(final.iterdir()) or (marker is not None and (final / marker).is_file()))
    if not earlier_output:
        raise BioseqError("exists and is not an earlier output of this step; refusing to "
                          "replace it (choose another path or remove it)", path=str(final))


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, directory: bool = False,
                marker: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it into place only on success.

    An existing directory is replaced only when it is empty or holds `marker` (a file
    every earlier output of the same kind has), never the current directory.
    """
    final = Path(final)
    _check_replaceable(final, directory, marker)
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.tmp-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual mode
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp
        if directory and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if directory else tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
