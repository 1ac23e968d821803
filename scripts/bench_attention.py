"""Micro-benchmark of the attention mechanisms at decoder-step shapes; prints JSON lines.

One line per (mechanism or kernel variant, precision, mode) with the median time of one call
in milliseconds, the best of ``--repeats`` interleaved rounds (CPU timings are noisy on shared
machines). Modes: ``fwd`` = one decoder step without autograd (beam search), ``fwd_bwd`` = one
step plus its backward (training), ``precompute`` = ``precompute_keys`` once per batch.

    python scripts/bench_attention.py                 # the registered mechanisms
    python scripts/bench_attention.py --kernels       # the implementation choices behind them
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable

import torch
from bench_timing import median_seconds
from torch import Tensor

from mt.models.attention import ATTENTION_REGISTRY, build_attention

PRECISIONS = ("fp32", "bf16")


def _autocast(precision: str) -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def mechanism_cases(args: argparse.Namespace) -> dict[tuple[str, str, str], Callable[[], object]]:
    """(name, precision, mode) -> a closure running one call of the registered mechanism."""
    B, S, H = args.batch, args.src_len, args.size
    cases: dict[tuple[str, str, str], Callable[[], object]] = {}
    for name in sorted(ATTENTION_REGISTRY):
        attn = build_attention(name, H, H, H)
        memory = torch.randn(B, S, H)  # (B, S, Hk)
        query = torch.randn(B, H, requires_grad=True)  # (B, Hq)
        mask = torch.rand(B, S) < 0.8  # (B, S)
        mask[:, 0] = True
        for precision in PRECISIONS:
            with torch.no_grad(), _autocast(precision):
                keys = attn.precompute_keys(memory)
            keys.requires_grad_()
            values = memory.clone().requires_grad_()

            def precompute(attn=attn, memory=memory, precision=precision) -> None:
                with torch.no_grad(), _autocast(precision):
                    attn.precompute_keys(memory)

            def fwd(attn=attn, query=query, keys=keys, values=values, mask=mask, precision=precision) -> None:
                with torch.no_grad(), _autocast(precision):
                    attn(query, keys, values, mask, S // 2)  # step t: local_m centres its window there

            def fwd_bwd(attn=attn, query=query, keys=keys, values=values, mask=mask, precision=precision):
                with _autocast(precision):
                    context, weights = attn(query, keys, values, mask, S // 2)
                (context.float().sum() + weights.float().sum()).backward()

            cases[(name, precision, "precompute")] = precompute
            cases[(name, precision, "fwd")] = fwd
            cases[(name, precision, "fwd_bwd")] = fwd_bwd
    return cases


def kernel_cases(args: argparse.Namespace) -> dict[tuple[str, str, str], Callable[[], object]]:
    """(variant, precision, mode) -> a closure running one implementation choice."""
    B, S, H = args.batch, args.src_len, args.size
    keys = torch.randn(B, S, H, requires_grad=True)  # (B, S, A)
    query = torch.randn(B, H, requires_grad=True)  # (B, A)
    v = (torch.rand(H) - 0.5).requires_grad_()  # (A,)
    weights = torch.rand(B, S).softmax(-1).requires_grad_()  # (B, S)

    variants: dict[str, Callable[[], Tensor]] = {
        # additive energies v^T tanh(k + q)
        "additive/tanh_matvec": lambda: torch.tanh(keys + query[:, None]) @ v,
        "additive/tanh_linear": lambda: torch.nn.functional.linear(
            torch.tanh(keys + query[:, None]), v[None]
        )[..., 0],
        "additive/sigmoid_matvec": lambda: (keys + query[:, None]).sigmoid_() @ (2 * v) - v.sum(),
        # dot energies q^T k_j
        "dot/bmm_column": lambda: torch.bmm(keys, query[:, :, None])[..., 0],
        "dot/bmm_row": lambda: torch.bmm(query[:, None], keys.transpose(1, 2))[:, 0],
        "dot/einsum": lambda: torch.einsum("bsh,bh->bs", keys, query),
        "dot/vecdot": lambda: torch.linalg.vecdot(keys, query[:, None]),
        # context sum_j a_j h_j
        "context/bmm": lambda: torch.bmm(weights[:, None], keys)[:, 0],
        "context/einsum": lambda: torch.einsum("bs,bsh->bh", weights, keys),
        "context/mul_sum": lambda: (weights[..., None] * keys).sum(1),
    }
    cases: dict[tuple[str, str, str], Callable[[], object]] = {}
    for name, fn in variants.items():
        for precision in PRECISIONS:

            def fwd(fn=fn, precision=precision) -> None:
                with torch.no_grad(), _autocast(precision):
                    fn()

            def fwd_bwd(fn=fn, precision=precision) -> None:
                with _autocast(precision):
                    out = fn()
                out.float().sum().backward()

            cases[(name, precision, "fwd")] = fwd
            cases[(name, precision, "fwd_bwd")] = fwd_bwd
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--src-len", type=int, default=30)
    parser.add_argument("--size", type=int, default=512, help="Hq = Hk = A")
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best is kept")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    parser.add_argument("--kernels", action="store_true", help="time implementation variants instead")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cases = kernel_cases(args) if args.kernels else mechanism_cases(args)
    times: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for _ in range(args.repeats):
        for key, fn in cases.items():
            times[key].append(median_seconds(fn, args.min_run_time))
    for (name, precision, mode), seconds in times.items():
        record = {
            "name": name,
            "precision": precision,
            "mode": mode,
            "ms": round(min(seconds) * 1e3, 3),
            "ms_rounds": [round(s * 1e3, 3) for s in seconds],
            "batch": args.batch,
            "src_len": args.src_len,
            "size": args.size,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
