"""bioseq.allocator: freed activations stay in the heap, so batches stop faulting pages in."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# CNN batches in a fresh process: minor page faults per batch, after three warm-up batches
FAULTS_PER_BATCH = """
import resource, sys
import torch
import torch.nn.functional as F
if sys.argv[1] == "keep":
    from bioseq.allocator import keep_freed_memory
    assert keep_freed_memory()
torch.set_num_threads(1)
x, w1, w2 = torch.randn(128, 4, 200), torch.randn(64, 4, 7), torch.randn(64, 64, 7)
def batch():
    h = F.max_pool1d(torch.relu(F.conv1d(x, w1, padding=3)), 2)
    return F.max_pool1d(torch.relu(F.conv1d(h, w2, padding=3)), 2).sum()
for _ in range(3):
    batch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    batch()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_batch(mode: str) -> float:
    # glibc's defaults in the child: no malloc tunables or preloaded allocator from outside
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    result = subprocess.run([sys.executable, "-c", FAULTS_PER_BATCH, mode], env=env,
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc only")
def test_kept_memory_stops_the_page_faults_of_each_batch():
    # 6.5 MB of activations a batch: 4,171 faults each by default here, none once kept
    assert faults_per_batch("default") > 1000
    assert faults_per_batch("keep") < 10
