"""Checkpoint averaging (mt.training.averaging, mt-average): the mean of known state dicts,
refusals by name (another model, another tokenizer), and the command on real files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from clihelpers import run
from omegaconf import OmegaConf

from mt.config import ModelConfig, TrainConfig
from mt.errors import CheckpointError
from mt.models.seq2seq import build_model
from mt.training.averaging import average_checkpoints
from mt.training.checkpoint import FORMAT, atomic_torch_save, load_model

SMALL = {"emb_size": 8, "enc_hidden": 8, "dec_hidden": 16}


def write_checkpoint(
    path: Path, tok, step: int, fill: float | None = None, seed: int = 0, history: list | None = None, **model
) -> Path:
    """A checkpoint of a tiny model: every parameter `fill`, or random from `seed`."""
    cfg = TrainConfig(model=ModelConfig(**{**SMALL, **model}))
    torch.manual_seed(seed)
    net = build_model(cfg.model, tok.src_vocab_size, tok.tgt_vocab_size)
    if fill is not None:
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save({"format": FORMAT, "model": net.state_dict(), "progress": {"step": step, "history": history or []},
                       "config": OmegaConf.to_container(OmegaConf.structured(cfg)), "tokenizer": tok.to_bytes(),
                       "vocab": {"src": tok.src_vocab_size, "tgt": tok.tgt_vocab_size}}, path)  # fmt: skip
    return path


def test_the_average_of_two_known_state_dicts(tmp_path: Path, small_tokenizer) -> None:
    a = write_checkpoint(tmp_path / "a.pt", small_tokenizer, 100, fill=1.0)
    b = write_checkpoint(tmp_path / "b.pt", small_tokenizer, 200, fill=4.0)
    avg = average_checkpoints([a, b])
    assert all(torch.equal(v, torch.full_like(v, 2.5)) for v in avg["model"].values())
    assert avg["progress"]["step"] == 200 and avg["averaged_steps"] == [100, 200]
    assert "optimizer" not in avg and avg["averaged_from"] == [str(a), str(b)]


def test_the_average_of_three_random_models_is_their_mean(tmp_path: Path, small_tokenizer) -> None:
    paths = [write_checkpoint(tmp_path / f"{k}.pt", small_tokenizer, k, seed=k) for k in range(3)]
    states = [torch.load(p, weights_only=True)["model"] for p in paths]
    avg = average_checkpoints(paths)["model"]
    for name, value in avg.items():
        mean = sum(s[name].double() for s in states) / 3
        torch.testing.assert_close(value, mean.float(), rtol=0, atol=1e-7)
    assert not torch.equal(avg["output.weight"], states[0]["output.weight"])


def test_another_model_is_refused_by_name(tmp_path: Path, small_tokenizer) -> None:
    a = write_checkpoint(tmp_path / "a.pt", small_tokenizer, 1)
    b = write_checkpoint(tmp_path / "b.pt", small_tokenizer, 2, dec_hidden=32)
    with pytest.raises(
        CheckpointError,
        match=r"b\.pt cannot be averaged with .*a\.pt: .*model\.dec_hidden: first 16 vs this 32",
    ):
        average_checkpoints([a, b])


@pytest.mark.slow  # three runs of mt-average
def test_mt_average_writes_a_loadable_mean_and_keeps_what_exists(tmp_path: Path, small_tokenizer) -> None:
    ckpts = tmp_path / "run" / "checkpoints"
    for k, fill in enumerate([0.5, 1.5, 2.5, 3.5]):
        write_checkpoint(ckpts / f"step_{(k + 1) * 100:08d}.pt", small_tokenizer, (k + 1) * 100, fill=fill)
    proc = run("mt-average", ["--run", str(tmp_path / "run"), "--last", "3"], tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "averaged 3 checkpoints (steps 200, 300, 400)" in proc.stdout.decode()
    loaded = load_model(ckpts / "averaged.pt", torch.device("cpu"))
    assert loaded.step == 400
    assert all(torch.equal(p, torch.full_like(p, 2.5)) for p in loaded.model.parameters())
    before = (ckpts / "averaged.pt").read_bytes()
    again = run("mt-average", [str(ckpts / "step_00000100.pt"), str(ckpts / "step_00000200.pt")], tmp_path)
    assert again.returncode == 2 and "averaged.pt exists and is kept" in again.stderr.decode()
    assert (ckpts / "averaged.pt").read_bytes() == before
    few = run("mt-average", ["--run", str(tmp_path / "run"), "--last", "9"], tmp_path)
    assert few.returncode == 2 and "holds 4 step checkpoints, not 9" in few.stderr.decode()
    assert "Traceback" not in few.stderr.decode() + again.stderr.decode()


@pytest.mark.slow  # three runs of mt-average
def test_mt_average_best_takes_the_best_validated_steps(tmp_path: Path, small_tokenizer) -> None:
    """--best N ranks the step checkpoints by the validation BLEU at their step (the newest
    checkpoint's history), not by age; a step that was never validated is not a candidate."""
    ckpts = tmp_path / "run" / "checkpoints"
    bleu = {100: 20.0, 200: 31.0, 300: 25.0, 400: 30.0}
    history = [{"step": s, "bleu": b} for s, b in bleu.items() if s != 300]  # step 300 not validated
    for k, fill in enumerate([0.5, 1.5, 2.5, 3.5]):
        step = (k + 1) * 100
        write_checkpoint(ckpts / f"step_{step:08d}.pt", small_tokenizer, step, fill=fill,
                         history=[r for r in history if r["step"] <= step])  # fmt: skip
    proc = run("mt-average", ["--run", str(tmp_path / "run"), "--best", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "averaged 2 checkpoints (steps 200, 400)" in proc.stdout.decode()
    loaded = load_model(ckpts / "averaged.pt", torch.device("cpu"))
    assert all(torch.equal(p, torch.full_like(p, 2.5)) for p in loaded.model.parameters())  # (1.5 + 3.5) / 2
    many = run("mt-average", ["--run", str(tmp_path / "run"), "--best", "4", "--output", "x.pt"], tmp_path)
    assert many.returncode == 2 and "only 3 of its 4 step checkpoints were validated" in many.stderr.decode()
    both = run("mt-average", ["--run", str(tmp_path / "run"), "--best", "2", "--last", "2"], tmp_path)
    assert both.returncode == 2 and "one of --last N or --best N" in both.stderr.decode()
    assert not (tmp_path / "x.pt").exists()
    assert "Traceback" not in many.stderr.decode() + both.stderr.decode()
