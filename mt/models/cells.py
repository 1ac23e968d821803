"""One time step of a GRU or LSTM layer whose input projection is computed by the caller.

The decoder projects the embeddings of every target position in one matrix multiply
before its time loop; only the recurrent part (and the input-feeding part) is left per
step. These functions are that per-step part, with PyTorch's gate layout and equations
(the same as ``torch.nn.GRUCell`` / ``torch.nn.LSTMCell``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

GATES = {"gru": 3, "lstm": 4}


def gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """gx (B, 3H) input projection incl. bias, h (B, H) -> new h (B, H)."""
    # F.linear on the parameter itself (not a view such as w_hh.t()): autocast caches its
    # bf16 copy for the whole decoder loop instead of casting and saving it once per step.
    gh = nn.functional.linear(h, w_hh, b_hh)  # (B, 3H)
    H = h.size(1)
    rz = torch.sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    n = torch.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
    return n + z * (h - n)


def lstm_step(gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
    """gx (B, 4H) input projection incl. bias, h, c (B, H) -> new h, c (B, H)."""
    gates = gx + nn.functional.linear(h, w_hh, b_hh)  # (B, 4H), see gru_step
    H = h.size(1)
    i = torch.sigmoid(gates[:, :H])
    f = torch.sigmoid(gates[:, H : 2 * H])
    g = torch.tanh(gates[:, 2 * H : 3 * H])
    o = torch.sigmoid(gates[:, 3 * H :])
    c = f * c + i * g
    return o * torch.tanh(c), c


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
