"""`python -m mt.train ...`: the module torchrun runs for data-parallel training.

    torchrun --nproc_per_node=2 -m mt.train trainer.device=cpu      # 2 processes, gloo
    torchrun --nproc_per_node=8 -m mt.train                         # 8 GPUs, NCCL

The same as `mt-train` (which also works under torchrun: `torchrun --no-python ... mt-train`).
"""

from mt.cli.train import main

if __name__ == "__main__":
    main()
