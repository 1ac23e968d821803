"""Sentencepiece tokenizer: special ids, round trips, caching, serialisation, sampling."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest
import sentencepiece
from conftest import ALPHABET, synthetic_sentences
from hypothesis import given, settings
from hypothesis import strategies as st

from mt.config import TokenizerConfig
from mt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer
from mt.errors import ConfigError


def test_special_ids(small_tokenizer: Tokenizer) -> None:
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert small_tokenizer.src_pieces([0, 1, 2, 3]) == ["<pad>", "<unk>", "<s>", "</s>"]
    assert small_tokenizer.src_vocab_size == small_tokenizer.tgt_vocab_size == 200
    assert small_tokenizer.joint


def test_encode_src_ends_with_eos_and_tgt_has_no_specials(small_tokenizer: Tokenizer) -> None:
    texts = ["abc def", "ü"]
    src = small_tokenizer.encode_src(texts)
    tgt = small_tokenizer.encode_tgt(texts)
    assert all(s[-1] == EOS_ID and s[:-1] == t for s, t in zip(src, tgt, strict=True))
    assert all(i > EOS_ID for t in tgt for i in t)
    assert small_tokenizer.encode_src(texts, add_eos=False) == tgt


def test_decode_stops_at_eos_and_skips_specials(small_tokenizer: Tokenizer) -> None:
    ids = small_tokenizer.encode_tgt(["abc def"])[0]
    assert small_tokenizer.decode_tgt([BOS_ID, *ids, EOS_ID, *ids, PAD_ID]) == "abc def"
    assert small_tokenizer.decode_tgt([*ids, PAD_ID, PAD_ID]) == "abc def"
    assert small_tokenizer.decode_src(small_tokenizer.encode_src(["abc def"])[0]) == "abc def"
    assert small_tokenizer.decode_tgt([]) == ""


def test_round_trip_normalises_spaces(small_tokenizer: Tokenizer) -> None:
    text = "  äbc   def  "
    assert small_tokenizer.normalize(text) == "äbc def"
    assert small_tokenizer.decode_tgt(small_tokenizer.encode_tgt([text])[0]) == "äbc def"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=ALPHABET + "  ", max_size=60))
def test_round_trip_property(small_tokenizer: Tokenizer, text: str) -> None:
    ids = small_tokenizer.encode_tgt([text])[0]
    assert small_tokenizer.decode_tgt(ids) == small_tokenizer.normalize(text)


def test_cache_is_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src, tgt = synthetic_sentences(300, 3), synthetic_sentences(300, 4)
    cfg = TokenizerConfig(vocab_size=60)
    with caplog.at_level(logging.INFO, logger="mt.data.tokenizer"):
        first = Tokenizer.train_or_load(src, tgt, cfg, tmp_path)
        model = first.cache_path / "joint.model"
        mtime = model.stat().st_mtime_ns
        assert any("training" in r.message for r in caplog.records)
        caplog.clear()
        second = Tokenizer.train_or_load(iter(src), iter(tgt), cfg, tmp_path)
    assert any("reusing" in r.message for r in caplog.records)
    assert not any("training" in r.message for r in caplog.records)
    assert second.cache_path == first.cache_path and model.stat().st_mtime_ns == mtime
    assert second.fingerprint == first.fingerprint
    assert sorted(p.name for p in first.cache_path.iterdir()) == ["joint.model", "meta.json"]
    # other data or other settings: another model
    other = Tokenizer.train_or_load(src[:-1], tgt[:-1], cfg, tmp_path)
    assert other.cache_path != first.cache_path
    sampling_only = Tokenizer.train_or_load(
        src, tgt, TokenizerConfig(vocab_size=60, sampling_alpha=0.5), tmp_path
    )
    assert sampling_only.cache_path == first.cache_path and sampling_only.sampling_alpha == 0.5


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_separate_models(tmp_path: Path, model_type: str) -> None:
    src = synthetic_sentences(300, 5)
    tgt = [s.upper() for s in synthetic_sentences(300, 6)]
    tok = Tokenizer.train_or_load(
        src, tgt, TokenizerConfig(model_type=model_type, vocab_size=70, joint=False), tmp_path
    )
    assert not tok.joint and tok.src_vocab_size == tok.tgt_vocab_size == 70
    assert sorted(p.name for p in tok.cache_path.iterdir()) == ["meta.json", "src.model", "tgt.model"]
    # source pieces are lower case, target pieces upper case
    assert tok.decode_tgt(tok.encode_tgt(["ABC DEF"])[0]) == "ABC DEF"
    assert UNK_ID in tok.encode_src(["ABC"])[0]


def test_vocab_too_large_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        Tokenizer.train_or_load(["a b c"] * 5, ["d e f"] * 5, TokenizerConfig(vocab_size=5000), tmp_path)
    assert (
        "tokenizer.vocab_size" in str(exc.value) and "5000" in str(exc.value) and "at most" in str(exc.value)
    )
    assert not list((tmp_path / "spm").glob("*/meta.json"))


def test_vocab_too_small_for_characters(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="character_coverage"):
        Tokenizer.train_or_load(
            synthetic_sentences(50), synthetic_sentences(50), TokenizerConfig(vocab_size=16), tmp_path
        )


def test_bytes_and_pickle_round_trip(small_tokenizer: Tokenizer) -> None:
    texts = ["abc def ghi", "üöä"]
    for clone in (
        Tokenizer.from_bytes(small_tokenizer.to_bytes()),
        pickle.loads(pickle.dumps(small_tokenizer)),
    ):
        assert clone.encode_src(texts) == small_tokenizer.encode_src(texts)
        assert clone.fingerprint == small_tokenizer.fingerprint
        assert clone.sampling_alpha == small_tokenizer.sampling_alpha
    with pytest.raises(ValueError, match="not an mt tokenizer"):
        Tokenizer.from_bytes(b'{"format": "other"}')


def test_sampling_only_when_asked(small_tokenizer: Tokenizer) -> None:
    sentencepiece.set_random_generator_seed(7)
    text = synthetic_sentences(3, 1)[2:3] * 200  # has multi-character pieces
    plain = small_tokenizer.encode_src(text)
    assert all(x == plain[0] for x in plain)
    sampled = small_tokenizer.encode_src(text, sample=True)
    assert len({tuple(x) for x in sampled}) > 1
    assert {small_tokenizer.decode_src(x) for x in sampled} == {text[0]}
    no_alpha = Tokenizer.from_bytes(small_tokenizer.to_bytes())
    no_alpha.sampling_alpha = 0.0
    assert no_alpha.encode_src(text, sample=True) == plain


def test_invalid_settings_fail_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tokenizer.sampling_nbest"):
        Tokenizer.train_or_load(["a"], ["b"], TokenizerConfig(sampling_alpha=0.1, sampling_nbest=1), tmp_path)
    with pytest.raises(ConfigError, match="tokenizer.model_type"):
        Tokenizer.train_or_load(["a"], ["b"], TokenizerConfig(model_type="wordpiece"), tmp_path)


def test_accepts_omegaconf_config(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(TokenizerConfig(vocab_size=60))
    tok = Tokenizer.train_or_load(synthetic_sentences(300, 3), synthetic_sentences(300, 4), cfg, tmp_path)
    assert tok.src_vocab_size == 60
