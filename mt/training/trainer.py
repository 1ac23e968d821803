"""The training loop: updates, validation cadence, early stopping, checkpoints, logging.

Everything the loop needs to continue exactly where it stopped (model, optimizer,
schedule, step, epoch and batch position, RNG states, counters) goes into each checkpoint;
batches of an epoch are a pure function of (seed, epoch), so a resumed run sees the same
data in the same order and the same dropout masks.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mt.data.loaders import make_train_loader, padding_stats
from mt.data.pipeline import PreparedData
from mt.errors import TrainingStopped
from mt.evaluation.gold_scores import GoldScorer
from mt.evaluation.tensorboard import TensorBoard
from mt.models.seq2seq import Seq2Seq
from mt.runtime import autocast, release_memory, seconds_since_start
from mt.search.base import SearchConfig
from mt.training.checkpoint import atomic_torch_save, checkpoint_state, set_rng_state
from mt.training.distributed import DistContext, all_reduce_sum, broadcast_object, data_parallel
from mt.training.optimizer import build_optimizer
from mt.training.progress import Progress, grouped
from mt.training.run_dir import training_ended
from mt.training.schedule import build_schedule
from mt.training.validation import log_validation, run_validation

log = logging.getLogger("mt.train")


class Trainer:
    """Trains `model` on `data` as `cfg` (a TrainConfig) says, writing into `run_dir`."""

    def __init__(
        self,
        cfg: Any,
        model: Seq2Seq,
        data: PreparedData,
        run_dir: Path,
        device: torch.device,
        resolved_config: dict[str, Any],
        dist: DistContext | None = None,
        gold: GoldScorer | None = None,
    ) -> None:
        """With `dist` (a data-parallel run) each rank trains on its share of the batches and only
        rank 0 validates and writes checkpoints and TensorBoard; with `gold` (rank 0) each
        validation scores the attention's AER too."""
        self.cfg, self.model, self.data, self.device = cfg, model.to(device), data, device
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.resolved_config = resolved_config
        self.dist = dist or DistContext()
        self.is_main = self.dist.is_main
        self.gold = gold
        # DDP around model.loss for the training forward/backward; validation uses self.model.
        self.ddp = data_parallel(model, device) if self.dist.enabled else None
        t = cfg.trainer
        o = cfg.optim
        self.optimizer = build_optimizer(model.parameters(), o, device)
        self.loader = make_train_loader(data.train, data.tokenizer, cfg.data, seed=cfg.seed,
                                        rank=self.dist.rank, world_size=self.dist.world_size)  # fmt: skip
        self.sampler = self.loader.sampler
        step_limits = [n for n in (t.max_steps, t.max_epochs * len(self.sampler)) if n > 0]
        self.schedule = build_schedule(self.optimizer, o, min(step_limits, default=0), t.max_minutes * 60)
        self._clock = (time.perf_counter(), 0.0)  # (fit() start, training seconds before it)
        self._synced_seconds = 0.0  # data-parallel: the ranks' mean training seconds at the last sync
        self.padding = padding_stats(self.sampler, self.sampler.src_lens, self.sampler.tgt_lens)
        self.progress = Progress()
        self.tb: TensorBoard | None = None
        self.valid_search = SearchConfig.from_trainer(t, beam_size=1)
        self._stop_signal: int | None = None

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        """Everything needed to resume (the layout of `mt.training.checkpoint`)."""
        return checkpoint_state(self.model, self.optimizer, self.schedule, dict(self.progress.__dict__),
                                self.resolved_config, self.data.tokenizer)  # fmt: skip

    def save(self, best: bool = False) -> None:
        """Write checkpoints/last.pt (and best.pt, and a rotated step file when configured)."""
        if not self.is_main:
            return
        state = self.state()
        atomic_torch_save(state, self.ckpt_dir / "last.pt")
        if best:
            atomic_torch_save(state, self.ckpt_dir / "best.pt")
        t = self.cfg.trainer
        if t.checkpoint_every > 0 and self.progress.step % t.checkpoint_every == 0:
            atomic_torch_save(state, self.ckpt_dir / f"step_{self.progress.step:08d}.pt")
            for old in sorted(self.ckpt_dir.glob("step_*.pt"))[: -t.keep_last]:
                old.unlink(missing_ok=True)

    def restore(self, ckpt: dict[str, Any], where: Path | str = "checkpoint") -> None:
        """Continue from a checkpoint dict written by `save` (already loaded: last.pt is read once)."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.progress = Progress(**ckpt["progress"])
        set_rng_state(ckpt["rng"])
        log.info("resumed from %s at step %d (epoch %d, batch %d)", where, self.progress.step,
                 self.progress.epoch, self.progress.batch_in_epoch)  # fmt: skip

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stop_signal = signum

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not in the main thread
                pass
        return previous

    # ------------------------------------------------------------------ loop
    def _budget_exceeded(self, started: float, base_seconds: float) -> bool:
        minutes = self.cfg.trainer.max_minutes
        return minutes > 0 and base_seconds + time.perf_counter() - started >= minutes * 60

    def _sync_step(self, n_tokens: int, started: float, base_seconds: float) -> tuple[int, str]:
        """Data-parallel: one all-reduce of [target tokens, budget votes, signal votes] before a step.

        Returns (all ranks' target tokens, a stop reason or ''); every rank gets the same answer,
        so all stop together when any rank's time budget ran out or any rank got a signal.
        """
        budget = self._budget_exceeded(started, base_seconds)
        seconds = base_seconds + time.perf_counter() - started
        tokens, budget_votes, signal_votes, seconds_sum = all_reduce_sum(
            self.dist, [n_tokens, float(budget), float(self._stop_signal is not None), seconds]
        )
        self._synced_seconds = seconds_sum / self.dist.world_size  # one clock for the LR schedule
        if signal_votes:
            here = self._stop_signal
            name = signal.Signals(here).name if here is not None else "on another rank"
            return int(tokens), f"signal {name}"
        if budget_votes:
            return int(tokens), f"max_minutes={self.cfg.trainer.max_minutes}"
        return int(tokens), ""

    def fit(self) -> Progress:
        """Train until max_steps / max_epochs / max_minutes / early stopping; returns the counters."""
        t = self.cfg.trainer
        p = self.progress
        if self.is_main:
            purge = p.step + 1 if p.step > 0 else None  # drop events written after the checkpoint
            self.tb = TensorBoard(self.run_dir / "tb", purge_step=purge)
        ended = training_ended(vars(p), t)  # before any update: an ended run trains no more
        if ended and p.history and p.history[-1]["step"] == p.step:
            log.info("training had ended at step %d (%s): no update, no checkpoint", p.step, ended)
            return p
        previous = self._install_signal_handlers()
        started, base_seconds = time.perf_counter(), p.train_seconds
        self._clock = (started, base_seconds)
        bar = tqdm(
            total=t.max_steps or None,
            initial=p.step,
            disable=not (t.progress and self.is_main),
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 60.0,  # a log file gets a line a minute
            desc="train",
            unit="step",
        )
        window = {"loss": 0.0, "tokens": 0, "time": 0.0, "grad_norm": 0.0, "steps": 0}
        first_update = True
        stop_reason = ended  # ended, its last step not validated yet: validated below, no update
        try:
            while not stop_reason:
                if p.epoch >= t.max_epochs:
                    stop_reason = f"max_epochs={t.max_epochs}"
                    break
                self.sampler.set_epoch(p.epoch, start_batch=p.batch_in_epoch)
                for group in grouped(self.loader, t.accumulate_batches):
                    t0 = time.perf_counter()
                    group = [batch.to(self.device) for batch in group]
                    n_tokens = sum(batch.n_tgt_tokens for batch in group)
                    if self.dist.enabled:  # before the batches are consumed: a stop leaves them for a resume
                        n_tokens, stop_reason = self._sync_step(n_tokens, started, base_seconds)
                        if stop_reason:
                            break
                    t_step = time.perf_counter()
                    loss_per_token, grad_norm, ok = self._update(group, n_tokens)
                    release_memory()  # keeps resident memory under trainer.max_rss_mb
                    p.step_seconds += time.perf_counter() - t_step
                    p.batch_in_epoch += len(group)
                    dt = time.perf_counter() - t0
                    window["time"] += dt
                    # The cadence (logging, validation, checkpoints) follows steps: a skipped
                    # non-finite update left the step as it was, so it has nothing to run again.
                    if ok:  # (data-parallel: the same on every rank)
                        window["loss"] += loss_per_token * n_tokens
                        window["tokens"] += n_tokens
                        window["grad_norm"] += grad_norm
                        window["steps"] += 1
                        bar.update(1)
                        if window["steps"] == 1 and first_update:
                            first_update = False
                            log.info("step %d: the first update of this process, %.1f s after it started",
                                     p.step, seconds_since_start())  # fmt: skip
                        if p.step % t.log_every == 0:
                            self._log_train(window, bar)
                            window = dict.fromkeys(window, 0)
                            window["loss"] = 0.0
                        if p.step % t.val_every == 0:
                            p.train_seconds = base_seconds + time.perf_counter() - started
                            stop_reason = self.validate()
                        elif t.checkpoint_every and p.step % t.checkpoint_every == 0:
                            p.train_seconds = base_seconds + time.perf_counter() - started
                            self.save()
                    if not stop_reason and t.max_steps and p.step >= t.max_steps:
                        stop_reason = f"max_steps={t.max_steps}"
                    if not self.dist.enabled:  # (data-parallel: all ranks vote in the next _sync_step)
                        if not stop_reason and self._budget_exceeded(started, base_seconds):
                            stop_reason = f"max_minutes={t.max_minutes}"
                        if self._stop_signal is not None and not stop_reason:
                            stop_reason = f"signal {signal.Signals(self._stop_signal).name}"
                    if stop_reason:
                        break
                else:
                    p.epoch += 1
                    p.batch_in_epoch = 0
        finally:
            bar.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        p.train_seconds = base_seconds + time.perf_counter() - started
        if not p.history or p.history[-1]["step"] != p.step:  # the last steps were not validated yet
            if not stop_reason.startswith("signal"):
                self.validate()
                # counted in the training time like every other validation (its seconds are in
                # valid_seconds; the time breakdown must add up to train_seconds)
                p.train_seconds = base_seconds + time.perf_counter() - started
        self.save()
        log.info("training stopped (%s) after %d steps, %.1f min; best valid BLEU %.2f at step %d",
                 stop_reason, p.step, p.train_seconds / 60, p.best_bleu, p.best_step)  # fmt: skip
        if stop_reason.startswith("signal"):
            raise TrainingStopped(
                f"stopped by {stop_reason}; checkpoint written to {self.ckpt_dir / 'last.pt'}"
            )
        return p

    def _training_seconds(self) -> float:
        """Training wall time so far, across resumes; data-parallel: the same on every rank."""
        if self.dist.enabled:
            return self._synced_seconds
        started, base_seconds = self._clock
        return base_seconds + time.perf_counter() - started

    def _update(self, batches: list, n_tokens: int | None = None) -> tuple[float, float, bool]:
        """One optimizer step on the summed loss of `batches` (trainer.accumulate_batches of them)
        over their target tokens: the update of one batch holding them all. Returns (loss per
        token, grad norm, whether it was applied).

        Data-parallel: `n_tokens` counts the target tokens of all ranks' batches of this step, the
        returned loss is this rank's summed loss / `n_tokens` (the ranks' values add up to the
        global per-token loss) and the gradient is that of the global per-token loss; gradients are
        all-reduced once, at the last batch.
        """
        t, p = self.cfg.trainer, self.progress
        self.model.train()
        # See et al.: the coverage loss, from update coverage_loss_after + 1 on
        on = t.coverage_loss_weight and p.step >= t.coverage_loss_after
        coverage = {"coverage_weight": t.coverage_loss_weight} if on else {}
        world = self.dist.world_size
        if world == 1:
            n_tokens = sum(batch.n_tgt_tokens for batch in batches)
        elif n_tokens is None:
            raise ValueError("a data-parallel update needs n_tokens, the target tokens of all ranks")
        # DDP averages gradients over ranks: (1/W) sum_r d(W loss_r / N) = d(sum_r loss_r / N)
        scale = world / n_tokens
        self.optimizer.zero_grad(set_to_none=False)
        loss_sum = 0.0
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            with nullcontext() if self.ddp is None or last else self.ddp.no_sync():
                with autocast(self.device, t.precision):
                    loss, _ = (self.model.loss if self.ddp is None else self.ddp)(
                        batch,
                        label_smoothing=t.label_smoothing,
                        teacher_forcing=t.teacher_forcing,
                        **coverage,
                    )
                loss = loss * scale
                loss.backward()
            loss_sum += float(loss.detach())
        clip = self.cfg.optim.clip_grad_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else math.inf)
        loss_value, norm_value = loss_sum / world, float(grad_norm)
        # Data-parallel: the norm of the all-reduced gradient alone decides, the same on every rank.
        if not (math.isfinite(norm_value) and (world > 1 or math.isfinite(loss_value))):
            p.nonfinite_in_row += 1
            p.nonfinite_total += 1
            log.warning("non-finite loss or gradient at step %d (%d in a row): update skipped",
                        p.step + 1, p.nonfinite_in_row)  # fmt: skip
            if self.tb:
                self.tb.scalars({"train/nonfinite_total": p.nonfinite_total}, p.step)
            if p.nonfinite_in_row > t.max_nonfinite:
                self.save()
                raise TrainingStopped(
                    f"{p.nonfinite_in_row} non-finite losses in a row (trainer.max_nonfinite={t.max_nonfinite}); "
                    f"the last good state is in {self.ckpt_dir / 'last.pt'}. Lower optim.lr or use precision=fp32."
                )
            return loss_value, norm_value, False
        p.nonfinite_in_row = 0
        self.optimizer.step()
        p.step += 1
        self.schedule.step_update(p.step, self._training_seconds())
        return loss_value, norm_value, True

    def _log_train(self, w: dict[str, float], bar: tqdm) -> None:
        p = self.progress
        loss_sum = w["loss"]
        if self.dist.enabled:  # each rank summed its own batches' losses; tokens are already global
            (loss_sum,) = all_reduce_sum(self.dist, [loss_sum])
        loss = loss_sum / max(w["tokens"], 1)
        tps = w["tokens"] / max(w["time"], 1e-9)
        lr = self.schedule.lr
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tps:.0f}", lr=f"{lr:.2e}", refresh=False)
        if self.tb:
            self.tb.scalars(
                {"train/loss": loss, "train/lr": lr, "train/grad_norm": w["grad_norm"] / max(w["steps"], 1),
                 "train/tokens_per_sec": tps, "train/epoch": p.epoch},
                p.step,
            )  # fmt: skip

    def validate(self) -> str:
        """Validation loss, greedy BLEU/chrF, plots, samples; checkpoints; returns a stop reason or ''.

        Data-parallel: rank 0 validates; the others receive its scores, so that counters, the
        schedule and the early-stopping decision stay the same on every rank.
        """
        t, p = self.cfg.trainer, self.progress
        t0 = time.perf_counter()
        v, record = None, None
        if self.is_main:
            v = run_validation(self.model, self.data, self.cfg.data, self.valid_search, self.device,
                               t.valid_max_sentences, gold=self.gold)  # fmt: skip
            record = {"step": p.step, "bleu": v.bleu, "chrf": v.chrf, "loss": v.loss, "ppl": v.ppl,
                      "lr": self.schedule.lr, "minutes": p.train_seconds / 60,
                      **v.diagnostics}  # fmt: skip
        record = broadcast_object(self.dist, record)
        bleu, chrf, nll = record["bleu"], record["chrf"], record["loss"]
        p.history.append(record)
        improved = bleu > p.best_bleu
        if improved:
            p.best_bleu, p.best_step, p.bad_validations = bleu, p.step, 0
        else:
            p.bad_validations += 1
        self.schedule.valid_update(bleu)
        if self.tb and v is not None:
            log_validation(
                self.tb, v, self.data, p.step, t.sample_sentences, list(t.plot_sentences), self.run_dir
            )
        log.info("step %d: valid BLEU %.2f chrF %.2f loss %.3f ppl %.2f%s (%.1fs)", p.step, bleu, chrf, nll,
                 record["ppl"], " *" if improved else "", time.perf_counter() - t0)  # fmt: skip
        p.valid_seconds += time.perf_counter() - t0  # (the checkpoint write itself not included)
        self.save(best=improved)
        # Decoding and the checkpoint leave the heap cut into pieces of other sizes than a
        # training step needs; without this, the next step grew resident memory past the cap
        # (3166 MiB with a 2600 MiB cap, measured). Once per validation: it costs one step's page faults.
        release_memory(force=bool(self.cfg.trainer.max_rss_mb))
        # patience N: stop on the N-th validation in a row without a BLEU gain (the rule of
        # optim.plateau_patience too)
        if t.early_stopping_patience and p.bad_validations >= t.early_stopping_patience:
            return f"early stopping: no BLEU gain in {p.bad_validations} validations"
        return ""
