#!/usr/bin/env python
"""Training-step speed of the default model against this machine's matmul peak.

Measures, in one run: the fp32 matrix-multiply throughput on shapes of the model (the
peak), then forward + backward + Adam steps of the default model (embeddings 256,
encoder 256 per direction, decoder 512, 8k vocabularies) on a length-bucketed batch of
about 6000 target tokens with Multi30k-like lengths, and prints tokens/s, model GFLOP/s
(counted from the layer shapes, mt.models.flops) and the fraction of the peak.

    python scripts/bench_model.py                 # fp32 and bf16, default model
    python scripts/bench_model.py --json out.json --attention luong_general
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mt.config import AttentionConfig, ModelConfig
from mt.models.flops import train_step_flops
from mt.models.seq2seq import build_model
from mt.runtime import autocast, tune_allocator


def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, reps: int = 20) -> float:
    """Median GFLOP/s of (m, k) @ (k, n) in `dtype`."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    out = torch.empty(m, n, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b, out=out)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * m * k * n / statistics.median(times) / 1e9


def model_shapes(batch_sents: int, batch_tokens: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of the large matrix multiplies of a default-model training step."""
    return [
        (batch_sents, 512, 1536),  # decoder recurrent / input-feeding projection per step
        (batch_sents, 1024, 512),  # attentional layer W_c per step
        (batch_tokens, 512, 8000),  # output projection over all target tokens
        (batch_tokens, 256, 1536),  # embedding projection over all target tokens
        (2048, 2048, 2048),  # a large square multiply
    ]


def matmul_peak(shapes: list[tuple[int, int, int]], dtype: torch.dtype) -> tuple[float, dict[str, float]]:
    per_shape = {f"{m}x{k}x{n}": matmul_gflops(m, k, n, dtype) for m, k, n in shapes}
    return max(per_shape.values()), per_shape


def multi30k_like_batch(batch_tokens: int, vocab: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A length-bucketed batch as the sampler makes it: target lengths 13-14 subwords (the
    middle of Multi30k's distribution), source lengths spread around them."""
    g = torch.Generator().manual_seed(seed)
    B = batch_tokens // 15  # 15 = longest target + EOS in the bucket
    tgt_lens = torch.randint(13, 15, (B,), generator=g)
    src_lens = (tgt_lens + torch.randint(-3, 4, (B,), generator=g)).clamp(min=3)
    S, T = int(src_lens.max()), int(tgt_lens.max()) + 1
    src_mask = torch.arange(S)[None] < src_lens[:, None]
    tgt_mask = torch.arange(T)[None] < (tgt_lens + 1)[:, None]
    src = torch.randint(4, vocab, (B, S), generator=g).masked_fill(~src_mask, 0)
    tgt_in = torch.randint(4, vocab, (B, T), generator=g).masked_fill(~tgt_mask, 0)
    tgt_in[:, 0] = 2
    tgt_out = torch.randint(4, vocab, (B, T), generator=g).masked_fill(~tgt_mask, 0)
    return src, src_lens, src_mask, tgt_in, tgt_out, tgt_mask


def time_steps(model, batch, precision: str, steps: int, warmup: int) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    device = torch.device("cpu")
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with autocast(device, precision):
            loss, _ = model.loss(*batch, label_smoothing=0.1)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-tokens", type=int, default=6000)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--attention", default="bahdanau")
    ap.add_argument("--style", default="luong")
    ap.add_argument("--precision", choices=["fp32", "bf16", "both"], default="both")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    tuned = tune_allocator()
    torch.manual_seed(0)
    cfg = ModelConfig(attention=AttentionConfig(name=args.attention), decoder_style=args.style)
    model = build_model(cfg, args.vocab, args.vocab).train()
    batch = multi30k_like_batch(args.batch_tokens, args.vocab)
    src_lens, tgt_mask = batch[1], batch[5]
    n_tgt, n_src, B = int(tgt_mask.sum()), int(src_lens.sum()), int(src_lens.numel())
    flops = train_step_flops(model, n_src, n_tgt, B)
    shapes = model_shapes(B, n_tgt)

    peak_before, per_shape = matmul_peak(shapes, torch.float32)
    results: dict = {
        "threads": torch.get_num_threads(),
        "allocator_tuned": tuned,
        "batch_sentences": B,
        "batch_tgt_tokens": n_tgt,
        "batch_src_tokens": n_src,
        "params": model.num_parameters(),
        "model_gflop_per_step": flops / 1e9,
        "matmul_gflops_fp32_by_shape": per_shape,
    }
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    for p in precisions:
        times = time_steps(model, batch, p, args.steps, args.warmup)
        med = statistics.median(times)
        results[f"step_seconds_{p}"] = {"median": med, "min": min(times), "max": max(times)}
        results[f"train_tokens_per_sec_{p}"] = n_tgt / med
        results[f"model_gflops_{p}"] = flops / med / 1e9
    peak_after, _ = matmul_peak(shapes, torch.float32)
    peak = max(peak_before, peak_after)
    results["matmul_gflops_fp32"] = peak
    for p in precisions:
        results[f"train_fraction_of_peak_{p}"] = results[f"model_gflops_{p}"] / peak

    print(f"batch: {B} sentences, {n_tgt} target / {n_src} source tokens; {results['params']:,} parameters")
    print(f"model FLOPs per step (fwd+bwd, from layer shapes): {flops / 1e9:.1f} GFLOP")
    print(
        f"fp32 matmul peak on model shapes: {peak:.1f} GFLOP/s  ({', '.join(f'{k}: {v:.0f}' for k, v in per_shape.items())})"
    )
    for p in precisions:
        s = results[f"step_seconds_{p}"]
        print(
            f"{p}: step {s['median'] * 1e3:.0f} ms (min {s['min'] * 1e3:.0f}, max {s['max'] * 1e3:.0f}), "
            f"{results[f'train_tokens_per_sec_{p}']:.0f} tokens/s, {results[f'model_gflops_{p}']:.1f} model GFLOP/s, "
            f"{100 * results[f'train_fraction_of_peak_{p}']:.0f}% of the fp32 peak"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
