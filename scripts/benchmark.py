#!/usr/bin/env python
"""This machine, measured in one run: matmul peak, training and decoding speed, data
preparation time, and the memory and time breakdown of a short real training run.

    export MT_DATA_DIR=/path/holding/multi30k
    python scripts/benchmark.py --json bench.json          # full run (about 7-12 min on 2 cores)
    python scripts/benchmark.py --quick --json bench.json  # fewer repeats, under 3 min on 2 cores
    python scripts/benchmark.py --checkpoint runs/.../checkpoints/best.pt   # decode a trained model
    python scripts/benchmark.py model.dec_hidden=256       # Hydra overrides of the train config

Prints a table (median, min, max per measurement) and the headline numbers as one JSON line;
`--json PATH` writes them with a `details` object (shapes, repeats, per-step figures, machine).
Every measurement uses the default `mt-train` config (composed with Hydra, plus the overrides):

- matmul fp32 / bf16: the best median GFLOP/s over the matrix multiplies of a training step
  of the model at the median sampled batch (scripts/bench_model.py), plus a large square one.
  bf16 only where the device multiplies it natively. The reference for the fractions below.
- train fp32 / bf16 autocast: a fixed sample of real batches (one epoch of the real pipeline,
  prepare_data + make_train_loader, sorted by length and sampled evenly across it), one
  forward + backward + Adam step each, timed per step: target tokens / step seconds, and model
  GFLOP/s from mt.models.flops.train_step_flops for each batch's real token counts.
- greedy / beam5: the test split (test_2016_flickr, 1000 sentences) decoded in batches of
  data.eval_batch_rows // beam (mt.data.loaders.eval_batch_size), output capped at max_len_a * source + max_len_b as in evaluation
  (scripts/bench_decode.py). Without --checkpoint the model is randomly initialised: it never
  emits EOS, so every output runs to the cap, the slowest case.
- data prep: prepare_data into a fresh cache folder (first run: tokenizer training, encoding)
  and again from that cache; collate: building one train batch (scripts/bench_data.py).
- training run: a short real `mt-train` in a temporary folder; its peak resident memory and
  where its training wall time went (trainer's results.json, train.time_breakdown):
  outside_step_fraction = other / (wall - validation), the share of the training loop spent
  outside the model step (data loading, collation, logging, checkpoints);
  outside_step_fraction_incl_validation = (other + validation) / wall.

On CUDA (`--device auto` picks it when present) every timer is read after a synchronise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench_* scripts

from bench_data import batching_stats  # noqa: E402
from bench_decode import decode_speed, search_name  # noqa: E402
from bench_model import bf16_matmul_supported, matmul_samples, model_shapes, time_train_steps  # noqa: E402

from mt.config import TrainConfig  # noqa: E402
from mt.data.loaders import Batch, eval_batch_size, make_train_loader  # noqa: E402
from mt.data.pipeline import PreparedData, prepare_data  # noqa: E402
from mt.models.flops import train_step_flops  # noqa: E402
from mt.models.seq2seq import build_model  # noqa: E402
from mt.runtime import resolve_device, seed_everything, tune_allocator  # noqa: E402
from mt.search.base import SearchConfig  # noqa: E402

REQUIRED_KEYS = (
    "matmul_gflops_fp32",
    "train_tokens_per_sec_fp32",
    "train_tokens_per_sec_bf16",
    "train_fraction_of_peak_fp32",
    "greedy_sents_per_sec",
    "beam5_sents_per_sec",
    "peak_rss_mb",
)


@dataclass(frozen=True)
class Plan:
    """How much of each measurement a mode runs."""

    matmul_reps: int  # timed multiplies per shape and round
    matmul_rounds: int  # 2: before and after the training and decoding measurements
    square: int  # size of the square multiply added to the model's shapes
    prep_first: int  # prepare_data runs into a fresh cache folder
    prep_cached: int  # prepare_data runs from that cache
    collate_repeats: int  # passes over one epoch's batches
    train_batches: int  # real batches in the sample
    train_repeats: int  # timed passes over the sample, per precision
    warmup: int  # untimed steps before them
    decode_repeats: int  # timed passes over the test split, per search
    run_steps: int  # the mt-train run
    run_val_every: int
    run_valid_sentences: int
    run_timeout_s: int

    def __post_init__(self) -> None:
        # the run must end on a validation: a final one after the loop is outside its wall time
        assert self.run_steps % self.run_val_every == 0


PLANS = {
    "full": Plan(20, 2, 2048, 2, 3, 3, 12, 2, 2, 3, 60, 30, 200, 1800),
    "quick": Plan(5, 1, 2048, 1, 2, 1, 4, 1, 1, 1, 20, 10, 100, 600),
    "smoke": Plan(2, 1, 256, 2, 2, 2, 3, 2, 1, 2, 4, 2, 20, 300),  # tests: tiny model and corpus
}
SMOKE_MODEL = ["model.emb_size=32", "model.enc_hidden=32", "model.dec_hidden=64", "data.batch_tokens=1500"]


def progress(msg: str) -> None:
    print(f"[benchmark] {msg}", file=sys.stderr, flush=True)


def summary(values: list[float], unit: str) -> dict[str, Any]:
    """Median, min, max and count of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "unit": unit}  # fmt: skip


