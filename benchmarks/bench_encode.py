"""FASTA -> stored encoding: bioseq's chunked encoder vs Biopython + a per-character loop.

Measures, on one core: reading alone (bioseq.io.iter_chunks), the encoding kernel alone
(SequenceEncoder.encode on pre-read chunks), the whole encode_dataset (labels, dedup,
store writing) and a straightforward baseline (Bio.SeqIO records, one-hot filled one
character at a time, on a subset).

The kernel and encode_dataset are also timed in fresh child processes: the speed of
4 MB-scale buffers depends on the state of the C allocator (a process that has already
freed a bigger block reuses heap memory; a fresh one takes page faults on every chunk),
and a fresh process is what `bioseq` commands and workflow rules run in. Peak memory of
encode_dataset is read from the children's VmHWM for two file and two chunk sizes.

    python benchmarks/bench_encode.py [--small]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import best_of, machine_info, parse_args, print_table, status_mb, write_fasta
from Bio import SeqIO

from bioseq.alphabets import get_alphabet
from bioseq.config import DatasetConfig, dataset_config
from bioseq.encoding import EncodingPolicy, LengthPolicy, SequenceEncoder
from bioseq.io import CHUNK_CHARACTERS, iter_chunks
from bioseq.store import encode_dataset

WIDTH = 200
TARGET_END_TO_END = 300.0  # M bases/s
TARGET_KERNEL = 800.0  # M bases/s
SMALL_CHUNK = 1_000_000
FULL = {"records": 1_000_000, "baseline": 50_000, "memory": (250_000, 1_000_000),
        "chunks": (CHUNK_CHARACTERS, 4 * CHUNK_CHARACTERS), "repeats": 3}
SMALL = {"records": 50_000, "baseline": 5_000, "memory": (10_000, 50_000),
         "chunks": (CHUNK_CHARACTERS,), "repeats": 2}
Chunk = tuple[list[str], list[str], list[str]]


def config_for(fasta: Path) -> DatasetConfig:
    """The data set the brief asks for: binary labels from `label=` headers, 200-bp windows."""
    return dataset_config("bench", {"fasta": str(fasta), "task": "binary",
                                    "length": {"length": WIDTH}})


def new_encoder() -> SequenceEncoder:
    return SequenceEncoder(get_alphabet("dna"), EncodingPolicy(), LengthPolicy(length=WIDTH))


def encode_all(encoder: SequenceEncoder, chunks: list[Chunk]) -> None:
    """Encode every chunk and drop the result, as encode_dataset does after writing it."""
    for ids, seqs, _ in chunks:
        encoder.encode(ids, seqs, width=WIDTH)


def read_chunks(fasta: Path, repeats: int, chunk: int = CHUNK_CHARACTERS
                ) -> tuple[list[Chunk], float]:
    """All chunks of `fasta` read with bioseq.io.iter_chunks, and the best read seconds."""
    best, chunks = float("inf"), []
    for _ in range(repeats):
        chunks = []  # drop the previous copy before reading again
        started = time.perf_counter()
        chunks = list(iter_chunks(str(fasta), chunk))
        best = min(best, time.perf_counter() - started)
    return chunks, best


def time_end_to_end(fasta: Path, out: Path, repeats: int) -> float:
    """Best seconds of encode_dataset into a fresh store."""
    best = float("inf")
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        encode_dataset(config_for(fasta), out)
        best = min(best, time.perf_counter() - started)
    shutil.rmtree(out, ignore_errors=True)
    return best


def baseline_one_hot(fasta: Path, n: int) -> np.ndarray:
    """The straightforward way: Bio.SeqIO records, a Python loop over every character."""
    index = {"A": 0, "C": 1, "G": 2, "T": 3}
    out = np.zeros((n, 4, WIDTH), np.uint8)
    for i, record in enumerate(SeqIO.parse(str(fasta), "fasta")):
        if i == n:
            break
        for j, char in enumerate(str(record.seq)[:WIDTH]):
            k = index.get(char.upper())
            if k is not None:
                out[i, k, j] = 1
    return out


def check_same_encoding(baseline: np.ndarray, chunk: Chunk) -> None:
    """The baseline and bioseq must agree on the records both encoded."""
    n = min(len(baseline), len(chunk[0]))
    tokens = new_encoder().encode(chunk[0][:n], chunk[1][:n], width=WIDTH).tokens
    expected = np.eye(4, dtype=np.uint8)[tokens].transpose(0, 2, 1)  # (n, 4, WIDTH)
    if not np.array_equal(expected, baseline[:n]):
        raise SystemExit("bioseq and the baseline disagree on the encoding")


def child(mode: str, fasta: str, chunk: str, extra: str) -> None:
    """Fresh-process measurements, printed as one JSON line.

    kernel: read `fasta` in `chunk`-character chunks, best of `extra` encode passes.
    encode: encode_dataset into directory `extra`; seconds, RSS after imports and peak RSS.
    """
    torch.set_num_threads(1)
    if mode == "kernel":
        chunks, _ = read_chunks(Path(fasta), 1, int(chunk))
        encoder = new_encoder()
        print(json.dumps({"seconds": best_of(lambda: encode_all(encoder, chunks), int(extra))}))
        return
    import_mb = status_mb("VmRSS")
    started = time.perf_counter()
    encode_dataset(config_for(Path(fasta)), extra, chunk_characters=int(chunk))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "import_mb": import_mb, "peak_mb": status_mb("VmHWM")}))


def run_child(*args: object) -> dict:
    """Run `child(*args)` in a fresh Python process and return its JSON result."""
    command = [sys.executable, __file__, "--child", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bioseq_rows(fasta: Path, tmp: Path, repeats: int) -> tuple[list[list], Chunk]:
    """Speed rows for reading, the kernel and encode_dataset; also the first chunk read."""
    chunks, read_s = read_chunks(fasta, 2)
    n = sum(len(chunk[0]) for chunk in chunks)
    mb = sum(len(s) for chunk in chunks for s in chunk[1]) / 1e6
    warm_s = best_of(lambda: encode_all(new_encoder(), chunks), repeats)
    first, chunks = chunks[0], []  # free the text before the other measurements
    fresh_s = run_child("kernel", fasta, CHUNK_CHARACTERS, repeats)["seconds"]
    fresh_small_s = run_child("kernel", fasta, SMALL_CHUNK, repeats)["seconds"]
    end_s = time_end_to_end(fasta, tmp / "store", repeats)
    kernel_target = f">= {TARGET_KERNEL:.0f}"
    rows = [
        ["read only (io.iter_chunks)", n, mb, read_s, mb / read_s, ""],
        [f"kernel, {CHUNK_CHARACTERS:,}-char chunks, fresh process", n, mb, fresh_s,
         mb / fresh_s, kernel_target],
        [f"kernel, {SMALL_CHUNK:,}-char chunks, fresh process", n, mb, fresh_small_s,
         mb / fresh_small_s, kernel_target],
        [f"kernel, {CHUNK_CHARACTERS:,}-char chunks, warm allocator", n, mb, warm_s,
         mb / warm_s, kernel_target],
        ["end to end (encode_dataset), warm allocator", n, mb, end_s, mb / end_s,
         f">= {TARGET_END_TO_END:.0f}"],
    ]
    return rows, first


def baseline_row(fasta: Path, n: int, first: Chunk) -> list:
    """Speed row of Bio.SeqIO + the per-character loop on the first `n` records."""
    started = time.perf_counter()
    baseline = baseline_one_hot(fasta, n)
    seconds = time.perf_counter() - started
    check_same_encoding(baseline, first)
    mb = n * WIDTH / 1e6
    return ["baseline: Bio.SeqIO + per-char loop", n, mb, seconds, mb / seconds, ""]


def memory_rows(tmp: Path, sizes: tuple[int, ...], chunks: tuple[int, ...]) -> list[list]:
    """encode_dataset in a fresh process for every file size and chunk size."""
    rows = []
    for n in sizes:
        fasta = tmp / f"mem_{n}.fa"
        size_mb = write_fasta(fasta, n, WIDTH) / 1e6
        for chunk in chunks:
            result = run_child("encode", fasta, chunk, tmp / "mem_store")
            shutil.rmtree(tmp / "mem_store", ignore_errors=True)
            rows.append([n, size_mb, chunk, result["seconds"], n * WIDTH / 1e6 / result["seconds"],
                         result["import_mb"], result["peak_mb"],
                         result["peak_mb"] - result["import_mb"]])
        fasta.unlink()
    return rows


def verdict(name: str, value: float, target: float) -> str:
    status = "met" if value >= target else "NOT met"
    return f"target {name} >= {target:.0f} M bases/s: {status} ({value:.0f})"


def report(rows: list[list], memory: list[list], records: int) -> None:
    """Print both tables, the target verdicts and the ratio line."""
    fresh = next(r for r in memory if r[0] == records and r[2] == CHUNK_CHARACTERS)
    mb = records * WIDTH / 1e6
    warm_rate = rows[-2][4]
    rows.insert(-1, ["end to end (encode_dataset), fresh process", records, mb, fresh[3],
                     fresh[4], f">= {TARGET_END_TO_END:.0f}"])
    print_table(["step", "records", "M bases", "best s", "M bases/s", "target"], rows)
    print(verdict("end to end (fresh process)", fresh[4], TARGET_END_TO_END))
    print(verdict("end to end (warm allocator)", warm_rate, TARGET_END_TO_END))
    print(verdict("kernel (fresh process, default chunks)", rows[1][4], TARGET_KERNEL))
    print("\npeak memory of encode_dataset (fresh child process, VmHWM):")
    print_table(["records", "FASTA MB", "chunk chars", "seconds", "M bases/s",
                 "RSS after import MB", "peak RSS MB", "peak - import MB"], memory)
    print(f"\nratio: {fresh[4] / rows[-1][4]:.1f}x  (end to end in a fresh process vs "
          "baseline, M bases/s)")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    size = SMALL if args.small else FULL
    torch.set_num_threads(1)  # the encoder is single-threaded; keep torch from competing
    print("bench_encode: FASTA -> uint8 token store (one core)")
    print(machine_info())
    with tempfile.TemporaryDirectory(prefix="bioseq-bench-") as name:
        tmp = Path(name)
        fasta = tmp / "input.fa"
        size_mb = write_fasta(fasta, size["records"], WIDTH) / 1e6
        print(f"input: {size['records']:,} records x {WIDTH} bp, {size_mb:.1f} MB FASTA "
              f"(headers '>seqN label=0|1')\n")
        rows, first = bioseq_rows(fasta, tmp, size["repeats"])
        rows.append(baseline_row(fasta, size["baseline"], first))
        fasta.unlink()
        memory = memory_rows(tmp, size["memory"], size["chunks"])
    report(rows, memory, size["records"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:6])
    else:
        main()
