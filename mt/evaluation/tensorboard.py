"""TensorBoard logging: train/* and valid/* scalars, attention figures, sample tables and
hyper-parameters with final scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


class TensorBoard:
    """A thin wrapper over SummaryWriter; disabled (every call a no-op) when `enabled` is false,
    e.g. on ranks other than 0."""

    def __init__(self, log_dir: str | Path, enabled: bool = True, purge_step: int | None = None) -> None:
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer:
            for tag, v in values.items():
                self.writer.add_scalar(tag, v, step)

    def figure(self, tag: str, fig: Figure, step: int) -> None:
        if self.writer:
            self.writer.add_figure(tag, fig, step, close=False)

    def samples(self, tag: str, rows: list[tuple[str, str, str]], step: int) -> None:
        """rows of (source, reference, hypothesis) as a markdown table."""
        if self.writer:

            def esc(s: str) -> str:
                return s.replace("|", "\\|").replace("\n", " ")

            lines = ["| source | reference | hypothesis |", "|---|---|---|"]
            lines += [f"| {esc(s)} | {esc(r)} | {esc(h)} |" for s, r, h in rows]
            self.writer.add_text(tag, "\n".join(lines), step)

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """Hyper-parameters and final scores for the HParams dashboard (metric tags under hparam/)."""
        if self.writer:
            clean = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in hparams.items()}
            self.writer.add_hparams(clean, {f"hparam/{k}": v for k, v in metrics.items()}, run_name=".")

    def flush(self) -> None:
        if self.writer:
            self.writer.flush()

    def close(self) -> None:
        if self.writer:
            self.writer.close()