def compose_config(overrides: list[str]) -> TrainConfig:
    """The typed `mt-train` config: mt/configs/train.yaml with `overrides`, as the tests compose it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mt.cli.common import CONFIG_DIR, register_resolvers
    from mt.command_config import register_configs
    from mt.config import validate_train

    register_resolvers()
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg: TrainConfig = OmegaConf.to_object(compose("train", overrides=overrides))  # type: ignore[assignment]
    validate_train(cfg)
    return cfg


def machine_info(device: torch.device) -> dict[str, Any]:
    cpu, flags = "", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not cpu:
                    cpu = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value.split()
    except OSError:
        pass
    info = {
        "cpu": cpu or platform.processor() or "unknown",
        "cpu_flags_bf16": [f for f in ("avx512_bf16", "amx_bf16") if f in flags],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "bf16_matmul_native": bf16_matmul_supported(device),
        "load_average_start": list(os.getloadavg()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


# -- measurements ---------------------------------------------------------------------------


def measure_data_prep(
    cfg: TrainConfig, work: Path, plan: Plan
) -> tuple[list[float], list[float], PreparedData, Path]:
    """prepare_data into fresh cache folders (first runs), then again from the last one (cached)."""
    first, cached = [], []
    cache = work / "cache0"
    data = None
    for i in range(plan.prep_first):
        cache = work / f"cache{i}"
        t0 = time.perf_counter()
        data = prepare_data(replace(cfg.data, cache_dir=str(cache)), cfg.tokenizer)
        first.append(time.perf_counter() - t0)
    for _ in range(plan.prep_cached):
        t0 = time.perf_counter()
        data = prepare_data(replace(cfg.data, cache_dir=str(cache)), cfg.tokenizer)
        cached.append(time.perf_counter() - t0)
    assert data is not None
    return first, cached, data, cache


def sample_batches(data: PreparedData, cfg: TrainConfig, n: int) -> tuple[list[Batch], int]:
    """`n` real train batches of epoch 0, evenly spread over the epoch's batches sorted by
    padded target then source length; also returns the number of batches in the epoch."""
    loader = make_train_loader(data.train, data.tokenizer, cfg.data, seed=cfg.seed)
    loader.sampler.set_epoch(0)
    batches = list(loader)
    order = sorted(range(len(batches)), key=lambda i: (batches[i].tgt_in.shape[1], batches[i].src.shape[1]))
    picks = sorted({int(i) for i in np.linspace(0, len(batches) - 1, min(n, len(batches))).round()})
    return [batches[order[i]] for i in picks], len(batches)


def batch_facts(model, b: Batch) -> dict[str, Any]:
    n_src, n_tgt = int(b.src_lens.sum()), int(b.n_tgt_tokens)
    return {"sentences": len(b), "src_tokens": n_src, "tgt_tokens": n_tgt, "src_width": int(b.src.shape[1]),
            "tgt_width": int(b.tgt_in.shape[1]), "gflop": train_step_flops(model, n_src, n_tgt, len(b)) / 1e9}  # fmt: skip


def measure_matmul(
    shapes: list[tuple[int, int, int]], dtypes: dict[str, torch.dtype], reps: int, device, into: dict
) -> None:
    """Add GFLOP/s samples per dtype name and shape "MxKxN" to `into`."""
    for name, dtype in dtypes.items():
        for m, k, n in shapes:
            into.setdefault(name, {}).setdefault(f"{m}x{k}x{n}", []).extend(
                matmul_samples(m, k, n, dtype, reps, device)
            )


def matmul_peak(samples: dict[str, list[float]]) -> tuple[str, list[float]]:
    """The shape with the best median GFLOP/s and its samples."""
    best = max(samples, key=lambda s: statistics.median(samples[s]))
    return best, samples[best]


def measure_training(model, batches: list[Batch], facts: list[dict], cfg: TrainConfig, plan: Plan, device):
    """Per precision: per-step tokens/s and model GFLOP/s over the sampled batches."""
    on_device = [b.to(device) for b in batches]
    out = {}
    for precision in ("fp32", "bf16"):
        progress(
            f"training steps, {precision}: {plan.warmup} warm-up + {plan.train_repeats} x {len(batches)} batches"
        )
        passes = time_train_steps(
            model, on_device, precision, plan.train_repeats, plan.warmup, device, cfg.optim.lr
        )
        steps = [(t, f) for times in passes for t, f in zip(times, facts, strict=True)]
        out[precision] = {
            "step_seconds": [t for t, _ in steps],
            "tokens_per_sec": [f["tgt_tokens"] / t for t, f in steps],
            "gflops": [f["gflop"] / t for t, f in steps],
            # whole passes: all target tokens of the sample / the pass's summed step time
            "tokens_per_sec_per_pass": [sum(f["tgt_tokens"] for f in facts) / sum(times) for times in passes],
        }
    return out


def training_run(
    overrides: list[str], plan: Plan, work: Path, threads: int = 0
) -> tuple[dict[str, Any], float, float]:
    """A short real mt-train in `work`; returns its results.json, its wall seconds and the peak
    resident memory of the child processes as the OS saw it (MB)."""
    run_dir = work / "train_run"
    cmd = [sys.executable, "-m", "mt.train", *overrides, f"trainer.max_steps={plan.run_steps}",
           f"trainer.val_every={plan.run_val_every}", f"trainer.valid_max_sentences={plan.run_valid_sentences}",
           "trainer.test_beam_size=1", "trainer.progress=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=plan.run_timeout_s)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not (run_dir / "results.json").is_file():
        raise RuntimeError(
            f"mt-train failed (exit {proc.returncode}): {' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-4000:]}"
        )
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return json.loads((run_dir / "results.json").read_text()), wall, child_rss


def time_shares(train: dict[str, Any]) -> dict[str, float] | None:
    """The outside-the-step fractions from results.json's train.time_breakdown (None if absent)."""
    tb = train.get("time_breakdown")
    if not tb:
        return None
    step, valid, other = float(tb["step_seconds"]), float(tb["valid_seconds"]), float(tb["other_seconds"])
    wall = step + valid + other  # = the loop's wall time, to the 0.1 s its parts are rounded to
    return {
        **tb,
        "wall_seconds": wall,
        "outside_step_fraction": other / max(step + other, 1e-9),
        "outside_step_fraction_incl_validation": (other + valid) / max(wall, 1e-9),
    }


