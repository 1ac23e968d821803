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

from mt.config import AttentionConfig, ModelConfig, OptimConfig
from mt.data.collate import Batch
from mt.models.flops import train_step_flops
from mt.models.seq2seq import Seq2Seq, build_model
from mt.runtime import autocast, release_memory, synchronize, tune_allocator
from mt.training.optimizer import build_optimizer


def matmul_samples(
    m: int, k: int, n: int, dtype: torch.dtype, reps: int = 20, device: torch.device | None = None
) -> list[float]:
    """GFLOP/s of each of `reps` timed (m, k) @ (k, n) multiplies in `dtype` on `device`."""
    device = device or torch.device("cpu")
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    out = torch.empty(m, n, dtype=dtype, device=device)
    for _ in range(3):
        torch.mm(a, b, out=out)
    rates = []
    for _ in range(reps):
        synchronize(device)
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        rates.append(2 * m * k * n / (time.perf_counter() - t0) / 1e9)
    return rates


def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, reps: int = 20, device=None) -> float:
    """Median GFLOP/s of (m, k) @ (k, n) in `dtype`."""
    return statistics.median(matmul_samples(m, k, n, dtype, reps, device))


def model_shapes(
    model: Seq2Seq, batch_sents: int, batch_tokens: int, square: int = 2048
) -> list[tuple[int, int, int]]:
    """(m, k, n) of the large matrix multiplies of a training step of `model` (default model:
    decoder 512, embeddings 256, 8k vocabulary), plus a large square multiply."""
    dec = model.decoder
    gates = dec.layers[0].w_hh.shape[0]
    return [
        (batch_sents, dec.hidden_size, gates),  # decoder recurrent / input-feeding projection per step
        (batch_sents, dec.combine.in_features, dec.combine.out_features),  # attentional layer W_c per step
        (batch_tokens, model.output.in_features, model.output.out_features),  # output projection, all tokens
        (batch_tokens, dec.embed.embedding_dim, gates),  # embedding projection over all target tokens
        (square, square, square),
    ]


def matmul_peak(
    shapes: list[tuple[int, int, int]], dtype: torch.dtype, reps: int = 20, device=None
) -> tuple[float, dict[str, float]]:
    """(best median GFLOP/s over `shapes`, median GFLOP/s per shape "MxKxN")."""
    per_shape = {f"{m}x{k}x{n}": matmul_gflops(m, k, n, dtype, reps, device) for m, k, n in shapes}
    return max(per_shape.values()), per_shape


def bf16_matmul_supported(device: torch.device) -> bool:
    """Whether this device multiplies bf16 natively (CUDA: Ampere or newer; CPU: oneDNN's check)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def multi30k_like_batch(batch_tokens: int, vocab: int, seed: int = 0) -> Batch:
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
    n_tgt = int(tgt_mask.sum())
    return Batch(src, src_lens, src_mask, tgt_in, tgt_out, tgt_mask, n_tgt, torch.arange(B))


def train_step(
    model: Seq2Seq,
    opt: torch.optim.Optimizer,
    batch: Batch,
    precision: str,
    device: torch.device,
    label_smoothing: float = 0.1,
    clip: float = 1.0,
) -> None:
    """One update as the trainer makes it: loss per target token, backward, clipping, Adam step."""
    with autocast(device, precision):
        loss, _ = model.loss(batch, label_smoothing=label_smoothing)
    loss = loss / batch.n_tgt_tokens
    opt.zero_grad(set_to_none=False)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    release_memory()  # as the trainer does (a no-op below trainer.max_rss_mb)


def time_train_steps(
    model: Seq2Seq,
    batches: list[Batch],
    precision: str,
    repeats: int,
    warmup: int,
    device: torch.device | None = None,
    lr: float = 1e-4,
) -> list[list[float]]:
    """Seconds of each step, per pass over `batches` (already on `device`): `warmup`
    untimed steps first, then `repeats` timed passes; a fresh Adam for each call."""
    device = device or torch.device("cpu")
    model.train()
    opt = build_optimizer(model.parameters(), OptimConfig(lr=lr), device)  # the trainer's
    for i in range(warmup):
        train_step(model, opt, batches[i % len(batches)], precision, device)
    passes = []
    for _ in range(repeats):
        times = []
        for batch in batches:
            synchronize(device)
            t0 = time.perf_counter()
            train_step(model, opt, batch, precision, device)
            synchronize(device)
            times.append(time.perf_counter() - t0)
        passes.append(times)
    return passes


def time_steps(model, batch, precision: str, steps: int, warmup: int) -> list[float]:
    """Seconds of `steps` timed steps on one batch after `warmup` untimed ones (CPU)."""
    return [t for times in time_train_steps(model, [batch], precision, steps, warmup) for t in times]


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
    n_tgt, n_src, B = batch.n_tgt_tokens, int(batch.src_lens.sum()), len(batch)
    flops = train_step_flops(model, n_src, n_tgt, B)
    shapes = model_shapes(model, B, n_tgt)

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
