"""Shared helpers for the benchmark scripts: synthetic data, timing, tables, machine info."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

DNA = np.frombuffer(b"ACGT", np.uint8)  # token i of the dna alphabet is DNA[i]


def parse_args(description: str,
               extra: Callable[[argparse.ArgumentParser], None] | None = None
               ) -> argparse.Namespace:
    """The command line every benchmark shares: `--small` for a quick smoke test (`extra`
    adds a script's own options)."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--small", action="store_true",
                        help="tiny inputs; finishes in well under 20 s (smoke test)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def machine_info() -> str:
    """One block of text describing the machine, the libraries and the current load."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        f"date: {datetime.date.today().isoformat()}   python {platform.python_version()}   "
        f"{platform.system()} {platform.machine()}",
        f"cpu: {_cpu_model()}; cpu_count={os.cpu_count()}, "
        f"usable={usable}; load average {load}",
        f"torch {torch.__version__} (threads={torch.get_num_threads()}, "
        f"cuda={'yes' if torch.cuda.is_available() else 'no'}); numpy {np.__version__}",
    ])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def status_mb(key: str) -> float:
    """A memory line of /proc/self/status in MB (VmHWM is this image's peak RSS; unlike
    ru_maxrss it does not carry over the parent's RSS from before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Best wall-clock seconds of `repeats` calls of `fn` (time.perf_counter)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def random_tokens(n: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, length) uint8 tokens 0..3 (A, C, G, T) and (n,) int64 labels 0/1."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 4, (n, length), dtype=np.uint8)
    return tokens, rng.integers(0, 2, n)


def random_sequences(n: int, length: int, seed: int = 0) -> list[str]:
    """`n` random DNA strings of `length` bases."""
    tokens, _ = random_tokens(n, length, seed)
    text = DNA[tokens].tobytes().decode("ascii")
    return [text[i * length : (i + 1) * length] for i in range(n)]


def write_fasta(path: Path, n: int, length: int, *, seed: int = 0,
                block: int = 100_000) -> int:
    """Write `n` random records (`>seq123 label=0`, one sequence line) -> bytes written.

    Written block by block from one generator, so a smaller file is a prefix of a bigger one.
    """
    rng = np.random.default_rng(seed)
    written = 0
    with open(path, "wb") as handle:
        for begin in range(0, n, block):
            size = min(block, n - begin)
            body = np.full((size, length + 1), ord("\n"), np.uint8)
            body[:, :length] = DNA[rng.integers(0, 4, (size, length), dtype=np.uint8)]
            labels = rng.integers(0, 2, size)
            rows = body.tobytes()
            step = length + 1
            text = b"".join(b">seq%d label=%d\n%s" % (begin + i, labels[i],
                                                       rows[i * step : (i + 1) * step])
                            for i in range(size))
            written += handle.write(text)
    return written


class OneHotDataset(Dataset):
    """The per-sample way: one float32 (4, width) one-hot tensor and a float label per item.

    F.one_hot over 4 classes is only right for A/C/G/T tokens (0..3), which is all the
    synthetic data holds.
    """

    def __init__(self, tokens: np.ndarray, labels: np.ndarray):
        self.tokens, self.labels = tokens, labels

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = torch.from_numpy(np.asarray(self.tokens[i], dtype=np.int64))
        x = F.one_hot(row, num_classes=4).T.float()  # (4, width)
        return x, torch.tensor(self.labels[i], dtype=torch.float32)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for k, row in enumerate(cells):
        line = "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print(line.rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