# -- report ---------------------------------------------------------------------------------


def _num(x: float) -> str:
    if x == 0 or abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def format_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    width = max(len(label) for label, _ in rows)
    lines = [f"{'measurement':<{width}}  {'median':>9} {'min':>9} {'max':>9}  {'unit':<16} n"]
    lines.append("-" * len(lines[0]))
    for label, s in rows:
        lines.append(f"{label:<{width}}  {_num(s['median']):>9} {_num(s['min']):>9} {_num(s['max']):>9}  "
                     f"{s['unit']:<16} {s['n']}")  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides of the train config (key=value)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and batches: under 3 minutes")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests: tiny model, 2 repeats
    ap.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    ap.add_argument("--checkpoint", help="decode this trained model (default: a randomly initialised one)")
    ap.add_argument("--split", default="test_2016_flickr", help="the split to decode")
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 5], help="beam sizes to time (1 = greedy)")
    ap.add_argument("--decode-precision", choices=["fp32", "bf16"],
                    help="default: trainer.precision, as evaluation uses")  # fmt: skip
    ap.add_argument("--workdir", help="keep caches and the training run here (default: a temporary folder)")
    ap.add_argument(
        "--no-train-run", action="store_true", help="skip the mt-train run (no peak memory, no breakdown)"
    )
    return ap.parse_args(argv)


