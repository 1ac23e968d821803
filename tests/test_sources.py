"""load_parallel for the multi30k, hub and local sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pytest
from conftest import DE, EN, write_lines

from mt.config import DataConfig
from mt.data import multi30k
from mt.data.sources import load_parallel, map_hub_splits
from mt.errors import ConfigError, DataError, DataFileNotFoundError


def _rows(ds: datasets.Dataset) -> list[tuple[str, str]]:
    return list(zip(ds["src"], ds["tgt"], strict=True))


# -- local ------------------------------------------------------------------------------------


def test_local_prefix_pairs(pair_files: dict[str, Path]) -> None:
    cfg = DataConfig(source="local", files={k: str(v) for k, v in pair_files.items()})
    dsd = load_parallel(cfg)
    assert list(dsd) == ["train", "validation", "test"]
    assert dsd["train"].column_names == ["src", "tgt"]
    assert _rows(dsd["validation"]) == list(zip(DE[:2], EN[:2], strict=True))  # from .gz
    assert len(dsd["train"]) == 18 and len(dsd["test"]) == 3


def test_local_tsv_and_jsonl(tmp_path: Path) -> None:
    write_lines(tmp_path / "train.tsv.gz", [f"{d}\t{e}" for d, e in zip(DE, EN, strict=True)])
    write_lines(
        tmp_path / "dev.jsonl",
        [json.dumps({"translation": {"de": d, "en": e}}) for d, e in zip(DE, EN, strict=True)],
    )
    write_lines(tmp_path / "t1.jsonl.gz", [json.dumps({"de": DE[0], "en": EN[0]})])
    files = {"train": "train.tsv.gz", "validation": "dev.jsonl", "t1": "t1.jsonl.gz"}
    cfg = DataConfig(source="local", files={k: str(tmp_path / v) for k, v in files.items()})
    dsd = load_parallel(cfg)
    assert _rows(dsd["train"]) == _rows(dsd["validation"]) == list(zip(DE, EN, strict=True))
    assert _rows(dsd["t1"]) == [(DE[0], EN[0])]


def test_local_language_direction_follows_config(pair_files: dict[str, Path]) -> None:
    cfg = DataConfig(
        source="local", src_lang="en", tgt_lang="de", files={k: str(v) for k, v in pair_files.items()}
    )
    assert _rows(load_parallel(cfg)["validation"]) == list(zip(EN[:2], DE[:2], strict=True))


def test_local_test_split_selection(pair_files: dict[str, Path]) -> None:
    files = {k: str(v) for k, v in pair_files.items()}
    assert list(load_parallel(DataConfig(source="local", files=files, test_splits=[]))) == [
        "train",
        "validation",
    ]
    with pytest.raises(DataError, match="test_2099"):
        load_parallel(DataConfig(source="local", files=files, test_splits=["test_2099"]))


def test_local_missing_prefix_names_candidates(tmp_path: Path) -> None:
    write_lines(tmp_path / "train.de", DE)
    cfg = DataConfig(
        source="local", files={"train": str(tmp_path / "train"), "validation": str(tmp_path / "train")}
    )
    with pytest.raises(DataFileNotFoundError) as exc:
        load_parallel(cfg)
    assert str(tmp_path / "train.en") in str(exc.value) and str(tmp_path / "train.en.gz") in str(exc.value)


def test_local_relative_paths_are_read_from_cwd(tmp_path: Path, pair_files, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = DataConfig(source="local", files={"train": "train", "validation": "valid"})
    assert len(load_parallel(cfg)["train"]) == 18


def test_local_requires_train_and_validation() -> None:
    with pytest.raises(ConfigError, match="data.files.validation"):
        load_parallel(DataConfig(source="local", files={"train": "x"}))


# -- hub (through datasets.load_dataset on local folders) -------------------------------------


@pytest.fixture
def load_dataset_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Record calls to datasets.load_dataset (the real function still runs)."""
    calls: list[tuple] = []
    real = datasets.load_dataset

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    return calls


