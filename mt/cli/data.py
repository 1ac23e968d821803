"""`mt-data`: statistics of a data config, printed as a table and written as JSON.

    mt-data                                   # Multi30k de->en, default tokenizer and batching
    mt-data data.src_lang=en data.tgt_lang=cs data.batch_tokens=4000

Reports, per split: sentences, subword tokens per side (total, mean), length percentiles;
for train: pairs dropped by the filter and the padding waste of the bucketed batches; and
the time the preparation took (first run: tokenizer training and encoding; later runs
reuse the caches).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mt.cli.common import CONFIG_DIR, friendly_errors, preflight, quote_paths, register_resolvers
from mt.command_config import DataStatsConfig, register_configs
from mt.data.stats import data_stats, print_table
from mt.io import write_json

register_resolvers()
register_configs()
log = logging.getLogger("mt.data")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="data_stats")
@friendly_errors
def hydra_main(cfg: DictConfig) -> dict[str, Any]:
    typed: DataStatsConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    stats = data_stats(typed)
    out = Path(HydraConfig.get().runtime.output_dir) / "data_stats.json"
    write_json(out, stats)
    print_table(stats)
    print(f"written to {out}")
    return stats


def main() -> None:
    """The `mt-data` command: bad overrides are reported before Hydra starts."""
    sys.argv[1:] = quote_paths(sys.argv[1:])  # a job directory's name holds = and ,
    preflight("data_stats", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
