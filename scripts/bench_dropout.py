"""Micro-benchmark of dropout, forward + backward, torch's ``F.dropout`` against mt's kernel
(``mt.models.kernels.dropout``), at the shapes of the default model's training step; prints
JSON lines with the median milliseconds of one call and the ratio.

    python scripts/bench_dropout.py
"""

from __future__ import annotations

import argparse
import json

import torch
from bench_timing import median_seconds
from torch.nn import functional as F

from mt.models.kernels import dropout

# (name, shape): a decoder step's attentional vector, a batch's embeddings, the encoder output
SHAPES = {"decoder_step": (330, 512), "embeddings": (330, 18, 256), "encoder_output": (330, 18, 512)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=float, default=0.3)
    ap.add_argument("--min-run-time", type=float, default=0.5)
    args = ap.parse_args()
    for name, shape in SHAPES.items():
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(shape).to(dtype).requires_grad_()
            ms = {
                impl: 1e3 * median_seconds(lambda f=f, x=x: f(x, args.p).sum().backward(), args.min_run_time)
                for impl, f in (("torch", lambda x, p: F.dropout(x, p, True)), ("mt", dropout))
            }
            row = {"shape": name, "dims": list(shape), "dtype": str(dtype).removeprefix("torch."), **ms}
            print(json.dumps({**row, "speedup": round(ms["torch"] / ms["mt"], 2)}), flush=True)


if __name__ == "__main__":
    main()
