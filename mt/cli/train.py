"""`mt-train`: train the configured model, then score it on the validation and test splits.

mt-train                                          # Multi30k de->en, GRU, Bahdanau attention
mt-train model/attention=luong_general data.src_lang=en data.tgt_lang=de
mt-train experiment=quick
mt-train resume=runs/de-en/default/2026-11-24_10-00-00   # continue a stopped run
torchrun --nproc_per_node=2 -m mt.train ...       # data-parallel (DDP) over 2 processes
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from mt.cli.common import (
    CONFIG_DIR,
    RUN_TIME_ENV,
    friendly_errors,
    preflight,
    record_swept_keys,
    register_resolvers,
)
from mt.config import ConfigError, TrainConfig, register_configs, validate_train
from mt.training.distributed import DistContext

register_resolvers()
register_configs()
log = logging.getLogger("mt.train")

# Config sections that must match when a run is resumed or a checkpoint is reused.
COMPATIBLE_SECTIONS = ("model", "tokenizer")


def check_compatible(saved: dict[str, Any], current: dict[str, Any], what: str) -> None:
    """Refuse a checkpoint whose model or tokenizer settings differ, naming each difference."""
    from mt.training.checkpoint import CheckpointError

    diffs = []
    for section in COMPATIBLE_SECTIONS:
        a, b = _flatten(saved.get(section, {}), section), _flatten(current.get(section, {}), section)
        diffs += [
            f"{k}: checkpoint {a.get(k)!r} vs now {b.get(k)!r}"
            for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)
        ]
    for key in ("src_lang", "tgt_lang"):
        a, b = saved.get("data", {}).get(key), current.get("data", {}).get(key)
        if a != b:
            diffs.append(f"data.{key}: checkpoint {a!r} vs now {b!r}")
    if diffs:
        raise CheckpointError(f"{what} does not fit this configuration: " + "; ".join(diffs))


def _flatten(d: Any, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
    else:
        out[prefix] = d
    return out


def _peak_rss_mb() -> int:
    """Peak resident memory of this process so far, MiB (getrusage's ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _time_breakdown(progress: Any) -> dict[str, float]:
    total = max(progress.train_seconds, 1e-9)
    other = max(total - progress.step_seconds - progress.valid_seconds, 0.0)
    return {
        "step_seconds": round(progress.step_seconds, 1),
        "valid_seconds": round(progress.valid_seconds, 1),
        "other_seconds": round(other, 1),
        "other_fraction": round(other / total, 4),
    }


def train(
    cfg: TrainConfig, resolved: dict[str, Any], run_dir: Path, dist: DistContext | None = None
) -> dict[str, Any]:
    """Library entry: train and evaluate as `cfg` says, writing into `run_dir`; returns results.

    With `dist` (one rank of a data-parallel run) every rank trains; rank 0 alone writes files
    and evaluates, the other ranks return only {"valid": {"best_greedy_bleu": ...}}.
    """
    from mt import runtime
    from mt.data.pipeline import prepare_data
    from mt.inference import SearchConfig
    from mt.loading import migrate_config
    from mt.models.seq2seq import build_model
    from mt.runtime import resolve_device, seed_everything, tune_allocator
    from mt.scoring import evaluate_splits, write_json
    from mt.tokenizer import Tokenizer
    from mt.training.checkpoint import atomic_write_bytes, load_checkpoint
    from mt.training.distributed import main_first, rank_seed
    from mt.training.trainer import Trainer

    started = time.perf_counter()
    dist = dist or DistContext()
    validate_train(cfg)
    tune_allocator(cfg.trainer.max_rss_mb)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.trainer.device)
    if dist.enabled and device.type == "cuda":  # one GPU per process
        if dist.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {dist.local_rank} has no GPU ({torch.cuda.device_count()} here): start at most "
                "that many processes per machine (torchrun --nproc_per_node) or use trainer.device=cpu"
            )
        device = torch.device("cuda", dist.local_rank)
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    resume_ckpt = None
    tokenizer = None
    if cfg.resume:
        last = Path(cfg.resume) / "checkpoints" / "last.pt"
        if last.is_file():
            resume_ckpt = load_checkpoint(last)
            check_compatible(migrate_config(resume_ckpt["config"]), resolved, f"checkpoint {last}")
            tokenizer = Tokenizer.from_bytes(resume_ckpt["tokenizer"])
        else:
            log.warning("resume=%s has no checkpoints/last.pt yet: starting from scratch there", cfg.resume)

    t0 = time.perf_counter()
    with main_first(dist):  # rank 0 trains the tokenizer and fills the caches; the others read them
        data = prepare_data(cfg.data, cfg.tokenizer, tokenizer=tokenizer)
    prep_seconds = time.perf_counter() - t0
    log.info("data ready in %.1fs: %s; %d train pairs dropped (empty or > %d subwords)",
             prep_seconds, ", ".join(f"{k}={len(v)}" for k, v in data.encoded.items()), data.n_dropped,
             cfg.data.max_len)  # fmt: skip
    if dist.is_main:
        atomic_write_bytes(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved)).encode())

    model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size)
    trainer = Trainer(cfg, model, data, run_dir, device, resolved, dist=dist)
    if resume_ckpt is not None:
        trainer.restore(Path(cfg.resume) / "checkpoints" / "last.pt")
    del resume_ckpt
    if not dist.is_main:  # its own dropout masks (rank 0 keeps the stream its checkpoints carry)
        torch.manual_seed(rank_seed(cfg.seed, dist.rank, trainer.progress.step))
    progress = trainer.fit()
    training_peak_mb = _peak_rss_mb()  # before the final beam-search evaluation adds its own
    if not dist.is_main:
        return {"valid": {"best_greedy_bleu": progress.best_bleu}}

    # Final scores with the best checkpoint and beam search.
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    t = cfg.trainer
    search = SearchConfig(beam_size=t.test_beam_size, length_penalty=t.length_penalty,
                          max_len_a=t.max_len_a, max_len_b=t.max_len_b, precision=t.precision)  # fmt: skip
    splits = ["validation"] + [s for s in data.encoded if s not in ("train", "validation")]
    scores = evaluate_splits(model, data, cfg.data, splits, search, device, run_dir, cfg.data.tgt_lang,
                             plot_sentences=list(t.plot_sentences), tb=trainer.tb, step=progress.step)  # fmt: skip
    results = {
        "valid": {
            "best_greedy_bleu": progress.best_bleu,
            "best_step": progress.best_step,
            **scores.pop("validation"),
        },
        "test": scores,
        "train": {
            "steps": progress.step,
            "epochs": progress.epoch + progress.batch_in_epoch / max(len(trainer.sampler), 1),
            "train_minutes": round(progress.train_seconds / 60, 2),
            # where the training wall time went: the model step, validation, and the rest
            # (data loading, collation, logging, checkpoints)
            "time_breakdown": _time_breakdown(progress),
            "data_prep_seconds": round(prep_seconds, 1),
            "nonfinite_updates": progress.nonfinite_total,
            # this process's peak resident memory (a resumed run: since the resume), in all
            # and up to the end of training (validations included, final evaluation not)
            "peak_rss_mb": _peak_rss_mb(),
            "peak_rss_mb_training": training_peak_mb,
            "memory_trims": runtime.trims,
            "padding": trainer.padding,
            "parameters": model.num_parameters(),
            "history": progress.history,
        },
        "wall_minutes": round((time.perf_counter() - started) / 60, 2),
        "device": str(device),
        "torch": torch.__version__,
        "config": resolved,
    }
    write_json(run_dir / "results.json", results)
    if trainer.tb:
        hparams = {
            k: v
            for k, v in _flatten(resolved, "").items()
            if k.split(".")[1] in ("model", "optim", "trainer", "data", "tokenizer", "seed")
        }
        metrics = {
            "valid_bleu": results["valid"]["bleu"]["score"],
            "best_greedy_valid_bleu": progress.best_bleu,
        }
        metrics.update({f"{s}_bleu": v["bleu"]["score"] for s, v in scores.items()})
        trainer.tb.hparams({k.lstrip("."): v for k, v in hparams.items()}, metrics)
        trainer.tb.close()
    first_test = next(iter(scores.items()), None)
    summary = f"done: {progress.step} steps in {progress.train_seconds / 60:.1f} min; valid BLEU {results['valid']['bleu']['score']:.2f}"
    if first_test:
        summary += f"; {first_test[0]} BLEU {first_test[1]['bleu']['score']:.2f} (beam {search.beam_size})"
    summary += f"; results in {run_dir / 'results.json'}"
    print(summary)
    log.info(summary)
    return results


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@friendly_errors
def hydra_main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the best validation BLEU (what sweepers maximise)."""
    from hydra.core.hydra_config import HydraConfig

    from mt.training.distributed import init_distributed

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    typed: TrainConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    preflight("train", sys.argv[1:])
    record_swept_keys(sys.argv[1:])
    dist = init_distributed("cuda" if torch.cuda.is_available() else "cpu")  # main() joined already
    results = train(typed, resolved, run_dir, dist)
    return float(results["valid"]["best_greedy_bleu"])


# Ranks > 0 of a data-parallel run: no .hydra/ or train.log of their own in rank 0's run
# directory, and only warnings and errors (on standard error).
WORKER_OVERRIDES = [
    "hydra.output_subdir=null",
    "hydra/job_logging=stderr",
    "hydra.job_logging.root.level=WARNING",
    "hydra/hydra_logging=none",
]


def main() -> None:
    """`mt-train`, `python -m mt.train`; under torchrun every process runs it (data-parallel).

    Before Hydra composes the config, the ranks join the process group and take rank 0's clock
    for the run directory's time stamp, so they all name the same directory.
    """
    from mt.training.distributed import broadcast_object, init_distributed, shutdown

    preflight("train", sys.argv[1:])
    record_swept_keys(sys.argv[1:])
    dist = init_distributed("cuda" if torch.cuda.is_available() else "cpu")
    if dist.enabled:
        os.environ[RUN_TIME_ENV] = repr(broadcast_object(dist, time.time()))
        if not dist.is_main:
            sys.argv += WORKER_OVERRIDES
    try:
        hydra_main()
    finally:
        shutdown(dist)


if __name__ == "__main__":
    main()
