"""The data presets `data=iwslt14` and `data=wmt14` (with `tokenizer=iwslt14` / `wmt14`).

What each preset names on the hub is checked on the composed config; the real `mt-data` command
then loads a tiny local folder in the same shape as that hub dataset (same layout, file names,
config names and `translation` column), with only `data.hub_name` pointed at it, so the preset's
hub_config and split handling go through the real `datasets.load_dataset`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets
import pytest
from clihelpers import run

from mt.config import validate_data, validate_tokenizer

# What each preset must compose to (data group, tokenizer group).
EXPECTED = {
    "iwslt14": (
        {"source": "hub", "hub_name": "bbaaaa/iwslt14-de-en", "hub_config": None,
         "hub_revision": "refs/convert/parquet", "src_lang": "de", "tgt_lang": "en", "max_len": 128},
        {"vocab_size": 10000, "joint": True},
    ),
    "wmt14": (
        {"source": "hub", "hub_name": "wmt/wmt14", "hub_config": "de-en", "hub_revision": None,
         "src_lang": "de", "tgt_lang": "en", "max_len": 200},
        {"vocab_size": 32000, "joint": True, "input_sentence_size": 200_000},
    ),
}  # fmt: skip
SIZES = {  # pairs per split of the stand-ins; all different, so a wrong split mapping shows
    "iwslt14": {"train": 300, "validation": 20, "test": 30},
    "wmt14": {"train": 260, "validation": 25, "test": 35},
}
VOCAB = 120  # the stand-ins' pieces; the presets' 10k / 32k are far more than a tiny corpus has

# word-for-word lexicon (de, en) by role; sentences are drawn from it at random
LEX = {
    "det": [("der", "the"), ("ein", "a"), ("dieser", "this"), ("jeder", "every")],
    "adj": [("alte", "old"), ("junge", "young"), ("kleine", "small"), ("große", "big"), ("rote", "red"),
            ("müde", "tired"), ("schnelle", "fast"), ("stille", "quiet")],
    "noun": [("Mann", "man"), ("Hund", "dog"), ("Lehrer", "teacher"), ("Vogel", "bird"), ("Bäcker", "baker"),
             ("Nachbar", "neighbour"), ("Fahrer", "driver"), ("Student", "student"), ("König", "king")],
    "verb": [("sieht", "sees"), ("liebt", "loves"), ("sucht", "seeks"), ("findet", "finds"),
             ("ruft", "calls"), ("kennt", "knows"), ("hört", "hears"), ("malt", "paints")],
    "place": [("im Park", "in the park"), ("am Fluss", "by the river"), ("in der Stadt", "in the city"),
              ("auf dem Markt", "at the market"), ("zu Hause", "at home"), ("im Wald", "in the forest")],
    "time": [("heute", "today"), ("morgen", "tomorrow"), ("oft", "often"), ("nie", "never")],
}  # fmt: skip


def sentence_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """n varied de-en pairs of 5-20 words (a subject, a verb, an object and optional extras)."""
    rng = random.Random(seed)

    def pick(role: str) -> tuple[str, str]:
        return rng.choice(LEX[role])

    rows = []
    for _ in range(n):
        parts = [pick("det"), pick("adj"), pick("noun"), pick("verb"), pick("det"), pick("noun")]
        parts += [pick(role) for role in ("place", "time") if rng.random() < 0.5]
        if rng.random() < 0.3:  # a second clause, so lengths vary
            parts += [("und", "and"), pick("det"), pick("noun"), pick("verb"), pick("det"), pick("adj"),
                      pick("noun")]  # fmt: skip
        rows.append({"de": " ".join(d for d, _ in parts) + ".", "en": " ".join(e for _, e in parts) + "."})
    return rows


def write_split(path: Path, n: int, seed: int, src: str = "de") -> None:
    """n pairs as parquet with the hub's `translation` column ({src, en}; src text is German)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{src: r["de"], "en": r["en"]} for r in sentence_pairs(n, seed)]
    features = datasets.Features({"translation": datasets.Translation(languages=[src, "en"])})
    datasets.Dataset.from_dict({"translation": rows}, features=features).to_parquet(str(path))


