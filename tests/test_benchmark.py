"""scripts/benchmark.py end to end, shrunk: tiny model, tiny corpus, 2 repeats (checks the
harness runs and writes its keys, not any speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import tiny_corpus_args

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"
KEYS = ("matmul_gflops_fp32", "train_tokens_per_sec_fp32", "train_tokens_per_sec_bf16",
        "train_fraction_of_peak_fp32", "greedy_sents_per_sec", "beam5_sents_per_sec", "peak_rss_mb",
        "data_prep_first_seconds", "data_prep_cached_seconds")  # fmt: skip


@pytest.mark.slow
def test_benchmark_smoke_writes_its_keys(tmp_path: Path):
    out = tmp_path / "bench.json"
    # one thread: on a busy 2-core machine two OpenMP threads per process stall each other badly
    args = ["--smoke", "--device", "cpu", "--threads", "1", "--split", "test", "--json", str(out),
            *tiny_corpus_args(tmp_path)]  # fmt: skip
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "HYDRA_FULL_ERROR": "1"})  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    results = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(results[key], float) and results[key] > 0, key
    for key in ("outside_step_fraction", "outside_step_fraction_incl_validation"):  # parts rounded to 0.1 s
        assert 0 <= results[key] <= 1, key
    details = results["details"]
    assert details["mode"] == "smoke" and details["machine"]["torch"] and details["machine"]["cpu"]
    assert details["stats"]["train_tokens_per_sec_fp32"]["n"] == 2 * len(details["train_batches"]["sample"])
    for stat in details["stats"].values():
        assert stat["min"] <= stat["median"] <= stat["max"]
    assert details["decode"]["sentences"] == 30 and "randomly initialised" in details["decode"]["model"]
    assert "train fp32" in proc.stdout and "median" in proc.stdout  # the table
