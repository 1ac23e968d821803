"""scripts/eflomal_baseline.py: the install hint without eflomal (always run), and the aligner
core and the whole script on a tiny synthetic corpus (skipped when eflomal is not installed)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "eflomal_baseline.py"


def load_script():
    spec = importlib.util.spec_from_file_location("eflomal_baseline", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def synthetic_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str], list[set[tuple[int, int]]]]:
    """English-like ``eK`` words, each translated one-to-one into ``cK``; every third target reversed.

    Returns source lines, target lines and the true links (source i, target j) of each pair.
    """
    rng = random.Random(seed)
    src, tgt, links = [], [], []
    for k in range(n):
        words = rng.sample(range(12), rng.randint(3, 6))
        order = list(range(len(words)))[::-1] if k % 3 == 2 else list(range(len(words)))
        src.append(" ".join(f"e{w}" for w in words))
        tgt.append(" ".join(f"c{words[i]}" for i in order))
        links.append({(i, j) for j, i in enumerate(order)})
    return src, tgt, links


def test_without_eflomal_exits_2_with_install_hint(monkeypatch, capsys, tmp_path):
    mod = load_script()
    monkeypatch.setitem(sys.modules, "eflomal", None)  # `import eflomal` now raises ImportError
    with pytest.raises(SystemExit) as exc:
        mod.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[align]"' in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_run_eflomal_on_tiny_corpus_gives_pharaoh_links_in_range(monkeypatch):
    eflomal = pytest.importorskip("eflomal")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mod = load_script()
    src, tgt, true_links = synthetic_pairs(40)
    fwd, rev = mod.run_eflomal(eflomal, src, tgt, n_samplers=1)
    assert len(fwd) == len(rev) == len(src)
    for links_dir in (fwd, rev):
        for links, s, t in zip(links_dir, src, tgt, strict=True):
            assert all(0 <= i < len(s.split()) and 0 <= j < len(t.split()) for i, j in links)
    found = sum(len(f & t) for f, t in zip(fwd, true_links, strict=True))
    assert found >= 0.8 * sum(len(t) for t in true_links)  # a one-to-one toy corpus is easy


def test_script_end_to_end_on_tiny_data_dir(monkeypatch, tmp_path, capsys):
    pytest.importorskip("eflomal")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    src, tgt, links = synthetic_pairs(36, seed=1)
    m30k = tmp_path / "data" / "multi30k"
    m30k.mkdir(parents=True)
    (m30k / "train.en.gz").write_bytes(gzip.compress("".join(f"{s}\n" for s in src[:30]).encode()))
    (m30k / "train.cs.gz").write_bytes(gzip.compress("".join(f"{t}\n" for t in tgt[:30]).encode()))
    gold_lines = [
        f"{s}\t{t}\t{' '.join(f'{i + 1}-{j + 1}' for i, j in sorted(lk))}\t"
        for s, t, lk in zip(src[30:], tgt[30:], links[30:], strict=True)
    ]
    gold = tmp_path / "data" / "alignment" / "czenali-en-cs" / "czenali.gz"
    gold.parent.mkdir(parents=True)
    gold.write_bytes(gzip.compress("".join(f"{g}\n" for g in gold_lines).encode()))

    mod = load_script()
    out = tmp_path / "out"
    mod.main(["--data-dir", str(tmp_path / "data"), "--out", str(out), "--n-samplers", "1", "--threads", "1"])

    result = json.loads((out / "scores.json").read_text())
    assert set(result["scores"]) == set(mod.METHODS)
    assert result["train"] == {"multi30k_en_cs_pairs": 30, "czenali_pairs": 6}
    for method, s in result["scores"].items():
        assert 0.0 <= s["aer"] <= 1.0 and s["sentences"] == 6, method
        lines = (out / f"czenali.{method}.align").read_text().splitlines()
        assert len(lines) == 6
        for line, s_line, t_line in zip(lines, src[30:], tgt[30:], strict=True):
            for tok in line.split():
                i, j = map(int, tok.split("-"))
                assert 0 <= i < len(s_line.split()) and 0 <= j < len(t_line.split())
    assert "eflomal baseline: AER en->cs" in capsys.readouterr().out
