"""Learning-rate schedules: their values, their state across a resume, and the budget
schedule and the cooldown driven by the trainer's step and time limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from clihelpers import write_corpus

from mt.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    TokenizerConfig,
    TrainConfig,
    TrainerConfig,
    validate_train,
)
from mt.data.pipeline import prepare_data
from mt.errors import ConfigError
from mt.models.seq2seq import build_model
from mt.training.schedule import Budget, Constant, Cooldown, InverseSqrt, Plateau, build_schedule
from mt.training.trainer import Trainer


def optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lr_of(opt: torch.optim.Optimizer) -> float:
    return opt.param_groups[0]["lr"]


def test_budget_decays_linearly_over_steps_to_min_lr():
    opt = optimizer()
    s = Budget(opt, base_lr=2e-3, min_lr=1e-5, warmup=0, total_steps=100, total_seconds=0)
    assert lr_of(opt) == pytest.approx(2e-3)
    s.step_update(25)
    assert lr_of(opt) == pytest.approx(1.5e-3)
    s.step_update(50, seconds=10_000.0)  # no time limit: seconds are ignored
    assert lr_of(opt) == pytest.approx(1e-3)
    s.step_update(100)
    assert lr_of(opt) == pytest.approx(1e-5)  # floored at min_lr, never zero or negative
    s.step_update(150)
    assert lr_of(opt) == pytest.approx(1e-5)


def test_budget_follows_whichever_limit_is_closer():
    opt = optimizer()
    s = Budget(opt, base_lr=1.0, min_lr=0.0, warmup=0, total_steps=1000, total_seconds=600)
    s.step_update(100, seconds=300)  # 10% of the steps, 50% of the time
    assert lr_of(opt) == pytest.approx(0.5)
    s.step_update(900, seconds=60)  # 90% of the steps, 10% of the time
    assert lr_of(opt) == pytest.approx(0.1)
    s = Budget(opt, base_lr=1.0, min_lr=0.0, warmup=0, total_steps=0, total_seconds=600)
    s.step_update(10**6, seconds=150)
    assert lr_of(opt) == pytest.approx(0.75)


def test_budget_warms_up_then_decays():
    opt = optimizer()
    s = Budget(opt, base_lr=1.0, min_lr=0.0, warmup=10, total_steps=100, total_seconds=0)
    assert lr_of(opt) == pytest.approx(0.1)  # step 0: 1/10 of the rate
    s.step_update(4)
    assert lr_of(opt) == pytest.approx(0.5 * 0.96)
    s.step_update(20)
    assert lr_of(opt) == pytest.approx(0.8)


def test_budget_needs_a_limit():
    with pytest.raises(ValueError, match="step limit or a time limit"):
        Budget(optimizer(), 1.0, 0.0, 0, 0, 0.0)


def test_inverse_sqrt_and_plateau_values_and_state():
    opt = optimizer()
    s = InverseSqrt(opt, base_lr=1.0, min_lr=0.0, warmup=4)
    assert lr_of(opt) == pytest.approx(0.25)
    s.step_update(15)  # step 16: sqrt(4 / 16)
    assert lr_of(opt) == pytest.approx(0.5)
    p = Plateau(opt, base_lr=1.0, min_lr=0.3, factor=0.5, patience=2)
    for score in (10.0, 9.0, 9.5):  # two validations without a better score -> halve
        p.valid_update(score)
    assert lr_of(opt) == pytest.approx(0.5)
    state = p.state_dict()
    q = Plateau(optimizer(), base_lr=1.0, min_lr=0.3, factor=0.5, patience=2)
    q.load_state_dict(state)
    for score in (8.0, 8.0):
        q.valid_update(score)
    assert q.lr == pytest.approx(0.3)  # 0.25 floored at min_lr


# Validation scores: a new best, then three in a row without improvement (an equal score is
# no improvement), a new best, then three more without.
SCORES = [10.0, 12.0, 11.0, 12.0, 9.0, 13.0, 13.0, 12.5, 12.9]
ACTS_AT = [4, 8]  # indices of the third validation in a row without improvement


def test_plateau_acts_after_patience_validations_without_improvement():
    """patience N: the rate decays on the N-th validation in a row without a better score."""
    opt = optimizer()
    s = Plateau(opt, base_lr=1.0, min_lr=0.0, factor=0.5, patience=3)
    decayed = []
    for i, score in enumerate(SCORES):
        before = s.lr
        s.valid_update(score)
        if s.lr < before:
            decayed.append(i)
    assert decayed == ACTS_AT
    assert lr_of(opt) == pytest.approx(0.25)
    s1 = Plateau(optimizer(), base_lr=1.0, min_lr=0.0, factor=0.5, patience=1)
    for score in (5.0, 4.0):  # patience 1: the first validation without improvement decays
        s1.valid_update(score)
    assert s1.lr == pytest.approx(0.5)


def test_plateau_patience_must_be_at_least_one():
    with pytest.raises(ValueError, match="at least 1"):
        Plateau(optimizer(), base_lr=1.0, min_lr=0.0, factor=0.5, patience=0)
    cfg = TrainConfig()
    cfg.optim.plateau_patience = 0
    with pytest.raises(ConfigError, match="optim.plateau_patience"):
        validate_train(cfg)


def test_early_stopping_and_plateau_count_patience_alike(tmp_path: Path, monkeypatch):
    """The trainer's early stopping and the plateau schedule, both with patience 3, see the same
    validation scores and act on the same validation: the third in a row without improvement."""
    trainer = tiny_trainer(
        tmp_path, OptimConfig(schedule="plateau", plateau_patience=3), early_stopping_patience=3
    )
    scores = iter(SCORES)
    monkeypatch.setattr(
        "mt.training.validation.quick_bleu", lambda hyps, refs, lowercase=False: (next(scores), 0.0)
    )
    stops, decays = [], []
    for i in range(len(SCORES)):
        lr = trainer.schedule.lr
        if trainer.validate():
            stops.append(i)
        if trainer.schedule.lr < lr:
            decays.append(i)
    assert decays == ACTS_AT
    assert stops[0] == ACTS_AT[0]  # the run would stop there


def test_build_schedule_names():
    assert isinstance(
        build_schedule(optimizer(), OptimConfig(schedule="budget", cooldown=0.0), total_steps=10), Budget
    )
    with pytest.raises(ValueError, match="step limit or a time limit"):
        build_schedule(optimizer(), OptimConfig(schedule="budget", cooldown=0.0))
    with pytest.raises(ValueError, match="choose plateau"):
        build_schedule(optimizer(), OptimConfig(schedule="cosine"))


@pytest.mark.parametrize(("shape", "at_90"), [("linear", 0.5), ("1-sqrt", 1 - 0.5**0.5)])
def test_cooldown_keeps_the_rate_then_cools_it_down_over_the_last_fraction(shape: str, at_90: float):
    opt = optimizer()
    s = Cooldown(Constant(opt, 2.0, 0.0), fraction=0.2, shape=shape, total_steps=100, total_seconds=0)
    for step in (0, 40, 80):  # before the last 20%: the inner schedule's rate
        s.step_update(step, seconds=10_000.0)
        assert lr_of(opt) == 2.0
    s.step_update(90)  # halfway through the cooldown
    assert lr_of(opt) == pytest.approx(2.0 * at_90)
    s.step_update(100)
    assert lr_of(opt) == pytest.approx(0.0)
    opt = optimizer()
    s = Cooldown(Constant(opt, 1.0, 0.1), fraction=0.5, shape="linear", total_steps=0, total_seconds=600)
    s.step_update(10**6, seconds=450)  # time limit only: 75% of it used, half the cooldown done
    assert lr_of(opt) == pytest.approx(0.5)
    s.step_update(10**6, seconds=599)
    assert lr_of(opt) == pytest.approx(0.1)  # floored at min_lr


def test_cooldown_scales_the_plateau_rate_and_resumes_where_it_was():
    opt = optimizer()
    s = Cooldown(
        Plateau(opt, 1.0, 0.01, factor=0.5, patience=1), 0.5, "linear", total_steps=100, total_seconds=0
    )
    s.step_update(75)  # cooldown factor 0.5
    assert lr_of(opt) == pytest.approx(0.5)
    s.valid_update(10.0)
    s.valid_update(9.0)  # the plateau halves its rate: 0.5, cooled to 0.25
    assert (s.inner.lr, lr_of(opt)) == (pytest.approx(0.5), pytest.approx(0.25))
    state = s.state_dict()
    opt2 = optimizer()
    t = Cooldown(
        Plateau(opt2, 1.0, 0.01, factor=0.5, patience=1), 0.5, "linear", total_steps=100, total_seconds=0
    )
    t.load_state_dict(state)
    assert lr_of(opt2) == pytest.approx(0.25) and t.inner.best == 10.0
    for sched in (s, t):
        sched.step_update(99)
        sched.valid_update(8.0)  # halved again: 0.25 x 0.02 = 0.005, floored at min_lr 0.01
    assert lr_of(opt) == lr_of(opt2) == pytest.approx(0.01)


def test_cooldown_is_refused_where_it_cannot_apply():
    assert isinstance(build_schedule(optimizer(), OptimConfig(cooldown=0.0), total_steps=10), Plateau)
    cooled = build_schedule(optimizer(), OptimConfig(schedule="none", cooldown=0.2), total_steps=10)
    assert isinstance(cooled, Cooldown) and isinstance(cooled.inner, Constant)
    with pytest.raises(ValueError, match="whole budget already"):
        build_schedule(optimizer(), OptimConfig(schedule="budget", cooldown=0.2), total_steps=10)
    with pytest.raises(ValueError, match="step limit or a time limit"):
        build_schedule(optimizer(), OptimConfig(cooldown=0.2))
    for optim, trainer, key in (
        ({"schedule": "budget", "cooldown": 0.2}, {}, "optim.cooldown"),
        ({"cooldown": 1.5}, {}, "optim.cooldown"),
        ({"cooldown": 0.2, "cooldown_shape": "cosine"}, {}, "optim.cooldown_shape"),
    ):
        cfg = TrainConfig(optim=OptimConfig(**optim), trainer=TrainerConfig(**trainer))  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=key):
            validate_train(cfg)
    validate_train(
        TrainConfig(optim=OptimConfig(cooldown=0.2), trainer=TrainerConfig(max_steps=0, max_minutes=9.3))
    )
    # no step or time limit: the epoch limit ends the budget
    validate_train(TrainConfig(optim=OptimConfig(cooldown=0.2), trainer=TrainerConfig(max_steps=0)))


def tiny_trainer(tmp_path: Path, optim: OptimConfig, **trainer: object) -> Trainer:
    """A Trainer on a tiny local corpus with a tiny model, CPU, fp32, without progress or plots."""
    files = write_corpus(tmp_path, None)
    cfg = TrainConfig(
        data=DataConfig(source="local", files=files, cache_dir=str(tmp_path / "cache"), batch_tokens=300),
        tokenizer=TokenizerConfig(vocab_size=60),
        model=ModelConfig(emb_size=16, enc_hidden=16, dec_hidden=32),
        optim=optim,
        trainer=TrainerConfig(progress=False, precision="fp32", plot_sentences=[], **trainer),  # type: ignore[arg-type]
    )
    data = prepare_data(cfg.data, cfg.tokenizer)
    model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size)
    return Trainer(cfg, model, data, tmp_path / "run", torch.device("cpu"), resolved_config={"model": {}})


@pytest.mark.parametrize(
    ("max_steps", "max_epochs", "max_minutes"),
    [(12, 50, 0.0), (0, 3, 0.0), (0, 100_000, 0.03)],
)
def test_trainer_decays_over_its_own_limits(tmp_path: Path, max_steps, max_epochs, max_minutes):
    """The trainer hands the budget schedule its step limit (max_steps, or max_epochs times
    the batches of an epoch, the smaller) and its time limit: the rate falls linearly and
    reaches its floor when training stops."""
    trainer = tiny_trainer(
        tmp_path,
        OptimConfig(schedule="budget", lr=1e-2, min_lr=0.0, cooldown=0.0),
        max_steps=max_steps,
        max_epochs=max_epochs,
        max_minutes=max_minutes,
        val_every=1000,
    )
    sched = trainer.schedule
    assert isinstance(sched, Budget)
    epoch_steps = len(trainer.sampler)
    assert sched.total_steps == min(n for n in (max_steps, max_epochs * epoch_steps) if n > 0)
    assert sched.total_seconds == pytest.approx(max_minutes * 60)
    seen: list[tuple[int, float]] = []
    real = sched.step_update

    def record(step: int, seconds: float = 0.0) -> None:
        real(step, seconds)
        seen.append((step, sched.lr))

    sched.step_update = record  # type: ignore[method-assign]
    progress = trainer.fit()
    lrs = [lr for _, lr in seen]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 1e-2
    if max_minutes == 0:  # a function of the step alone
        assert seen == [
            (s, pytest.approx(1e-2 * (1 - s / sched.total_steps))) for s in range(1, progress.step + 1)
        ]
        assert lrs[-1] == pytest.approx(0.0)
    else:  # time-limited: training stopped when the time ran out, with the rate near its floor
        assert progress.step < sched.total_steps
        assert lrs[-1] < 0.2e-2


def test_trainer_cools_down_over_the_end_of_its_step_limit(tmp_path: Path):
    """A constant rate with a cooldown over the last half of 12 updates: 1e-2 up to update 6,
    then linear to the floor at update 12, where training stops."""
    trainer = tiny_trainer(
        tmp_path,
        OptimConfig(schedule="none", lr=1e-2, min_lr=0.0, cooldown=0.5),
        max_steps=12,
        val_every=1000,
    )
    seen: list[float] = []
    real = trainer.schedule.step_update

    def record(step: int, seconds: float = 0.0) -> None:
        real(step, seconds)
        seen.append(lr_of(trainer.optimizer))

    trainer.schedule.step_update = record  # type: ignore[method-assign]
    assert trainer.fit().step == 12
    assert seen == [pytest.approx(1e-2 * min(1.0, (12 - s) / 6)) for s in range(1, 13)]


def test_trainer_cools_down_over_its_epoch_limit_without_a_step_limit(tmp_path: Path):
    """With no step or time limit the epoch limit is the budget: the cooldown ends with it."""
    trainer = tiny_trainer(
        tmp_path,
        OptimConfig(schedule="none", lr=1e-2, min_lr=0.0, cooldown=0.5),
        max_steps=0,
        max_epochs=2,
        val_every=1000,
    )
    sched = trainer.schedule
    assert isinstance(sched, Cooldown) and sched.total_steps == 2 * len(trainer.sampler)
    steps = trainer.fit().step
    assert steps == sched.total_steps and lr_of(trainer.optimizer) == pytest.approx(0.0)
