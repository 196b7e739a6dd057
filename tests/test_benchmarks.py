"""The benchmark scripts still run (their --small mode); their timings live in benchmarks/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("bench_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.stem)
def test_benchmark_runs_and_prints_a_ratio(script: Path):
    result = subprocess.run([sys.executable, str(script), "--small"], capture_output=True,
                            text=True, timeout=300, cwd=script.parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ratio:" in result.stdout
