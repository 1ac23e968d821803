"""scripts/profile_step.py on a tiny model and corpus: it profiles real updates and prints
the operators by self time (checks the table, not any speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from clihelpers import tiny_corpus_args

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "profile_step.py"
TINY = ["model.emb_size=16", "model.enc_hidden=16", "model.dec_hidden=32", "data.batch_tokens=300"]


def test_profile_prints_the_operators_of_real_updates(tmp_path: Path):
    args = [
        "--precision",
        "fp32",
        "--batches",
        "3",
        "--rows",
        "500",
        "--shapes",
        *TINY,
        *tiny_corpus_args(tmp_path),
    ]
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    out = proc.stdout
    assert out.startswith("fp32, 3 updates")
    assert "Self CPU" in out and "Input Shapes" in out
    assert "aten::mm" in out or "aten::addmm" in out  # the model's multiplies were profiled
    assert "_fused_adam" in out or "aten::_fused_adam_" in out  # and the optimizer step


def test_profile_refuses_a_misspelled_override(tmp_path: Path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "model.emb_sise=16"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0 and "emb_sise" in proc.stderr
