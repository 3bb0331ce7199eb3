"""Bidirectional recurrent (LSTM, GRU or Elman RNN) encoder over packed source sentences."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def rnn_class(cell: str) -> type[nn.RNNBase]:
    """"lstm" | "gru" | "rnn" -> the torch module; ValueError naming `cell` otherwise."""
    if cell not in RNN_CELLS:
        raise ValueError(f"cell={cell!r} is not one of {', '.join(RNN_CELLS)}")
    return RNN_CELLS[cell]


class RecurrentEncoder(nn.Module):
    """Bidirectional RNN; padding never enters the recurrence (packed sequences).

    Output size is 2 * hidden_size (forward and backward states concatenated).
    """

    def __init__(self, emb_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0, cell: str = "lstm"):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = 2 * hidden_size
        self.rnn = rnn_class(cell)(
            emb_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,  # between layers
        )

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch.

        Args:
            embedded: [B, S, E] embedded source (padding positions are ignored).
            lengths: [B] long, true lengths (>= 1), any order.
        Returns:
            memory [B, S, 2H] (zeros on padding) and final [B, 2H]: the top layer's last forward
            state and last (i.e. at position 0) backward state, concatenated.
        """
        B, S, _ = embedded.shape
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, h_n = self.rnn(packed)  # h_n [layers * 2, B, H] (LSTM: a (h_n, c_n) pair)
        if isinstance(h_n, tuple):
            h_n = h_n[0]  # [layers * 2, B, H]
        memory, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=S)  # [B, S, 2H]
        h_top = h_n.view(self.num_layers, 2, B, self.hidden_size)[-1]  # [2, B, H]
        final = torch.cat([h_top[0], h_top[1]], dim=-1)  # [B, 2H]
        return memory, final