def iwslt14_parquet_export(root: Path) -> Path:
    """bbaaaa/iwslt14-de-en at refs/convert/parquet: <config>/<split>/0000.parquet and nothing
    else (the export branch holds no README, so no config metadata)."""
    for i, (split, n) in enumerate(SIZES["iwslt14"].items()):
        write_split(root / "de-en" / split / "0000.parquet", n, seed=i)
    return root


WMT14_README = """---
configs:
- config_name: de-en
  data_files:
  - split: train
    path: de-en/train-*
  - split: validation
    path: de-en/validation-*
  - split: test
    path: de-en/test-*
- config_name: fr-en
  data_files:
  - split: train
    path: fr-en/train-*
  - split: validation
    path: fr-en/validation-*
  - split: test
    path: fr-en/test-*
---
# wmt14 (test stand-in)
"""


def wmt14_repo(root: Path) -> Path:
    """wmt/wmt14 on main: a README naming one config per language pair, and
    <pair>/<split>-0000N-of-0000M.parquet files. fr-en (sizes unlike de-en's) is a decoy the
    preset's hub_config must not pick."""
    (root / "README.md").parent.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text(WMT14_README, encoding="utf-8")
    for i, (split, n) in enumerate(SIZES["wmt14"].items()):
        shards = 2 if split == "train" else 1
        for k in range(shards):
            name = f"{split}-{k:05d}-of-{shards:05d}.parquet"
            write_split(root / "de-en" / name, n // shards, seed=10 + 2 * i + k)
        write_split(root / "fr-en" / f"{split}-00000-of-00001.parquet", n + 7, seed=50 + i, src="fr")
    return root


STAND_INS = {"iwslt14": iwslt14_parquet_export, "wmt14": wmt14_repo}


def compose(config_name: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from mt.cli.common import CONFIG_DIR, register_resolvers
    from mt.command_config import register_configs

    register_resolvers()
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return OmegaConf.to_object(hydra_compose(config_name, overrides=overrides))
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("command", ["train", "data_stats"])
@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_names_the_hub_dataset_and_its_settings(preset: str, command: str) -> None:
    """mt-train and mt-data compose `data=P tokenizer=P` to the hub dataset and settings above."""
    cfg = compose(command, [f"data={preset}", f"tokenizer={preset}"])
    data, tokenizer = EXPECTED[preset]
    assert {key: getattr(cfg.data, key) for key in data} == data
    assert {key: getattr(cfg.tokenizer, key) for key in tokenizer} == tokenizer
    validate_data(cfg.data)
    validate_tokenizer(cfg.tokenizer)


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_prepares_a_folder_shaped_like_its_hub_dataset(
    preset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mt-data data=P tokenizer=P` with only hub_name (and the vocabulary) changed reads every
    split of the stand-in under the preset's config and writes their sizes to data_stats.json."""
    folder = STAND_INS[preset](tmp_path / preset)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))  # not the user's cache
    out = tmp_path / "out"
    args = [f"data={preset}", f"tokenizer={preset}", f"data.hub_name={folder}",
            f"data.cache_dir={tmp_path / 'cache'}", f"tokenizer.vocab_size={VOCAB}", f"hydra.run.dir={out}"]  # fmt: skip
    proc = run("mt-data", args, cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode()[-3000:]

    stats = json.loads((out / "data_stats.json").read_text())
    sizes = SIZES[preset]
    assert list(stats["splits"]) == list(sizes)  # train, validation, test: no split lost or added
    assert stats["data"] == {"source": "hub", "src_lang": "de", "tgt_lang": "en"}
    assert stats["train_dropped"]["max_len"] == EXPECTED[preset][0]["max_len"]
    kept = stats["splits"]["train"]["sentences"]
    assert kept + stats["train_dropped"]["pairs"] == sizes["train"] and kept > 0.9 * sizes["train"]
    for split in ("validation", "test"):  # never filtered
        assert stats["splits"][split]["sentences"] == sizes[split]
    assert stats["tokenizer"]["joint"] is True and stats["tokenizer"]["vocab_size"] == VOCAB
    assert stats["tokenizer"]["src_vocab"] == stats["tokenizer"]["tgt_vocab"] == VOCAB
