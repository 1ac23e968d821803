"""`mt-evaluate checkpoint=PATH`: decode the test splits (beam search by default), score
them with sacreBLEU and tokenized lowercased BLEU, and save outputs and alignment plots.

    mt-evaluate checkpoint=runs/de-en/default/DATE/checkpoints/best.pt
    mt-evaluate checkpoint=... beam_size=1 splits=[test_2016_flickr]
    mt-evaluate checkpoint=... max_output_tokens=200 max_rss_mb=4000
    mt-evaluate checkpoint=... +files.test=moved/test      # the split's text is elsewhere now
    mt-evaluate checkpoint=... score_references=true       # + each reference's log-probability
    mt-evaluate checkpoint=... shortlist=RUN/shortlist.pt  # a vocabulary shortlist (mt-shortlist)

Only the checkpoint (model, tokenizer, config) and the evaluated splits are read: the training
corpus and the run's data cache may have moved or gone (`mt.evaluation.eval_data`).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from mt.cli.common import CONFIG_DIR, friendly_errors, preflight, quote_paths, register_resolvers
from mt.command_config import EvaluateConfig, register_configs, validate_search
from mt.errors import ConfigError

register_resolvers()
register_configs()
log = logging.getLogger("mt.evaluate")


def evaluate(cfg: EvaluateConfig, out_dir: Path) -> dict:
    """Library entry: score the checkpoint's test splits into `out_dir`; returns the results."""
    from mt.evaluation.eval_data import load_eval_data
    from mt.evaluation.evaluate import evaluate_splits
    from mt.evaluation.metrics import summary_line
    from mt.io import write_json
    from mt.runtime import resolve_device, tune_allocator
    from mt.search.base import SearchConfig
    from mt.search.shortlist import from_settings as load_shortlist
    from mt.training.checkpoint import describe, load_ensemble, load_model

    if cfg.score_references and cfg.ensemble:
        raise ConfigError("config error at `score_references`: it scores one model; drop ensemble=[...]")
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.checkpoint, device)
    model = load_ensemble(loaded, cfg.checkpoint, cfg.ensemble, device)
    # decoding settings left null: what the run used for its final test scores
    run_search = SearchConfig.from_trainer(loaded.config.trainer)
    inherited = {f.name: getattr(run_search, f.name) for f in dataclasses.fields(cfg)
                 if getattr(cfg, f.name) is None and hasattr(run_search, f.name)}  # fmt: skip
    cfg = dataclasses.replace(cfg, **inherited)
    validate_search(cfg)
    tune_allocator(cfg.max_rss_mb)  # once validated (that needs the run's settings), before decoding
    data_cfg = loaded.config.data
    if cfg.data_dir:
        data_cfg = dataclasses.replace(data_cfg, data_dir=cfg.data_dir)
    shortlist = load_shortlist(cfg, loaded.tokenizer.to_bytes())
    data = load_eval_data(data_cfg, loaded.tokenizer, cfg.splits or None, cfg.files)  # [] = default
    splits = list(data.encoded)
    search = SearchConfig.from_settings(cfg)
    scores = evaluate_splits(model, data, data_cfg, splits, search, device, out_dir, data_cfg.tgt_lang,
                             plot_sentences=list(cfg.plot_sentences), shortlist=shortlist)  # fmt: skip
    if cfg.score_references:
        score_references(model, data, data_cfg, splits, cfg.precision, device, out_dir, scores)
    results = {"checkpoint": str(cfg.checkpoint), "model": describe(loaded), "test": scores}
    if cfg.ensemble:
        results["ensemble"] = [str(cfg.checkpoint), *map(str, cfg.ensemble)]
    if shortlist is not None:
        results["shortlist"] = {"file": str(cfg.shortlist), **shortlist.describe()}
    write_json(out_dir / "results.json", results)
    for split, s in scores.items():
        print(summary_line(split, s))
        print(f"  {s['bleu']['signature']}")
    print(f"results in {out_dir / 'results.json'}")
    return results


def score_references(model, data, data_cfg, splits: list[str], precision: str, device, out_dir: Path,
                     scores: dict) -> None:  # fmt: skip
    """`outputs/<split>.ref_scores` (per reference line: log-probability, tab, tokens) and the
    totals as `reference_scores` in each split's scores."""
    from mt.evaluation.reference_scores import reference_log_probs, summarize
    from mt.io import write_lines

    for split in splits:
        per_line = reference_log_probs(model, data.encoded[split], data_cfg, precision, device)
        write_lines(out_dir / "outputs" / f"{split}.ref_scores", [f"{s:.4f}\t{n}" for s, n in per_line])
        scores[split]["reference_scores"] = summarize(per_line)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@friendly_errors
def hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    typed: EvaluateConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    evaluate(typed, Path(HydraConfig.get().runtime.output_dir))


def main() -> None:
    """The `mt-evaluate` command: bad overrides are reported before Hydra starts."""
    sys.argv[1:] = quote_paths(sys.argv[1:])  # a job directory's name holds = and ,
    preflight("evaluate", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