def measure_decoding(args, cfg: TrainConfig, data: PreparedData, work: Path, plan: Plan, device, stats: dict):
    """Greedy / beam speed on `args.split` (into `stats`); returns the details of the setting."""
    if args.checkpoint:
        from mt.training.checkpoint import load_model

        loaded = load_model(args.checkpoint, device)
        model, trainer_cfg = loaded.model, loaded.config.trainer
        # decoding batch sizes are a runtime choice: those of the current config, not the checkpoint's
        data_cfg = replace(loaded.config.data, cache_dir=str(work / "ckpt_cache"), test_splits=[args.split],
                           eval_batch_sentences=cfg.data.eval_batch_sentences,
                           eval_batch_rows=cfg.data.eval_batch_rows)  # fmt: skip
        data = prepare_data(data_cfg, loaded.config.tokenizer, tokenizer=loaded.tokenizer)
        what = f"checkpoint {args.checkpoint} (step {loaded.step})"
    else:
        seed_everything(cfg.seed)
        model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size)
        model = model.to(device).eval()
        data_cfg, trainer_cfg = cfg.data, cfg.trainer
        what = "randomly initialised model: it never emits EOS, so every output runs to the cap (worst case)"
    if args.split not in data.encoded:
        raise SystemExit(f"error: no split {args.split!r} to decode; there are {sorted(data.encoded)}")
    ds = data.encoded[args.split]
    t = trainer_cfg
    precision = args.decode_precision or t.precision
    out: dict[str, Any] = {"model": what, "split": args.split, "sentences": len(ds), "precision": precision,
                           "batch_sentences": {search_name(b): eval_batch_size(data_cfg, b) for b in args.beams},
                           "max_len_a": t.max_len_a,
                           "max_len_b": t.max_len_b}  # fmt: skip
    for beam in args.beams:
        name = search_name(beam)
        progress(f"decoding {len(ds)} sentences, {name}, {precision}, {plan.decode_repeats} pass(es)")
        search = SearchConfig.from_trainer(t, beam_size=beam, precision=precision)
        speed = decode_speed(model, ds, data_cfg, search, device, plan.decode_repeats)
        stats[f"{name}_sents_per_sec"] = summary(speed["rates"], "sentences/s")
        stats[f"{name}_gflops"] = summary(speed["gflops"], "GFLOP/s")
        out[name] = {k: speed[k] for k in ("mean_output_tokens", "finished_fraction", "model_flops",
                                           "hypothesis_steps", "gflops")}  # fmt: skip
    return out


