"""The same code on CUDA: device selection, a training step, search and a real `mt-train` run.

Every test here is marked `cuda` and skipped where no CUDA device exists (the CI machines and
the 2-core development machines); run them with `pytest -m cuda` on a GPU machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from clihelpers import TINY_MODEL, run, tiny_corpus_args

from mt.config import AttentionConfig, ModelConfig
from mt.data.collate import Batch
from mt.models.attention import ATTENTION_REGISTRY
from mt.models.seq2seq import build_model
from mt.runtime import autocast, resolve_device
from mt.search.base import SearchConfig
from mt.search.beam import beam_search
from mt.search.greedy import greedy_search

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
V, BOS, EOS = 40, 2, 3


@pytest.fixture(autouse=True)
def _no_tf32():
    """Full fp32 on the GPU for the CPU comparisons (cuDNN's RNNs may use TF32 by default).
    Set and restored by hand: these flags are properties that monkeypatch cannot delete."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def make_model(attention: str, seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(attention=AttentionConfig(name=attention), emb_size=16, enc_hidden=16, dec_hidden=32,
                      dropout=0.0, emb_dropout=0.0)  # fmt: skip
    return build_model(cfg, V, V)


def batch(B: int = 6, S: int = 9, T: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src_lens = torch.randint(1, S + 1, (B,), generator=g)
    src_lens[0] = S
    src_mask = torch.arange(S)[None] < src_lens[:, None]
    src = torch.randint(4, V, (B, S), generator=g).masked_fill(~src_mask, 0)
    tgt_lens = torch.randint(1, T + 1, (B,), generator=g)
    tgt_lens[-1] = T
    tgt_mask = torch.arange(T)[None] < tgt_lens[:, None]
    tgt = torch.randint(4, V, (B, T), generator=g).masked_fill(~tgt_mask, 0)
    tgt_in = torch.cat([torch.full((B, 1), BOS), tgt[:, :-1]], 1).masked_fill(~tgt_mask, 0)
    return src, src_lens, src_mask, tgt_in, tgt, tgt_mask


def train_batch(device: torch.device | str) -> Batch:
    """`batch()` as a Batch with targets, on `device`."""
    src, src_lens, src_mask, tgt_in, tgt_out, tgt_mask = batch()
    n_tgt, rows = int(tgt_mask.sum()), torch.arange(src.size(0))
    return Batch(src, src_lens, src_mask, tgt_in, tgt_out, tgt_mask, n_tgt, rows).to(device)


def test_auto_picks_cuda() -> None:
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_loss_and_gradients_match_cpu(attention: str) -> None:
    """fp32 loss and gradients on CUDA equal the CPU's within float tolerance."""
    grads = {}
    for device in ("cpu", "cuda"):
        model = make_model(attention).to(device).train()
        loss, _ = model.loss(train_batch(device), label_smoothing=0.1)
        loss.backward()
        grads[device] = (loss.item(), {n: p.grad.cpu() for n, p in model.named_parameters()})
    assert grads["cuda"][0] == pytest.approx(grads["cpu"][0], rel=1e-4)
    for name, g in grads["cpu"][1].items():
        torch.testing.assert_close(grads["cuda"][1][name], g, rtol=1e-3, atol=1e-5, msg=name)


def test_bf16_autocast_step_is_finite_and_close_to_fp32() -> None:
    device = torch.device("cuda")
    model = make_model("bahdanau").to(device).train()
    pairs = train_batch(device)
    fp32, _ = model.loss(pairs)
    with autocast(device, "bf16"):
        bf16, _ = model.loss(pairs)
    bf16.backward()
    assert torch.isfinite(bf16)
    assert bf16.item() == pytest.approx(fp32.item(), rel=2e-2)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("attention", ["bahdanau", "luong_general"])
def test_search_matches_cpu(attention: str) -> None:
    """Greedy and beam-5 outputs on CUDA are the CPU's (fp32, a random model)."""
    out = {}
    for device in ("cpu", "cuda"):
        model = make_model(attention).to(device).eval()
        sources = train_batch(device)  # the searches read its source fields only
        greedy = greedy_search(model, sources, SearchConfig(max_len_a=1.0, max_len_b=5))
        beam = beam_search(model, sources, SearchConfig(beam_size=5, max_len_a=1.0, max_len_b=5))
        out[device] = ([h.tokens for h in greedy], [b[0].tokens for b in beam])
    assert out["cuda"] == out["cpu"]


def test_mt_train_runs_on_cuda(tmp_path: Path) -> None:
    """A real `mt-train` with trainer.device=auto trains on the GPU and writes its results."""
    run_dir = tmp_path / "run"
    model = [a for a in TINY_MODEL if not a.startswith("trainer.precision=")] + ["trainer.precision=bf16"]
    args = tiny_corpus_args(tmp_path) + [f"hydra.run.dir={run_dir}"] + model
    proc = run("mt-train", args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["device"].startswith("cuda")
    assert results["train"]["steps"] == 30