@pytest.fixture
def flat_hub_dir(tmp_path: Path) -> Path:
    """A bentrevett/multi30k-shaped dataset (columns en, de) as parquet files per split."""
    d = tmp_path / "flat_hub"
    d.mkdir()
    for split, rows in (("train", slice(0, 6)), ("validation", slice(0, 2)), ("test", slice(2, 4))):
        datasets.Dataset.from_dict({"en": EN[rows], "de": DE[rows]}).to_parquet(str(d / f"{split}.parquet"))
    return d


@pytest.fixture
def translation_hub_dir(tmp_path: Path) -> Path:
    """A wmt14-shaped dataset (one `translation` dict column) as jsonl files; the dev split is 'dev'."""
    d = tmp_path / "wmt_hub"
    for split, rows in (("train", slice(0, 6)), ("dev", slice(0, 2)), ("test", slice(3, 6))):
        lines = [
            json.dumps({"translation": {"de": de, "en": en}})
            for de, en in zip(DE[rows], EN[rows], strict=True)
        ]
        write_lines(d / f"{split}.jsonl", lines)
    return d


def test_hub_flat_columns(flat_hub_dir: Path, load_dataset_calls: list) -> None:
    dsd = load_parallel(DataConfig(source="hub", hub_name=str(flat_hub_dir)))
    assert load_dataset_calls and load_dataset_calls[0][0][0] == str(flat_hub_dir)
    assert list(dsd) == ["train", "validation", "test"]
    assert dsd["train"].column_names == ["src", "tgt"]
    assert _rows(dsd["test"]) == list(zip(DE[2:4], EN[2:4], strict=True))


def test_hub_translation_column(translation_hub_dir: Path, load_dataset_calls: list) -> None:
    cfg = DataConfig(source="hub", hub_name=str(translation_hub_dir), src_lang="en", tgt_lang="de")
    dsd = load_parallel(cfg)
    assert load_dataset_calls
    assert list(dsd) == ["train", "validation", "test"]
    assert _rows(dsd["validation"]) == list(zip(EN[:2], DE[:2], strict=True))
    assert dsd["train"].features == datasets.Features(
        {"src": datasets.Value("string"), "tgt": datasets.Value("string")}
    )


def test_hub_split_map_and_test_selection(translation_hub_dir: Path) -> None:
    cfg = DataConfig(
        source="hub",
        hub_name=str(translation_hub_dir),
        hub_split_map={"validation": "test", "test_dev": "validation"},
        test_splits=["test_dev"],
    )
    dsd = load_parallel(cfg)
    assert list(dsd) == ["train", "validation", "test_dev"]
    assert len(dsd["validation"]) == 3 and len(dsd["test_dev"]) == 2


def test_hub_save_to_disk_folder(tmp_path: Path) -> None:
    d = tmp_path / "saved"
    datasets.DatasetDict(
        {s: datasets.Dataset.from_dict({"de": DE, "en": EN}) for s in ("train", "valid", "newstest2014")}
    ).save_to_disk(str(d))
    dsd = load_parallel(DataConfig(source="hub", hub_name=str(d)))
    assert list(dsd) == ["train", "validation", "newstest2014"] and len(dsd["validation"]) == len(DE)


def test_hub_missing_language_lists_columns(flat_hub_dir: Path, translation_hub_dir: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_parallel(DataConfig(source="hub", hub_name=str(flat_hub_dir), src_lang="fr", tgt_lang="en"))
    assert "'fr'" in str(exc.value) and "['en', 'de']" in str(exc.value)
    with pytest.raises(DataError) as exc:
        load_parallel(
            DataConfig(source="hub", hub_name=str(translation_hub_dir), src_lang="cs", tgt_lang="en")
        )
    assert "translation languages ['de', 'en']" in str(exc.value)


def test_hub_without_validation_says_how_to_map(tmp_path: Path) -> None:
    d = tmp_path / "only_train"
    write_lines(d / "train.jsonl", [json.dumps({"de": "a", "en": "b"})])
    with pytest.raises(DataError, match=r"hub_split_map\.validation"):
        load_parallel(DataConfig(source="hub", hub_name=str(d)))


def test_hub_unreachable_name_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="could not load hub dataset 'no-such-owner/no-such-dataset'"):
        load_parallel(DataConfig(source="hub", hub_name="no-such-owner/no-such-dataset"))