def run(
    args: argparse.Namespace,
    cfg: TrainConfig,
    plan: Plan,
    overrides: list[str],
    device,
    work: Path,
    details: dict,
) -> dict:
    """Every measurement, in order; returns the summaries by key (details filled in as it goes)."""
    stats: dict[str, dict[str, Any]] = {}
    progress(f"data preparation: {plan.prep_first} first run(s), {plan.prep_cached} cached")
    first, cached, data, cache = measure_data_prep(cfg, work, plan)
    stats["data_prep_first_seconds"] = summary(first, "s")
    stats["data_prep_cached_seconds"] = summary(cached, "s")
    batching = batching_stats(data.train, cfg.data, plan.collate_repeats, seed=cfg.seed)
    stats["collate_ms_per_batch"] = summary(batching.pop("collate_ms_per_batch_runs"), "ms")
    batching.pop("collate_ms_per_batch")
    details["data"] = {"splits": {k: len(v) for k, v in data.encoded.items()}, "batching": batching,
                       "src_vocab": data.tokenizer.src_vocab_size, "tgt_vocab": data.tokenizer.tgt_vocab_size}  # fmt: skip

    # the model, a sample of real batches, the matmul reference on the model's shapes
    seed_everything(cfg.seed)
    model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size)
    model = model.to(device)
    batches, n_epoch = sample_batches(data, cfg, plan.train_batches)
    facts = [batch_facts(model, b) for b in batches]
    B = int(statistics.median(f["sentences"] for f in facts))
    shapes = model_shapes(model, B, int(statistics.median(f["tgt_tokens"] for f in facts)), plan.square)
    dtypes = {"fp32": torch.float32} | (
        {"bf16": torch.bfloat16} if details["machine"]["bf16_matmul_native"] else {}
    )
    tokens = sum(f["tgt_tokens"] for f in facts)
    details["model"] = {"parameters": model.num_parameters(),
                        "parameters_without_embeddings": model.num_parameters(embeddings=False),
                        "mflop_per_target_token": 1e3 * sum(f["gflop"] for f in facts) / tokens}  # fmt: skip
    details["train_batches"] = {"from_epoch_batches": n_epoch, "sample": facts}
    details["matmul_shapes"] = [list(s) for s in shapes]
    matmul: dict[str, dict[str, list[float]]] = {}
    progress(f"matmul on {len(shapes)} shapes, {'/'.join(dtypes)}, {plan.matmul_reps} reps each")
    measure_matmul(shapes, dtypes, plan.matmul_reps, device, matmul)

    train = measure_training(model, batches, facts, cfg, plan, device)
    del model, batches
    details["decode"] = measure_decoding(args, cfg, data, work, plan, device, stats)
    if plan.matmul_rounds > 1:
        progress("matmul again (the peak is the best of both rounds)")
        measure_matmul(shapes, dtypes, plan.matmul_reps, device, matmul)

    for name in dtypes:
        best, samples = matmul_peak(matmul[name])
        stats[f"matmul_gflops_{name}"] = summary(samples, "GFLOP/s")
        details[f"matmul_gflops_{name}_by_shape"] = {s: statistics.median(v) for s, v in matmul[name].items()}
        details[f"matmul_{name}_peak_shape"] = best
    for p, t in train.items():
        stats[f"train_tokens_per_sec_{p}"] = summary(t["tokens_per_sec"], "target tokens/s")
        stats[f"train_gflops_{p}"] = summary(t["gflops"], "GFLOP/s")
        stats[f"train_step_seconds_{p}"] = summary(t["step_seconds"], "s")
    peak32 = stats["matmul_gflops_fp32"]["median"]
    stats["train_fraction_of_peak_fp32"] = summary(
        [g / peak32 for g in train["fp32"]["gflops"]], "of fp32 peak"
    )
    if "bf16" in dtypes:
        peak16 = stats["matmul_gflops_bf16"]["median"]
        stats["train_bf16_fraction_of_bf16_peak"] = summary(
            [g / peak16 for g in train["bf16"]["gflops"]], "of bf16 peak"
        )
    decode_peak = stats.get(f"matmul_gflops_{details['decode']['precision']}", stats["matmul_gflops_fp32"])
    for b in args.beams:  # decoding runs in its precision's matmuls (fp32 where bf16 is not native)
        name = search_name(b)
        stats[f"{name}_fraction_of_peak"] = summary(
            [g / decode_peak["median"] for g in details["decode"][name]["gflops"]], "of matmul peak"
        )
    details["train"] = {p: {"tokens_per_sec_per_pass": t["tokens_per_sec_per_pass"],
                            "step_seconds": t["step_seconds"]} for p, t in train.items()}  # fmt: skip

    if not args.no_train_run:  # a real training run: peak memory and where its time went
        progress(f"mt-train: {plan.run_steps} steps, validation every {plan.run_val_every} "
                 f"({plan.run_valid_sentences} sentences), greedy test on {args.split}")  # fmt: skip
        results, wall, child_rss = training_run(
            overrides + [f"data.cache_dir={cache}"], plan, work, args.threads
        )
        tr = results.get("train", {})
        stats["peak_rss_mb"] = summary([float(tr.get("peak_rss_mb", child_rss))], "MB")
        shares = time_shares(tr)
        details["train_run"] = {"steps": tr.get("steps"), "train_minutes": tr.get("train_minutes"),
                                "process_wall_seconds": wall, "precision": cfg.trainer.precision,
                                "peak_rss_mb_os": child_rss, "data_prep_seconds": tr.get("data_prep_seconds"),
                                "time_breakdown": shares}  # fmt: skip
        for key in ("outside_step_fraction", "outside_step_fraction_incl_validation"):
            if shares:
                stats[key] = summary([shares[key]], "of train time")
    return stats


LABELS = {
    "matmul_gflops_fp32": "matmul fp32 (best model shape)",
    "matmul_gflops_bf16": "matmul bf16 (best model shape)",
    "train_tokens_per_sec_fp32": "train fp32",
    "train_tokens_per_sec_bf16": "train bf16 autocast",
    "train_gflops_fp32": "train fp32, model FLOP rate",
    "train_gflops_bf16": "train bf16, model FLOP rate",
    "train_fraction_of_peak_fp32": "train fp32 / fp32 matmul peak",
    "train_bf16_fraction_of_bf16_peak": "train bf16 / bf16 matmul peak",
    "data_prep_first_seconds": "data prep, first run (fresh cache)",
    "data_prep_cached_seconds": "data prep, cached",
    "collate_ms_per_batch": "collate one train batch",
    "peak_rss_mb": "mt-train run: peak resident memory",
    "outside_step_fraction": "mt-train run: outside the step (excl. valid)",
    "outside_step_fraction_incl_validation": "mt-train run: outside the step (incl. valid)",
}


