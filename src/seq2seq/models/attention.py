"""Attention over the encoder memory: a shared base (masking, softmax, context), Bahdanau and Luong scores.

Keys are projected once per sentence (`compute_proj_keys`); each query only projects itself.
Queries come one per sentence ([B, Q], a decoding step) or all target positions at once
([B, T, Q], teacher forcing when the decoder RNN does not depend on earlier attention).
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
        """query [B, T, Q], proj_keys [B, S, A] -> unnormalised scores [B, T, S]."""
        raise NotImplementedError

    def forward(
        self, query: torch.Tensor, proj_keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from one query per sentence, or from T queries per sentence.

        Args:
            query: [B, Q] or [B, T, Q] decoder states.
            proj_keys: [B, S, A] output of `compute_proj_keys(memory)`.
            values: [B, S, K] encoder memory.
            mask: [B, S] bool, True on real source positions (each row has at least one).
        Returns:
            context [B, K] (or [B, T, K]) and weights [B, S] (or [B, T, S]): exactly 0 on padding,
            summing to 1 over the rest.
        """
        one_step = query.dim() == 2
        if one_step:
            query = query.unsqueeze(1)  # [B, 1, Q]
        scores = self.score(query, proj_keys)  # [B, T, S]
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))  # [B, T, S]
        weights = F.softmax(scores, dim=-1)  # [B, T, S]
        context = torch.bmm(weights, values)  # [B, T, K]
        if one_step:
            return context.squeeze(1), weights.squeeze(1)  # [B, K], [B, S]
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
        """query [B, T, Q], proj_keys [B, S, A] -> scores [B, T, S]."""
        proj_query = self.query_layer(query).unsqueeze(2)  # [B, T, 1, A]
        energy = torch.tanh_(proj_query + proj_keys.unsqueeze(1))  # [B, T, S, A] (in place: one tensor, not two)
        return self.energy_layer(energy).squeeze(-1)  # [B, T, S]


class LuongAttention(Attention):
    """Multiplicative attention (Luong et al., 2015): "general" score(q, k) = q^T W k, "dot" q^T k.

    "dot" has no parameters and needs key_size == query_size.
    """

    def __init__(self, query_size: int, key_size: int, kind: str = "general"):
        super().__init__()
        if kind not in ("general", "dot"):
            raise ValueError(f"Luong attention kind={kind!r} is not one of general, dot")
        if kind == "dot" and key_size != query_size:
            raise ValueError(f"dot attention needs memory size ({key_size}) == decoder size ({query_size})")
        self.key_layer = nn.Linear(key_size, query_size, bias=False) if kind == "general" else nn.Identity()

    def compute_proj_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """keys [B, S, K] -> W keys (general) or keys (dot) [B, S, Q]."""
        return self.key_layer(keys)  # [B, S, Q]

    def score(self, query: torch.Tensor, proj_keys: torch.Tensor) -> torch.Tensor:
        """query [B, T, Q], proj_keys [B, S, Q] -> scores [B, T, S]."""
        return torch.bmm(query, proj_keys.transpose(1, 2))  # [B, T, S]
