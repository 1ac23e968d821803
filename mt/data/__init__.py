"""Parallel text in, batches out: sources and readers, the sentencepiece tokenizer,
encoding and its cache, the length-bucketing sampler, collation into a `Batch`, loaders.
Entry point: `pipeline.prepare_data(data_cfg, tokenizer_cfg)`.
"""