def report(out: dict[str, Any], beams: list[int], json_path: str | None) -> None:
    """The table, notes, the headline numbers as one JSON line, and the JSON file."""
    details, stats = out["details"], out["details"]["stats"]
    machine, decode = details["machine"], details["decode"]
    labels = dict(LABELS)
    for b in beams:  # decoding rows after the training rows
        name = search_name(b)
        labels[f"{name}_sents_per_sec"] = f"decode {name} ({decode['precision']})"
        labels[f"{name}_gflops"] = f"decode {name}, model FLOP rate"
        labels[f"{name}_fraction_of_peak"] = f"decode {name} / {decode['precision']} matmul peak"
    decoding = [
        f"{search_name(b)}_{k}" for b in beams for k in ("sents_per_sec", "gflops", "fraction_of_peak")
    ]
    order = [k for k in LABELS if not k.startswith(("data_", "collate", "peak", "outside"))]
    order += decoding + [k for k in LABELS if k not in order]
    rows = [(labels[k], stats[k]) for k in order if k in stats]
    print(f"{machine['cpu']}, {machine['torch_threads']} threads, torch {machine['torch']}, "
          f"device {machine['device']}; {details['mode']} run")  # fmt: skip
    print(format_table(rows))
    print(f"decoding: {decode['model']}; {decode['sentences']} sentences of {decode['split']}, output "
          f"capped at {decode['max_len_a']} * source + {decode['max_len_b']}")  # fmt: skip
    tb = details.get("train_run", {}).get("time_breakdown")
    if tb:
        print(f"mt-train run ({details['train_run']['steps']} steps, {details['train_run']['precision']}): "
              f"{tb['step_seconds']:.1f} s model step, {tb['valid_seconds']:.1f} s validation, "
              f"{tb['other_seconds']:.1f} s other (data loading, collation, logging, checkpoints)")  # fmt: skip
    missing = [k for k in REQUIRED_KEYS if k not in out]
    if missing:
        print(f"not measured: {', '.join(missing)}")
    if details["contended_at_start"]:
        print(f"warning: load average {machine['load_average_start'][0]:.1f} on {machine['cpus_usable']} cores "
              "at the start: contended figures, not this machine's speed")  # fmt: skip
    print(json.dumps({k: round(v, 4) for k, v in out.items() if k != "details"}))
    if json_path:
        Path(json_path).write_text(json.dumps(out, indent=2) + "\n")
    print(f"benchmark done in {details['wall_seconds']:.0f} s: fp32 matmul {_num(out['matmul_gflops_fp32'])} "
          f"GFLOP/s; train {_num(out['train_tokens_per_sec_fp32'])} / {_num(out['train_tokens_per_sec_bf16'])} "
          "target tokens/s (fp32 / bf16)" + (f"; results in {json_path}" if json_path else ""))  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import datasets

    args = parse_args(argv)
    started = time.perf_counter()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = PLANS[mode]
    datasets.disable_progress_bars()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    overrides = (SMOKE_MODEL if args.smoke else []) + list(args.overrides)
    overrides += [f"data.test_splits=[{args.split}]", f"trainer.device={args.device}"]
    cfg = compose_config(overrides)
    tuned = tune_allocator(cfg.trainer.max_rss_mb)
    machine = {**machine_info(device), "allocator_tuned": tuned}
    busy = device.type == "cpu" and machine["load_average_start"][0] > 0.5 * (machine["cpus_usable"] or 1)
    if busy:
        progress(f"warning: load average {machine['load_average_start'][0]:.1f} on {machine['cpus_usable']} "
                 "cores before the start: other work shares this machine, the figures are contended")  # fmt: skip
    details: dict[str, Any] = {
        "mode": mode,
        "plan": asdict(plan),
        "overrides": overrides,
        "machine": machine,
    }
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        stats = run(args, cfg, plan, overrides, device, Path(args.workdir).resolve(), details)
    else:
        with tempfile.TemporaryDirectory(prefix="mt-bench-") as tmp:
            stats = run(args, cfg, plan, overrides, device, Path(tmp), details)
    details["harness_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        details["cuda_max_memory_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    details["load_average_end"] = list(os.getloadavg())
    details["contended_at_start"] = busy
    details["stats"] = stats
    details["wall_seconds"] = time.perf_counter() - started
    out: dict[str, Any] = {k: s["median"] for k, s in stats.items()} | {"details": details}
    report(out, args.beams, args.json)
    return out


if __name__ == "__main__":
    main()
