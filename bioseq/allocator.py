"""The C allocator's settings for a process that runs models on the CPU.

A forward pass allocates the same large activations batch after batch. glibc's malloc
hands freed memory at the top of its heap back to the kernel once more than its trim
threshold (a few MB, adjusted as it goes) lies free there, and serves large requests with
fresh mmaps, so the next batch touches new pages again: in `score_vcf` with a 200-bp CNN,
0.7-30 page faults per variant from run to run (each a trip into the kernel), which made
it up to 1.45x slower (benchmarks/RESULTS.md). Keeping freed memory in the heap removes
them.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit


def keep_freed_memory(trim_threshold_mb: int = 256) -> bool:
    """Ask glibc to keep up to `trim_threshold_mb` of freed heap for reuse (it stays in the
    process's RSS) and to serve requests below 32 MB from the heap, for the rest of the
    process. The CLI and the workflow steps call it; call it once in a notebook that
    scores many variants or sequences. False where the C library is not glibc (nothing
    changed) or glibc refused a setting."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold_mb << 20))
