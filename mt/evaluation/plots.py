"""Alignment heatmaps: attention weights with source tokens on the x axis and output tokens on
the y axis, with a colour bar; one matrix, or several side by side with gold links marked."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from mt.io import atomic_write  # noqa: E402

log = logging.getLogger("mt.eval")


def alignment_figure(src_tokens: list[str], out_tokens: list[str], weights, title: str = "") -> Figure:
    """weights (len(out_tokens), len(src_tokens)) array-like -> a matplotlib Figure."""
    w = weights.detach().cpu().float().numpy() if hasattr(weights, "detach") else weights
    if w.shape != (len(out_tokens), len(src_tokens)):
        raise ValueError(
            f"weights {w.shape} do not match {len(out_tokens)} output x {len(src_tokens)} source tokens"
        )
    size = 0.32
    fig = Figure(
        figsize=(max(4.0, 1.8 + size * len(src_tokens)), max(3.0, 1.4 + size * len(out_tokens))), dpi=110
    )
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(src_tokens)))
    ax.set_xticklabels(src_tokens, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(out_tokens)))
    ax.set_yticklabels(out_tokens, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    return fig


def alignment_grid_figure(
    panels: list[tuple[str, np.ndarray]],
    src_words: list[str],
    tgt_words: list[str],
    sure: frozenset[tuple[int, int]] = frozenset(),
    possible: frozenset[tuple[int, int]] = frozenset(),
    per_row: int = 5,
) -> Figure:
    """Word-level attention matrices of one sentence pair side by side, one per (title, weights
    (len(tgt_words), len(src_words))), at most `per_row` in a row; gold links (source i, target
    j) drawn as squares, solid for sure and dashed for possible-only ones."""
    size = 0.3
    width = 1.6 + size * len(src_words)
    n_rows = -(-len(panels) // per_row)
    n_cols = min(len(panels), per_row)
    fig = Figure(figsize=(width * n_cols + 1.0, (2.3 + size * len(tgt_words)) * n_rows), dpi=110)
    grid = fig.subplots(n_rows, n_cols, sharey=True, squeeze=False)
    for ax in grid.flat[len(panels) :]:
        ax.set_visible(False)
    axes = list(grid.flat[: len(panels)])
    im = None
    for k, (ax, (title, w)) in enumerate(zip(axes, panels, strict=True)):
        if w.shape != (len(tgt_words), len(src_words)):
            raise ValueError(
                f"{title}: weights {w.shape} do not match {len(tgt_words)} x {len(src_words)} words"
            )
        im = ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="equal", interpolation="nearest")
        for (i, j), style in [(link, "-") for link in sure] + [(link, "--") for link in possible - sure]:
            ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="tab:red", linestyle=style,
                                   linewidth=1.0))  # fmt: skip
        ax.set_xticks(range(len(src_words)))
        ax.set_xticklabels(src_words, rotation=70, ha="right", fontsize=7)
        if k % n_cols == 0:  # the axes share y: the first one's labels stand for its row
            ax.set_yticks(range(len(tgt_words)))
            ax.set_yticklabels(tgt_words, fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=list(axes), fraction=0.015, pad=0.01)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path | None:
    """Write the figure as PNG (atomically, folders created) and return the path; a plot that
    cannot be written (full disk, a file where the folder should be, a glyph the renderer
    refuses) is a warning naming the file, never the end of a run: None then."""
    path = Path(path)
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png"))
    except (OSError, ValueError, RuntimeError) as e:
        log.warning(
            "plot not saved: %s (%s); the run goes on without it",
            path,
            str(e).splitlines()[0] if str(e) else type(e).__name__,
        )
        return None
    finally:
        plt.close(fig)
    return path
