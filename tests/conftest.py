"""Shared fixtures: tiny real corpora on disk, the shared Multi30k files, trained tokenizers."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

# Tests never reach the HuggingFace hub: local folders only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent

DE = [
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau liest ein Buch im Park.",
    "Kinder spielen Fußball auf der Straße.",
    "Ein älterer Mann sitzt auf einer Bank.",
    "Eine Gruppe von Menschen steht vor einem Gebäude.",
]
EN = [
    "A man rides a bike.",
    "Two dogs play in the snow.",
    "A woman reads a book in the park.",
    "Children play soccer on the street.",
    "An older man sits on a bench.",
    "A group of people stands in front of a building.",
]


def write_lines(path: Path, lines: list[str], gz: bool | None = None) -> Path:
    """Write ``lines`` (newline-terminated, UTF-8) to ``path``, gzipped when it ends with .gz."""
    data = "".join(line + "\n" for line in lines).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz if gz is not None else path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def pair_files(tmp_path: Path) -> dict[str, Path]:
    """A tiny de-en corpus as prefixes: ``train.{de,en}``, ``valid.{de,en}.gz``, ``test.{de,en}``."""
    write_lines(tmp_path / "train.de", DE * 3)
    write_lines(tmp_path / "train.en", EN * 3)
    write_lines(tmp_path / "valid.de.gz", DE[:2])
    write_lines(tmp_path / "valid.en.gz", EN[:2])
    write_lines(tmp_path / "test.de", DE[2:5])
    write_lines(tmp_path / "test.en", EN[2:5])
    return {"train": tmp_path / "train", "validation": tmp_path / "valid", "test": tmp_path / "test"}


@pytest.fixture
def fake_multi30k(tmp_path: Path) -> Path:
    """A folder holding ``multi30k/`` with tiny de/en/cs files for every split (no cs for 2017)."""
    root = tmp_path / "fake_data"
    for split, n in (("train", 6), ("val", 3), ("test_2016_flickr", 2), ("test_2017_flickr", 2)):
        for lang, lines in (("de", DE), ("en", EN), ("cs", EN)):
            if (split, lang) != ("test_2017_flickr", "cs"):
                write_lines(root / "multi30k" / f"{split}.{lang}.gz", [f"{lang} {s}" for s in lines[:n]])
    return root


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests away from the user's MT_DATA_DIR, the repo's data/ and the HuggingFace cache."""
    import datasets

    monkeypatch.delenv("MT_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    monkeypatch.setattr("mt.data.multi30k.default_download_dir", lambda: tmp_path / "downloads" / "multi30k")


def _shared_data_dir() -> Path | None:
    env = os.environ.get("MT_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared" / "data"]:
        if (cand / "multi30k" / "train.de.gz").is_file():
            return cand
    return None


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    """The folder holding the real ``multi30k/`` files ($MT_DATA_DIR or ../shared/data); skips if absent."""
    found = _shared_data_dir()
    if found is None:
        pytest.skip("real Multi30k files not found (set MT_DATA_DIR to a folder containing multi30k/)")
    return found


@pytest.fixture(scope="session")
def multi30k_deen(multi30k_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Real Multi30k de-en with the default data and tokenizer configs: (cfg, texts, tokenizer, encoded)."""
    from mt.config import DataConfig, TokenizerConfig
    from mt.data.encode import encode_splits, text_column
    from mt.data.sources import load_parallel
    from mt.data.tokenizer import Tokenizer

    cache = tmp_path_factory.mktemp("m30k_cache")
    cfg = DataConfig(data_dir=str(multi30k_dir), download=False, cache_dir=str(cache))
    dsd = load_parallel(cfg)
    train = dsd["train"]
    tok = Tokenizer.train_or_load(
        text_column(train, "src"), text_column(train, "tgt"), TokenizerConfig(), cache
    )
    return cfg, dsd, tok, encode_splits(dsd, tok, cache)


ALPHABET = "abcdefghijklmnopqrstuvwxyzäöü"


def synthetic_sentences(n: int, seed: int = 0) -> list[str]:
    """Return ``n`` sentences of random words over :data:`ALPHABET` (every letter appears)."""
    rng = random.Random(seed)
    syllables = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 3))) for _ in range(40)]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(300)]
    out = [" ".join(ALPHABET)]  # every character occurs
    out += [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(n - 1)]
    return out


@pytest.fixture(scope="session")
def small_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """A joint unigram tokenizer (vocab 200) trained on synthetic text; sampling alpha 0.1."""
    from mt.config import TokenizerConfig
    from mt.data.tokenizer import Tokenizer

    cfg = TokenizerConfig(vocab_size=200, sampling_alpha=0.1)
    return Tokenizer.train_or_load(
        synthetic_sentences(1500, 1), synthetic_sentences(1500, 2), cfg, tmp_path_factory.mktemp("tok")
    )
