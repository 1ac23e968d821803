"""The weights of a decoder GRU or LSTM layer whose input projection is computed by the caller.

The decoder projects the embeddings of every target position in one matrix multiply
before its time loop; only the recurrent part (and the input-feeding part) is left per
step: ``mt.models.kernels.gru_step`` / ``lstm_step``, with PyTorch's gate layout and
equations (the same as ``torch.nn.GRUCell`` / ``torch.nn.LSTMCell``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mt.models.kernels import gru_step, lstm_step

GATES = {"gru": 3, "lstm": 4}


class RecurrentLayer(nn.Module):
    """Weights of one GRU/LSTM layer whose input is split into parts (e.g. embedding and
    input-feeding vector) so that each part can be projected separately."""

    def __init__(self, rnn_type: str, input_sizes: list[int], hidden_size: int) -> None:
        super().__init__()
        if rnn_type not in GATES:
            raise ValueError(f"unknown rnn_type {rnn_type!r}; choose one of {sorted(GATES)}")
        self.rnn_type = rnn_type
        self.hidden_size = hidden_size
        G = GATES[rnn_type] * hidden_size
        self.w_ih = nn.ParameterList([nn.Parameter(torch.empty(G, n)) for n in input_sizes])
        self.b_ih = nn.Parameter(torch.empty(G))
        self.w_hh = nn.Parameter(torch.empty(G, hidden_size))
        self.b_hh = nn.Parameter(torch.empty(G))
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's RNN initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def project(self, part: int, x: Tensor, bias: bool = False) -> Tensor:
        """Input projection of input part `part`: x (..., n) -> (..., G)."""
        if bias:
            return nn.functional.linear(x, self.w_ih[part], self.b_ih)
        return nn.functional.linear(x, self.w_ih[part])

    def step(self, gx: Tensor, h: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """gx (B, G) full input projection incl. bias; h, c (B, H) -> new h, c."""
        if self.rnn_type == "gru":
            return gru_step(gx, h, self.w_hh, self.b_hh), None
        assert c is not None
        return lstm_step(gx, h, c, self.w_hh, self.b_hh)
