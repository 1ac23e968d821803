"""Every Multi30k language, trained for real: a tiny mt-train run per new pair (en->fr, cs->en)
on the real files writes well-formed outputs, with the pair's characters intact (French
accents and elision, Czech diacritics), and the splits each pair has (no test_2017 for Czech)."""

from __future__ import annotations

import gzip
import json
import unicodedata
from pathlib import Path

import pytest
import torch
from clihelpers import run

from mt.data.tokenizer import Tokenizer

TINY = ["model.emb_size=32", "model.enc_hidden=32", "model.dec_hidden=64", "tokenizer.vocab_size=2000",
        "trainer.max_steps=10", "trainer.val_every=10", "trainer.valid_max_sentences=40", "trainer.test_beam_size=2",
        "trainer.max_output_tokens=30", "trainer.plot_sentences=[]", "trainer.progress=false",
        "trainer.precision=fp32"]  # fmt: skip
# (source, target, test splits the pair has, characters its target references must keep)
PAIRS = [("en", "fr", ["test_2016_flickr", "test_2017_flickr"], "éèàçêô'"),
         ("cs", "en", ["test_2016_flickr"], ""),
         ("en", "cs", ["test_2016_flickr"], "ěščřžýáíéůú")]  # fmt: skip


def raw_lines(multi30k: Path, split: str, lang: str) -> list[str]:
    with gzip.open(multi30k / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
        return [unicodedata.normalize("NFC", line.rstrip("\n")) for line in f]


@pytest.mark.slow  # a real run on the whole Multi30k train split (tokenizer, encoding, decoding)
@pytest.mark.parametrize("src, tgt, splits, chars", PAIRS)
def test_a_tiny_run_per_pair(src: str, tgt: str, splits: list[str], chars: str, multi30k_dir: Path,
                             tmp_path: Path) -> None:  # fmt: skip
    if not (multi30k_dir / "multi30k" / f"train.{src}.gz").is_file():
        pytest.skip(f"no Multi30k {src} files")
    run_dir = tmp_path / "run"
    args = [f"data.src_lang={src}", f"data.tgt_lang={tgt}", f"data.cache_dir={tmp_path / 'cache'}", f"data.data_dir={multi30k_dir}",
            f"hydra.run.dir={run_dir}", *TINY]  # fmt: skip
    proc = run("mt-train", args, tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert sorted(results["test"]) == sorted(splits)
    tok = Tokenizer.from_bytes(
        torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["tokenizer"]
    )
    for split in splits:
        refs = (run_dir / "outputs" / f"{split}.ref").read_text(encoding="utf-8").splitlines()
        hyps = (run_dir / "outputs" / f"{split}.hyp").read_text(encoding="utf-8").splitlines()
        assert refs == raw_lines(multi30k_dir / "multi30k", split, tgt)  # every character as in the file
        assert len(hyps) == len(refs) and not any("\u2047" in h for h in hyps)  # no unknown piece
        assert all(c in "".join(refs) for c in chars)
        # the tokenizer writes back every reference as it normalises it (spaces collapsed), no
        # character unknown: the pair's characters are covered (French refs have double spaces)
        ids = tok.encode_tgt(refs)
        lost = [r for r, i in zip(refs, ids, strict=True) if tok.decode_tgt(i) != tok.normalize(r)]
        assert not lost, lost[:3]
        assert results["test"][split]["bleu"]["signature"].startswith("nrefs:1")
