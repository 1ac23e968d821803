"""Parallel text in, batches out: streamed readers, memory-mapped text and id caches, the
sentencepiece tokenizer (trained on a seeded sample), the length-bucketing sampler, collation
into a `Batch`, loaders reading rows per batch. Entry point: `pipeline.prepare_data`.
"""
