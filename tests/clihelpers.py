"""Helpers for tests that run the real command-line programs in subprocesses."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
TINY_MODEL = [
    "model.emb_size=32", "model.enc_hidden=32", "model.dec_hidden=64", "model.dropout=0.1",
    "model.emb_dropout=0.1", "data.batch_tokens=1500",
    "trainer.max_steps=30", "trainer.val_every=15", "trainer.log_every=5", "trainer.test_beam_size=3",
    "trainer.plot_sentences=[0,1]", "trainer.progress=false", "trainer.precision=fp32",
]  # fmt: skip


def run(
    cmd: str, args: list[str], cwd: Path, stdin: bytes | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    exe = BIN / cmd
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", f"mt.cli.{cmd.split('-')[1]}"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(argv + args, cwd=cwd, input=stdin, capture_output=True, timeout=timeout, env=env)


DE = "ein eine der die das Hund Katze Mann Frau Kind läuft springt sitzt spielt rot blau groß klein auf im".split()
EN = "a a the the the dog cat man woman child runs jumps sits plays red blue big small on in".split()


def synthetic_lines(n: int, lang: str, seed: int = 0) -> list[str]:
    """n sentences of 3-9 words; the de and en lines with the same seed are word-for-word translations."""
    import random

    rng = random.Random(seed)
    words = DE if lang == "de" else EN
    return [" ".join(words[rng.randrange(len(words))] for _ in range(rng.randint(3, 9))) for _ in range(n)]


def write_corpus(root: Path, multi30k: Path | None) -> dict[str, str]:
    """Small de-en corpus as local prefix files (from Multi30k when available)."""
    sizes = {"train": 400, "val": 40, "test_2016_flickr": 30}
    files = {}
    for split, n in sizes.items():
        for lang in ("de", "en"):
            if multi30k is not None:
                with gzip.open(multi30k / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                    lines = [next(f).rstrip("\n") for _ in range(n)]
            else:  # a synthetic stand-in with the same shape: word-for-word "translations"
                lines = synthetic_lines(n, lang, seed=len(split))
            (root / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
        files[{"val": "validation", "test_2016_flickr": "test"}.get(split, split)] = str(root / split)
    return files


def shared_multi30k() -> Path | None:
    """The real Multi30k folder ($MT_DATA_DIR/multi30k or ../shared/data/multi30k), if present."""
    env = os.environ.get("MT_DATA_DIR")
    repo = Path(__file__).resolve().parents[1]
    for cand in ([Path(env)] if env else []) + [repo.parent / "shared" / "data"]:
        if (cand / "multi30k" / "train.de.gz").is_file():
            return cand / "multi30k"
    return None


def tiny_corpus_args(root: Path) -> list[str]:
    """Write the tiny corpus under `root` and return the data overrides that use it."""
    m30k = shared_multi30k()
    files = write_corpus(root, m30k)
    vocab = 400 if m30k is not None else 60  # the synthetic stand-in has few distinct pieces
    args = ["data=local", f"data.cache_dir={root / 'cache'}", f"tokenizer.vocab_size={vocab}"]
    return args + [f"data.files.{k}={v}" for k, v in files.items()]
