"""Cost of coverage (See et al., 2017) per decoder step: the default model (bahdanau attention)
with and without ``model.attention.coverage``; prints JSON lines.

One line per (coverage, precision, mode) with the median time in milliseconds, the best of
``--repeats`` interleaved rounds. Modes: ``search_step`` = one ``decoder.step`` without autograd
(greedy / beam search), ``train_step`` = a teacher-forced loss with its backward over
``--tgt-len`` target steps, divided by that number (with coverage: the coverage loss included,
weight 1). The last line holds the ratios coverage / no coverage.

    python scripts/bench_coverage.py                       # batch 80, S = T = 30, fp32 and bf16
    python scripts/bench_coverage.py --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable

import torch
from bench_timing import median_seconds

from mt.config import AttentionConfig, ModelConfig
from mt.data.collate import Batch
from mt.models.seq2seq import Seq2Seq, build_model

PRECISIONS = ("fp32", "bf16")
VOCAB = 8000  # the default tokenizer.vocab_size


def _autocast(precision: str) -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def make_batch(B: int, S: int, T: int) -> Batch:
    """Random ids, full-length sources and targets (B, S) and (B, T)."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, VOCAB, (B, S), generator=g)
    tgt = torch.randint(4, VOCAB, (B, T), generator=g)
    tgt_in = torch.cat([torch.full((B, 1), 2), tgt[:, :-1]], 1)
    ones = torch.ones(B, S, dtype=torch.bool)
    return Batch(src, torch.full((B,), S), ones, tgt_in, tgt, torch.ones(B, T, dtype=torch.bool), B * T,
                 torch.arange(B))  # fmt: skip


def cases(model: Seq2Seq, batch: Batch, coverage: bool) -> dict[tuple[str, str], Callable[[], object]]:
    """(precision, mode) -> a closure timing one case of ``model``."""
    T = batch.tgt_in.size(1)
    out: dict[tuple[str, str], Callable[[], object]] = {}
    for precision in PRECISIONS:
        with torch.no_grad(), _autocast(precision):
            ctx, state = model.encode(batch.src, batch.src_lens, batch.src_mask)
            _, _, state = model.decoder.step(batch.tgt_in[:, 0], state, ctx)  # a non-zero coverage

        def search_step(ctx=ctx, state=state, precision=precision) -> None:
            with torch.no_grad(), _autocast(precision):
                model.decoder.step(batch.tgt_in[:, 1], state, ctx)

        def train_step(precision=precision) -> None:
            with _autocast(precision):
                loss, _ = model.loss(batch, coverage_weight=1.0 if coverage else 0.0)
            (loss / T).backward()

        out[(precision, "search_step")] = search_step
        out[(precision, "train_step")] = train_step
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=80, help="sentences (search: beam rows)")
    parser.add_argument("--src-len", type=int, default=30)
    parser.add_argument("--tgt-len", type=int, default=30)
    parser.add_argument("--attention", default="bahdanau", help="bahdanau | luong_concat")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best is kept")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = make_batch(args.batch, args.src_len, args.tgt_len)
    all_cases: dict[tuple[bool, str, str], Callable[[], object]] = {}
    for coverage in (False, True):
        torch.manual_seed(0)
        cfg = ModelConfig(attention=AttentionConfig(name=args.attention, coverage=coverage))
        model = build_model(cfg, VOCAB, VOCAB).train()
        for (precision, mode), fn in cases(model, batch, coverage).items():
            all_cases[(coverage, precision, mode)] = fn
    times: dict[tuple[bool, str, str], list[float]] = defaultdict(list)
    for _ in range(args.repeats):
        for key, fn in all_cases.items():
            times[key].append(median_seconds(fn, args.min_run_time))
    best = {
        key: min(seconds) * 1e3 / (args.tgt_len if key[2] == "train_step" else 1)
        for key, seconds in times.items()
    }
    common = {"attention": args.attention, "batch": args.batch, "src_len": args.src_len, "tgt_len": args.tgt_len,
              "threads": torch.get_num_threads(), "torch": torch.__version__}  # fmt: skip
    for (coverage, precision, mode), ms in best.items():
        print(
            json.dumps(
                {"coverage": coverage, "precision": precision, "mode": mode, "ms": round(ms, 3), **common}
            )
        )
    ratios = {f"{p}/{m}": round(best[(True, p, m)] / best[(False, p, m)], 3) for (c, p, m) in best if c}
    print(json.dumps({"ratio_coverage_over_none": ratios, **common}), flush=True)


if __name__ == "__main__":
    main()
