#!/usr/bin/env python
"""Two parts of a training step against their matrix multiplies alone, at the default model's
shapes (hidden 512, 8000 target subwords, decoder gates 3 x 512):

- the output layer and the loss (``mt.models.loss.output_cross_entropy``, forward and
  backward) over N target positions, per ``chunk_rows``, against the three multiplies of
  (N, 512) x (512, 8000) that it must do (forward, input gradient, weight gradient);
- the weight gradient of a per-step projection (the decoder's ``W_hh``, 1536 x 512) summed
  over T steps of B rows: one (1536, B) x (B, 512) multiply and one accumulation per step, as
  autograd does it, against one multiply over all T x B rows.

    python scripts/bench_step_parts.py              # both precisions, median of >= 2 s of calls each
    python scripts/bench_step_parts.py --rows 5800  # target positions of the loss part

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from bench_timing import median_seconds

from mt.models.loss import output_cross_entropy
from mt.runtime import autocast, tune_allocator

HIDDEN, VOCAB, GATES = 512, 8000, 3 * 512
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def median_ms(fn: Callable[[], object], min_run_time: float) -> float:
    """Median milliseconds of one call of ``fn`` on all of torch's threads (as mt-train runs)."""
    return 1e3 * median_seconds(fn, min_run_time, torch.get_num_threads())


def loss_part(rows: int, precision: str, chunks: list[int], min_run_time: float) -> None:
    """Output layer + loss forward and backward per chunk size, and the bare multiplies."""
    torch.manual_seed(0)
    device = torch.device("cpu")
    output = torch.nn.Linear(HIDDEN, VOCAB)
    feats = torch.randn(rows, HIDDEN, requires_grad=True)
    gold = torch.randint(0, VOCAB, (rows,))
    dtype = PRECISIONS[precision]
    x, w = torch.randn(rows, HIDDEN, dtype=dtype), torch.randn(VOCAB, HIDDEN, dtype=dtype)
    matmul = median_ms(lambda: x @ w.t(), min_run_time)
    flop = 2.0 * rows * HIDDEN * VOCAB
    print(f"{precision}: (N={rows}) x ({HIDDEN}) x ({VOCAB}) multiply alone {matmul:.1f} ms "
          f"({flop / matmul / 1e6:.0f} GFLOP/s); three of them {3 * matmul:.1f} ms")  # fmt: skip
    for chunk in chunks:

        def step(chunk: int = chunk) -> None:
            with autocast(device, precision):
                loss, _ = output_cross_entropy(feats, output, gold, 0.1, chunk_rows=chunk)
            loss.backward()

        ms = median_ms(step, min_run_time)
        print(f"  output layer + loss, forward + backward, chunk_rows={chunk}: {ms:.1f} ms "
              f"({3 * matmul / ms:.0%} of it in the multiplies' time)")  # fmt: skip


def weight_grad_ms(
    grads: list[torch.Tensor], inputs: list[torch.Tensor], min_run_time: float
) -> tuple[float, float]:
    """Milliseconds of sum_t g_t^T x_t: per step with accumulation, and as one multiply."""
    acc = torch.zeros(grads[0].shape[1], inputs[0].shape[1])

    def per_step() -> None:
        acc.zero_()
        for g, x in zip(grads, inputs, strict=True):
            acc.add_((g.t() @ x).float())  # (GATES, HIDDEN)

    def at_once() -> torch.Tensor:
        return (torch.cat(grads).t() @ torch.cat(inputs)).float()  # (GATES, HIDDEN)

    return median_ms(per_step, min_run_time), median_ms(at_once, min_run_time)


def weight_grad_part(precision: str, shapes: list[tuple[int, int]], min_run_time: float) -> None:
    """Per-step weight gradients accumulated, against one multiply over all steps."""
    dtype = PRECISIONS[precision]
    for rows, steps in shapes:
        grads = [torch.randn(rows, GATES, dtype=dtype) for _ in range(steps)]
        inputs = [torch.randn(rows, HIDDEN, dtype=dtype) for _ in range(steps)]
        per_step, at_once = weight_grad_ms(grads, inputs, min_run_time)
        print(f"{precision}: W_hh gradient over T={steps} steps of B={rows} rows: per step "
              f"{per_step:.1f} ms, one multiply {at_once:.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5800, help="target positions (a 6000-token batch)")
    parser.add_argument("--chunks", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds of calls per figure")
    args = parser.parse_args()
    tune_allocator()  # as mt-train does
    for precision in PRECISIONS:
        loss_part(args.rows, precision, args.chunks, args.min_run_time)
        # batch rows and steps of real batches of the default run (short and long sentences)
        weight_grad_part(precision, [(91, 53), (250, 24), (666, 9)], args.min_run_time)


if __name__ == "__main__":
    main()
