"""Alignment heatmaps: attention weights with source subwords on the x axis and output
subwords on the y axis, with a colour bar."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


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


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write the figure as PNG (folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
