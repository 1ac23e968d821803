"""The side-by-side alignment figure (docs/attention.md's picture): panels in rows of at most
`per_row`, gold links drawn on each, a wrong-sized matrix refused by its title, a real PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mt.evaluation.plots import alignment_grid_figure, save_figure

SRC, TGT = ["a", "dog", "runs"], ["ein", "Hund", "rennt", "."]


def panels(n: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(f"m{k}", rng.dirichlet(np.ones(len(SRC)), size=len(TGT))) for k in range(n)]


@pytest.mark.parametrize("n, rows, cols", [(1, 1, 1), (7, 2, 5)])
def test_panels_fill_rows_of_at_most_five(n: int, rows: int, cols: int, tmp_path: Path) -> None:
    fig = alignment_grid_figure(panels(n), SRC, TGT, sure=frozenset({(1, 1)}), possible=frozenset({(2, 3)}))
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in visible] == [f"m{k}" for k in range(n)]
    assert len({round(ax.get_position().y0, 3) for ax in visible}) == rows
    assert len({round(ax.get_position().x0, 3) for ax in visible}) == cols
    assert all(len(ax.patches) == 2 for ax in visible)  # one sure, one possible-only link
    png = save_figure(fig, tmp_path / "grid.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_matrix_of_the_wrong_size_is_refused_by_its_title() -> None:
    bad = [("good", np.zeros((4, 3))), ("transposed", np.zeros((3, 4)))]
    with pytest.raises(ValueError, match="transposed: weights"):
        alignment_grid_figure(bad, SRC, TGT)
