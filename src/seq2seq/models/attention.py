"""Attention over the encoder memory: a shared base (masking, softmax, context) and Bahdanau scoring.

Keys are projected once per sentence (`compute_proj_keys`); each decoding step only projects
the query. A Luong (multiplicative) variant only needs its own `compute_proj_keys` and `score`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    """Base class: subclasses define `compute_proj_keys` and `score`; this class masks and mixes."""

    def compute_proj_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """keys [B, S, K] -> projected keys [B, S, A], computed once per sentence."""
        raise NotImplementedError

    def score(self, query: torch.Tensor, proj_keys: torch.Tensor) -> torch.Tensor:
        """query [B, Q], proj_keys [B, S, A] -> unnormalised scores [B, S]."""
        raise NotImplementedError

    def forward(
        self, query: torch.Tensor, proj_keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from one query per sentence.

        Args:
            query: [B, Q] decoder state.
            proj_keys: [B, S, A] output of `compute_proj_keys(memory)`.
            values: [B, S, K] encoder memory.
            mask: [B, S] bool, True on real source positions (each row has at least one).
        Returns:
            context [B, K] and weights [B, S] (exactly 0 on padding, summing to 1 over the rest).
        """
        scores = self.score(query, proj_keys)  # [B, S]
        scores = scores.masked_fill(~mask, float("-inf"))  # [B, S]
        weights = F.softmax(scores, dim=-1)  # [B, S]
        context = torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # [B, K]
        return context, weights


class BahdanauAttention(Attention):
    """Additive attention: score(q, k) = v^T tanh(W_q q + W_k k) (Bahdanau et al., 2015)."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int):
        super().__init__()
        self.key_layer = nn.Linear(key_size, hidden_size, bias=False)
        self.query_layer = nn.Linear(query_size, hidden_size, bias=False)
        self.energy_layer = nn.Linear(hidden_size, 1, bias=False)

    def compute_proj_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """keys [B, S, K] -> W_k keys [B, S, A]."""
        return self.key_layer(keys)  # [B, S, A]

    def score(self, query: torch.Tensor, proj_keys: torch.Tensor) -> torch.Tensor:
        """query [B, Q], proj_keys [B, S, A] -> scores [B, S]."""
        proj_query = self.query_layer(query).unsqueeze(1)  # [B, 1, A]
        energy = torch.tanh(proj_query + proj_keys)  # [B, S, A]
        return self.energy_layer(energy).squeeze(-1)  # [B, S]
