"""One training run from a typed config to `results.json`: what `mt-train` does, step by step.

`train` reads as the table of contents; each step is a small named function below it.
"""

from __future__ import annotations

import logging
import resource
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from mt import runtime
from mt.config import TrainConfig, validate_train
from mt.data.pipeline import PreparedData, prepare_data
from mt.data.tokenizer import Tokenizer
from mt.errors import ConfigError
from mt.io import atomic_write_text, read_json, write_json
from mt.models.attention import check_attention_name, check_coverage
from mt.models.seq2seq import build_model
from mt.training.checkpoint import flatten
from mt.training.distributed import DistContext, main_first, rank_seed
from mt.training.final_evaluation import final_evaluation
from mt.training.gold_alignment import final_alignment, load_gold_scorer
from mt.training.progress import Progress
from mt.training.run_dir import RunPlan, plan_run
from mt.training.trainer import Trainer

log = logging.getLogger("mt.train")


def train(
    cfg: TrainConfig, resolved: dict[str, Any], run_dir: Path, dist: DistContext | None = None
) -> dict[str, Any]:
    """Train and evaluate as `cfg` says, writing into `run_dir`; returns the results.

    With `dist` (one rank of a data-parallel run) every rank trains; rank 0 alone writes files
    and evaluates, the other ranks return only {"valid": {"best_greedy_bleu": ...}}.
    """
    started = time.perf_counter()
    dist = dist or DistContext()
    device = set_up_process(cfg, dist)
    plan = plan_run(run_dir, cfg, resolved, check_fresh=dist.is_main)  # refuses what must not run there
    if plan.complete:
        return nothing_to_do(run_dir, plan, dist)
    gold = load_gold_scorer(cfg, dist)  # alignment.gold: read once, on rank 0; None without it
    resume = plan.checkpoint
    data, prep_seconds = prepare_run_data(cfg, resume, dist)
    if dist.is_main:
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved)))
    model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size)
    trainer = Trainer(cfg, model, data, run_dir, device, resolved, dist=dist, gold=gold)
    if resume is not None:
        trainer.restore(resume, Path(cfg.resume))
    del resume, plan
    if not dist.is_main:  # its own dropout masks (rank 0 keeps the stream its checkpoints carry)
        torch.manual_seed(rank_seed(cfg.seed, dist.rank, trainer.progress.step))
    progress = trainer.fit()  # no update if training had ended (a run killed in its final evaluation)
    training_peak_mb = peak_rss_mb()  # before the final beam-search evaluation adds its own
    if not dist.is_main:
        return {"valid": {"best_greedy_bleu": progress.best_bleu}}

    scores = final_evaluation(cfg, model, data, run_dir, device, trainer)
    results = collect_results(resolved, trainer, scores, prep_seconds, training_peak_mb, started, device)
    if gold is not None:  # with the best model, which final_evaluation loaded
        results["alignment"] = final_alignment(gold, model, data.tokenizer, device, cfg.trainer.precision,
                                               run_dir, model_facts(cfg, trainer))  # fmt: skip
    write_json(run_dir / "results.json", results)
    log_hparams(trainer, resolved, results)
    report_summary(results, run_dir)
    return results


def set_up_process(cfg: TrainConfig, dist: DistContext) -> torch.device:
    """Check the config (the attention name against the registry), tune the allocator, seed every generator; the device this rank trains on."""
    validate_train(cfg)
    check_attention_name(cfg.model.attention.name)
    check_coverage(cfg.model.attention.name, cfg.model.attention.coverage)
    runtime.tune_allocator(cfg.trainer.max_rss_mb)
    runtime.seed_everything(cfg.seed)
    device = runtime.resolve_device(cfg.trainer.device, key="trainer.device")
    if dist.enabled and device.type == "cuda":  # one GPU per process
        if dist.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {dist.local_rank} has no GPU ({torch.cuda.device_count()} here): start at most "
                "that many processes per machine (torchrun --nproc_per_node) or use trainer.device=cpu"
            )
        device = torch.device("cuda", dist.local_rank)
    return device


def nothing_to_do(run_dir: Path, plan: RunPlan, dist: DistContext) -> dict[str, Any]:
    """A finished run resumed: its stored results, and no file changed."""
    if dist.is_main:
        print(plan.message(run_dir))
        log.info(plan.message(run_dir))
    return read_json(run_dir / "results.json")


