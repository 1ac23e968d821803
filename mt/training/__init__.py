"""Training a model: the loop (trainer), learning-rate schedules, checkpoints (layout, atomic
save, safe load, migration, compatibility, model from checkpoint), data parallelism.
Entry point: `run.train(cfg, resolved, run_dir)`, which `mt-train` calls.
"""
