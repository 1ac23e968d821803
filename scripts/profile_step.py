#!/usr/bin/env python
"""Where a training step's time goes: torch.profiler over real batches of the default
`mt-train` config, the operators sorted by their own (self) CPU time.

    export MT_DATA_DIR=/path/holding/multi30k
    python scripts/profile_step.py                     # bf16 autocast, 6 batches
    python scripts/profile_step.py --precision fp32 --shapes --rows 40
    python scripts/profile_step.py model.dec_hidden=256   # Hydra overrides of the train config

The batches are the harness's sample (`benchmark.sample_batches`: spread evenly over one
epoch sorted by length), each one update as the trainer makes it (loss, backward, clipping,
the trainer's Adam), after two untimed warm-up updates, with the allocator tuned as
`mt-train` tunes it. Run it alone on the machine: the shares are only as good as the quiet.
"""

from __future__ import annotations

import argparse

import torch
from bench_model import train_step
from benchmark import compose_config, sample_batches
from torch.profiler import ProfilerActivity, profile

from mt.data.pipeline import prepare_data
from mt.models.seq2seq import build_model
from mt.runtime import seed_everything, tune_allocator
from mt.training.optimizer import build_optimizer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--batches", type=int, default=6, help="real batches profiled, one update each")
    ap.add_argument("--rows", type=int, default=30, help="operators printed")
    ap.add_argument("--shapes", action="store_true", help="one row per operator and input shapes")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides of the train config")
    args = ap.parse_args(argv)

    cfg = compose_config(args.overrides)
    tune_allocator(cfg.trainer.max_rss_mb)
    seed_everything(cfg.seed)
    data = prepare_data(cfg.data, cfg.tokenizer)
    model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size)
    batches, _ = sample_batches(data, cfg, args.batches)
    device = torch.device("cpu")
    optimizer = build_optimizer(model.parameters(), cfg.optim, device)
    model.train()
    for batch in batches[:2]:  # warm-up: kernels built, buffers allocated
        train_step(model, optimizer, batch, args.precision, device)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
        for batch in batches:
            train_step(model, optimizer, batch, args.precision, device)
    table = prof.key_averages(group_by_input_shape=args.shapes).table(
        sort_by="self_cpu_time_total",
        row_limit=args.rows,
        max_name_column_width=40,
        max_shapes_column_width=60,
    )
    print(f"{args.precision}, {len(batches)} updates, {torch.get_num_threads()} threads")
    print(table)


if __name__ == "__main__":
    main()
