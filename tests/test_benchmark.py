"""scripts/benchmark.py end to end, shrunk: tiny model, tiny corpus, 2 repeats (checks the
harness runs and writes its keys, not any speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
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
    for name in ("greedy", "beam5"):  # the decoding FLOP rate: counted work over timed seconds
        assert results[f"{name}_gflops"] > 0 and 0 < results[f"{name}_fraction_of_peak"] < 2, name
        assert details["decode"][name]["hypothesis_steps"] >= 30
    assert "train fp32" in proc.stdout and "median" in proc.stdout  # the table


@pytest.mark.parametrize("beam_size", [1, 3])
def test_counted_work_counts_every_decoder_row_and_its_flops(beam_size):
    """With EOS made impossible every sentence runs to its length cap, so the rows stepped are
    known in advance: greedy one per sentence and step, beam one at the first step, then K."""
    sys.path.insert(0, str(SCRIPT.parent))
    from bench_decode import counted_work

    from mt.config import ModelConfig
    from mt.data.collate import Batch
    from mt.data.tokenizer import EOS_ID
    from mt.models.flops import decode_token_flops, encode_flops
    from mt.models.seq2seq import build_model
    from mt.search.base import SearchConfig, max_lengths
    from mt.search.translate import decode_batch

    torch.manual_seed(0)
    model = build_model(ModelConfig(emb_size=16, enc_hidden=16, dec_hidden=32), 30, 30).eval()
    with torch.no_grad():
        model.output.bias[EOS_ID] = -1e4
    S = 7
    lens = torch.tensor([S, S, S])  # unpadded, so every step attends over S real tokens
    src = torch.randint(4, 30, (3, S))
    batch = Batch(src, lens, torch.ones(3, S, dtype=torch.bool), None, None, None, 0, torch.arange(3))
    search = SearchConfig(beam_size, 1, max_len_a=1.0, max_len_b=2, precision="fp32")
    with counted_work(model) as work:
        decode_batch(model, batch, search)
    steps = int(max_lengths(lens, search)[0])  # the same cap for all three
    rows = 3 * (1 + beam_size * (steps - 1))
    assert work["hypothesis_steps"] == rows
    expected = encode_flops(model, 3 * S, 3) + rows * decode_token_flops(model, S)
    assert work["flops"] == pytest.approx(expected)
    assert "encode" not in vars(model) and "next_scores" not in vars(model)  # the methods are back
    # on a shortlist of 4 specials + 8 frequent ids, the output projection has 12 rows, not 30
    from mt.search.shortlist import NO_ID, LexicalTable, Shortlist

    table = LexicalTable(torch.arange(4, 20), torch.full((30, 2), NO_ID), "x", "de", "en", 1, 1)
    with counted_work(model) as work:
        decode_batch(model, batch, search, Shortlist(table, frequent=8, per_source=0))
    assert work["hypothesis_steps"] == rows
    expected = encode_flops(model, 3 * S, 3) + rows * decode_token_flops(model, S, 12)
    assert work["flops"] == pytest.approx(expected) and decode_token_flops(model, S, 12) < decode_token_flops(
        model, S
    )
