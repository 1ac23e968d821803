"""`tokenizer.lowercase`: the model is trained on, fed and writes lowercased text, the setting
travels in the checkpoint (mt-translate lowercases its input), and every score ignores case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from clihelpers import TINY_MODEL, run, tiny_corpus_args
from conftest import synthetic_sentences

from mt.config import TokenizerConfig
from mt.data.tokenizer import Tokenizer, lower, lower_with_map
from mt.evaluation.metrics import quick_bleu, score_corpus
from mt.report.significance import paired_bootstrap


def mixed_case(sentences: list[str]) -> list[str]:
    """Every other word capitalised, so the corpus has both cases of most words."""
    return [" ".join(w.capitalize() if k % 2 else w for k, w in enumerate(s.split())) for s in sentences]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tokenizer, Tokenizer]:
    """(cased, lowercasing) tokenizers trained on the same mixed-case text."""
    src, tgt = mixed_case(synthetic_sentences(300, 3)), mixed_case(synthetic_sentences(300, 4))
    cache = tmp_path_factory.mktemp("spm")
    cased = Tokenizer.train_or_load(src, tgt, TokenizerConfig(vocab_size=120), cache)
    lowered = Tokenizer.train_or_load(src, tgt, TokenizerConfig(vocab_size=120, lowercase=True), cache)
    return cased, lowered


def test_the_lowercasing_tokenizer_never_sees_a_capital(pair: tuple[Tokenizer, Tokenizer]) -> None:
    cased, lowered = pair
    assert lowered.lowercase and not cased.lowercase
    assert lowered.cache_path != cased.cache_path and lowered.fingerprint != cased.fingerprint
    text = mixed_case(synthetic_sentences(5, 9))
    assert any(t != t.lower() for t in text)
    assert lowered.encode_src(text) == lowered.encode_src([t.lower() for t in text])
    assert lowered.encode_tgt(text) == lowered.encode_tgt([t.upper() for t in text])
    pieces = {lowered.tgt_pieces([i])[0] for i in range(lowered.tgt_vocab_size)}
    assert not any(p != p.lower() for p in pieces - {"<pad>", "<unk>", "<s>", "</s>"})
    assert any(p != p.lower() for p in cased.tgt_pieces(range(cased.tgt_vocab_size)))
    for t, ids in zip(text, lowered.encode_tgt(text), strict=True):
        assert lowered.decode_tgt(ids) == lowered.normalize(t) == cased.normalize(t).lower()


def test_lowercasing_rides_in_the_bytes_and_old_bytes_mean_cased(pair: tuple[Tokenizer, Tokenizer]) -> None:
    _, lowered = pair
    clone = Tokenizer.from_bytes(lowered.to_bytes())
    assert clone.lowercase and clone.fingerprint == lowered.fingerprint
    assert clone.encode_src(["Ab CD"]) == lowered.encode_src(["ab cd"])
    old = json.loads(lowered.to_bytes())
    del old["lowercase"]  # a tokenizer saved before the setting existed
    assert not Tokenizer.from_bytes(json.dumps(old).encode()).lowercase
    assert "lowercase" in repr(lowered)


def test_spans_point_into_the_text_as_given(pair: tuple[Tokenizer, Tokenizer]) -> None:
    _, lowered = pair
    assert lower("İa Ä") == "i̇a ä" and len(lower("İa")) == 3  # one character, two in lowercase
    assert lower_with_map("İa Ä") == ("i̇a ä", [0, 0, 1, 2, 3])
    text = "İa Bc ÄB"
    ((ids, spans),) = lowered.encode_spans([text])
    assert ids == lowered.encode_src([text], add_eos=False)[0]  # the pieces of the lowercased text
    assert all(0 <= b <= e <= len(text) for b, e in spans) and spans[-1][1] == len(text)
    # every word of the text is covered by the spans of its pieces, in the text's own case
    covered = "".join(text[b:e] for b, e in spans).replace(" ", "")
    assert covered == text.replace(" ", "")


def test_scores_ignore_case_only_when_asked() -> None:
    refs = ["A Dog runs on the Grass .", "Two Men sit ."]
    hyps = [r.lower() for r in refs]
    cased, caseless = score_corpus(hyps, refs), score_corpus(hyps, refs, lowercase=True)
    assert cased["bleu"]["score"] < 60 and caseless["bleu"]["score"] == 100.0
    assert caseless["chrf"]["score"] == 100.0 and caseless["ter"]["score"] == 0.0
    assert cased["ter"]["score"] > 0 and cased["chrf"]["score"] < 100
    for metric in ("bleu", "chrf"):
        assert "case:lc" in caseless[metric]["signature"] and "case:mixed" in cased[metric]["signature"]
    assert "case:lc" in caseless["ter"]["signature"]
    assert caseless["bleu_tok_lc"] == cased["bleu_tok_lc"]  # lowercased already
    assert (
        quick_bleu(hyps, refs, lowercase=True) == pytest.approx((100.0, 100.0))
        and quick_bleu(hyps, refs)[0] < 60
    )
    boot = paired_bootstrap(hyps, refs, refs, n_resamples=50, lowercase=True)
    assert boot["baseline"] == pytest.approx(100.0) == boot["system"] and "case:lc" in boot["signature"]


def test_a_lowercased_run_trains_scores_and_translates_in_lowercase(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [*tiny_corpus_args(tmp_path), *TINY_MODEL, "trainer.max_steps=10", "trainer.val_every=10",
            "tokenizer.lowercase=true", f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = run("mt-train", args, tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["config"]["tokenizer"]["lowercase"] is True
    for split, scores in results["test"].items():
        for metric in ("bleu", "chrf", "ter"):
            assert "case:lc" in scores[metric]["signature"], (split, metric)
        hyps = (run_dir / "outputs" / f"{split}.hyp").read_text(encoding="utf-8").splitlines()
        refs = (run_dir / "outputs" / f"{split}.ref").read_text(encoding="utf-8").splitlines()
        assert hyps and all(h == h.lower() for h in hyps)
        assert any(r != r.lower() for r in refs)  # the references are kept as read
    ckpt = run_dir / "checkpoints" / "best.pt"
    assert Tokenizer.from_bytes(torch.load(ckpt, weights_only=True)["tokenizer"]).lowercase
    lines = [
        "Ein Hund läuft auf der Wiese.",
        "EIN HUND LÄUFT AUF DER WIESE.",
        "ein hund läuft auf der wiese.",
    ]
    (tmp_path / "in.de").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = run("mt-translate", [f"checkpoint={ckpt}", "input=in.de", "output=out.en", "device=cpu",
                                "beam_size=2"], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out = (tmp_path / "out.en").read_text(encoding="utf-8").splitlines()
    assert len(out) == 3 and out[0] == out[1] == out[2] and out[0] == out[0].lower()