def prepare_run_data(
    cfg: TrainConfig, resume: dict[str, Any] | None, dist: DistContext
) -> tuple[PreparedData, float]:
    """The corpus, tokenized with the checkpoint's tokenizer when resuming; (data, seconds)."""
    t0 = time.perf_counter()
    tokenizer = Tokenizer.from_bytes(resume["tokenizer"]) if resume is not None else None
    with main_first(dist):  # rank 0 trains the tokenizer and fills the caches; the others read them
        data = prepare_data(cfg.data, cfg.tokenizer, tokenizer=tokenizer)
    seconds = time.perf_counter() - t0
    log.info("data ready in %.1fs: %s; %d train pairs dropped (empty or > %d subwords)",
             seconds, ", ".join(f"{k}={len(v)}" for k, v in data.encoded.items()), data.n_dropped,
             cfg.data.max_len)  # fmt: skip
    return data, seconds


def model_facts(cfg: TrainConfig, trainer: Trainer) -> dict[str, Any]:
    """What alignment.json says of the model it scored (the fields `mt-align` writes, and the file)."""
    return {"checkpoint": str(trainer.ckpt_dir / "best.pt"), "step": trainer.progress.best_step,
            "attention": cfg.model.attention.name, "rnn": cfg.model.rnn_type, "src_lang": cfg.data.src_lang,
            "tgt_lang": cfg.data.tgt_lang}  # fmt: skip


def collect_results(
    resolved: dict[str, Any],
    trainer: Trainer,
    scores: dict[str, Any],
    prep_seconds: float,
    training_peak_mb: int,
    started: float,
    device: torch.device,
) -> dict[str, Any]:
    """The content of results.json: scores, training counters and timing, memory, the config."""
    progress = trainer.progress
    scores = dict(scores)
    return {
        "valid": {
            "best_greedy_bleu": progress.best_bleu,
            "best_step": progress.best_step,
            **scores.pop("validation"),
        },  # fmt: skip
        "test": scores,
        "train": {
            "steps": progress.step,
            "epochs": progress.epoch + progress.batch_in_epoch / max(len(trainer.sampler), 1),
            "train_minutes": round(progress.train_seconds / 60, 2),
            # where the training wall time went: the model step, validation, and the rest
            # (data loading, collation, logging, checkpoints)
            "time_breakdown": time_breakdown(progress),
            "data_prep_seconds": round(prep_seconds, 1),
            "nonfinite_updates": progress.nonfinite_total,
            # this process's peak resident memory (a resumed run: since the resume), in all
            # and up to the end of training (validations included, final evaluation not)
            "peak_rss_mb": peak_rss_mb(),
            "peak_rss_mb_training": training_peak_mb,
            "memory_trims": runtime.trims,
            "padding": trainer.padding,
            "parameters": trainer.model.num_parameters(),
            "history": progress.history,
        },
        "wall_minutes": round((time.perf_counter() - started) / 60, 2),
        "device": str(device),
        "torch": torch.__version__,
        "config": resolved,
    }


def log_hparams(trainer: Trainer, resolved: dict[str, Any], results: dict[str, Any]) -> None:
    """The HParams tab of TensorBoard: the run's settings beside its final scores."""
    if not trainer.tb:
        return
    sections = ("model", "optim", "trainer", "data", "tokenizer", "seed")
    hparams = {k: v for k, v in flatten(resolved, "").items() if k.split(".")[1] in sections}
    metrics = {"valid_bleu": results["valid"]["bleu"]["score"],
               "best_greedy_valid_bleu": results["valid"]["best_greedy_bleu"]}  # fmt: skip
    metrics.update({f"{s}_bleu": v["bleu"]["score"] for s, v in results["test"].items()})
    trainer.tb.hparams({k.lstrip("."): v for k, v in hparams.items()}, metrics)
    trainer.tb.close()


def report_summary(results: dict[str, Any], run_dir: Path) -> None:
    """The one-line summary, on standard output and in the log."""
    train = results["train"]
    summary = (f"done: {train['steps']} steps in {train['train_minutes']:.1f} min; "
               f"valid BLEU {results['valid']['bleu']['score']:.2f}")  # fmt: skip
    first_test = next(iter(results["test"].items()), None)
    if first_test:
        beam = first_test[1]["search"]["beam_size"]
        summary += f"; {first_test[0]} BLEU {first_test[1]['bleu']['score']:.2f} (beam {beam})"
    if "alignment" in results:
        summary += f"; AER {results['alignment']['all']['aer']:.4f}"
    summary += f"; results in {run_dir / 'results.json'}"
    print(summary)
    log.info(summary)


def peak_rss_mb() -> int:
    """Peak resident memory of this process so far, MiB (getrusage's ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def time_breakdown(progress: Progress) -> dict[str, float]:
    """Training wall time split into the model step, validation and the rest."""
    total = max(progress.train_seconds, 1e-9)
    other = max(total - progress.step_seconds - progress.valid_seconds, 0.0)
    return {
        "step_seconds": round(progress.step_seconds, 1),
        "valid_seconds": round(progress.valid_seconds, 1),
        "other_seconds": round(other, 1),
        "other_fraction": round(other / total, 4),
    }