def _load_dataset_raises(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def load_dataset(*args, **kwargs):
        raise error

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)


def test_hub_missing_dataset_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets.exceptions import DatasetNotFoundError

    _load_dataset_raises(monkeypatch, DatasetNotFoundError("Dataset 'me/gone' doesn't exist on the Hub"))
    with pytest.raises(DataError) as exc:
        load_parallel(DataConfig(source="hub", hub_name="me/gone"))
    msg = str(exc.value)
    assert "could not load hub dataset 'me/gone'" in msg and "doesn't exist on the Hub" in msg
    assert "does not exist or is not accessible" in msg and "data.hub_name" in msg


def test_hub_unreachable_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    _load_dataset_raises(monkeypatch, ConnectionError("Couldn't reach 'me/there' on the Hub (ConnectError)"))
    with pytest.raises(DataError) as exc:
        load_parallel(DataConfig(source="hub", hub_name="me/there"))
    msg = str(exc.value)
    assert "could not reach the HuggingFace hub" in msg and "HF_HUB_OFFLINE=1" in msg


def test_hub_errors_of_another_kind_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a loader (or any error that is not "missing" or "unreachable") keeps its type
    and traceback instead of becoming a data-error message."""
    bug = RuntimeError("a bug inside the loader")
    _load_dataset_raises(monkeypatch, bug)
    with pytest.raises(RuntimeError) as exc:
        load_parallel(DataConfig(source="hub", hub_name="me/buggy"))
    assert exc.value is bug


def test_map_hub_splits() -> None:
    assert map_hub_splits(["train", "dev", "test"], {}) == {
        "train": "train",
        "validation": "dev",
        "test": "test",
    }
    # "validation" wins over the other aliases; unused aliases stay tests
    got = map_hub_splits(["val", "train", "validation", "test"], {})
    assert got["validation"] == "validation" and got["val"] == "val"
    got = map_hub_splits(["train", "validation", "test"], {"validation": "test"})
    assert got == {"train": "train", "validation": "test"}
    with pytest.raises(DataError, match="dev"):
        map_hub_splits(["train"], {"validation": "dev"})


# -- multi30k ---------------------------------------------------------------------------------


def test_multi30k_real_en_fr(multi30k_dir: Path) -> None:
    dsd = load_parallel(DataConfig(src_lang="en", tgt_lang="fr", data_dir=str(multi30k_dir), download=False))
    sizes = {k: len(v) for k, v in dsd.items()}
    assert sizes == {"train": 29000, "validation": 1014, "test_2016_flickr": 1000, "test_2017_flickr": 1000}
    assert dsd["train"][0]["src"] == "Two young, White males are outside near many bushes."


def test_multi30k_real_czech_has_no_2017(multi30k_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("MT_DATA_DIR", str(multi30k_dir))
    dsd = load_parallel(DataConfig(src_lang="cs", tgt_lang="en", download=False))
    assert list(dsd) == ["train", "validation", "test_2016_flickr"]
    with pytest.raises(ConfigError, match="test_2017_flickr"):
        load_parallel(
            DataConfig(src_lang="cs", tgt_lang="en", download=False, test_splits=["test_2017_flickr"])
        )


def test_multi30k_env_and_data_dir(fake_multi30k: Path, monkeypatch) -> None:
    monkeypatch.setenv("MT_DATA_DIR", str(fake_multi30k))
    dsd = load_parallel(DataConfig(download=False, test_splits=["test_2016_flickr"]))
    assert list(dsd) == ["train", "validation", "test_2016_flickr"]
    assert dsd["validation"][0] == {"src": "de " + DE[0], "tgt": "en " + EN[0]}
    monkeypatch.delenv("MT_DATA_DIR")
    # data_dir may also point at the multi30k folder itself
    dsd = load_parallel(DataConfig(data_dir=str(fake_multi30k / "multi30k"), download=False))
    assert len(dsd["test_2017_flickr"]) == 2


def test_multi30k_missing_without_download_says_both_fixes(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError) as exc:
        load_parallel(DataConfig(download=False))
    msg = str(exc.value)
    assert "train.de.gz" in msg and "MT_DATA_DIR" in msg and "../shared/data" in msg
    assert str(tmp_path / "downloads" / "multi30k") in msg and "github.com/multi30k" in msg


def test_multi30k_download_failure_says_both_fixes(monkeypatch) -> None:
    monkeypatch.setattr(multi30k, "MULTI30K_URL", "http://127.0.0.1:9/{name}")
    monkeypatch.setattr(multi30k, "DOWNLOAD_TIMEOUT_S", 2.0)
    with pytest.raises(DataFileNotFoundError) as exc:
        load_parallel(DataConfig())
    msg = str(exc.value)
    assert "downloading http://127.0.0.1:9/train.de.gz failed" in msg and "MT_DATA_DIR" in msg


def test_multi30k_download(fake_multi30k: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(multi30k, "MULTI30K_URL", (fake_multi30k / "multi30k").as_uri() + "/{name}")
    dsd = load_parallel(DataConfig())
    dl = tmp_path / "downloads" / "multi30k"
    assert sorted(p.name for p in dl.iterdir()) == sorted(
        f"{s}.{lang}.gz"
        for s in ("train", "val", "test_2016_flickr", "test_2017_flickr")
        for lang in ("de", "en")
    )
    assert len(dsd["train"]) == 6
    # a second load finds the downloads and fetches nothing
    monkeypatch.setattr(multi30k, "MULTI30K_URL", "http://127.0.0.1:9/{name}")
    assert len(load_parallel(DataConfig())["test_2017_flickr"]) == 2


def test_multi30k_download_is_atomic(tmp_path: Path) -> None:
    src = tmp_path / "not_gzip"
    src.write_text("<html>rate limited</html>")
    dest = tmp_path / "out" / "train.de.gz"
    with pytest.raises(OSError, match="gzip"):
        multi30k.download(src.as_uri(), dest)
    assert not dest.exists() and os.listdir(dest.parent) == []


def test_accepts_omegaconf_config(pair_files: dict[str, Path], flat_hub_dir: Path) -> None:
    from omegaconf import OmegaConf

    files = {k: str(v) for k, v in pair_files.items()}
    cfg = OmegaConf.structured(DataConfig(source="local", files=files, test_splits=["test"]))
    assert list(load_parallel(cfg)) == ["train", "validation", "test"]
    cfg = OmegaConf.structured(
        DataConfig(source="hub", hub_name=str(flat_hub_dir), hub_split_map={"validation": "test"})
    )
    assert list(load_parallel(cfg)) == ["train", "validation"]


def test_hub_translation_feature_and_missing_text(tmp_path: Path) -> None:
    feats = datasets.Features({"translation": datasets.Translation(languages=["de", "en"])})
    rows = {"translation": [{"de": "a", "en": "b"}, {"de": None, "en": "d"}]}
    d = tmp_path / "wmt_like"
    datasets.DatasetDict(
        {s: datasets.Dataset.from_dict(rows, features=feats) for s in ("train", "validation")}
    ).save_to_disk(str(d))
    dsd = load_parallel(DataConfig(source="hub", hub_name=str(d)))
    assert _rows(dsd["train"]) == [("a", "b"), ("", "d")]
