"""Pre-norm Transformer encoder-decoder (Vaswani et al., 2017) with incremental decoding.

Pre-norm: every sublayer reads LayerNorm(x) and adds its (dropped-out) output to x; both stacks end
with a LayerNorm. Embeddings are scaled by sqrt(d_model) and added to sinusoidal positions.
Attention is written out by hand so that the cross-attention weights can be returned and the
decoder's self-attention keys/values can be cached: `decode_step` feeds one token through the
stack, attending to the cached keys/values of the earlier positions (O(t) per step), and
`forward` runs all positions at once under a causal mask through the very same layer code.

Decoding does no work twice: the cache is a buffer with room for more positions (each step writes
one, instead of concatenating a new copy of all earlier ones), and the encoder's cross-attention
keys and values are projected once per sentence and stored in the layout the attention products
read (keys transposed, contiguous; they used to be copied into it at every step). The products
compute the same numbers as before: benchmarks/decode_engines.py --baseline found every output
line unchanged (README, "CTranslate2 export").
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from seq2seq.models.base import make_embeddings, source_mask
from seq2seq.models.dropout import Dropout

CACHE_CAPACITY = 32  # target positions a fresh decoder cache holds; it doubles when full


def sinusoids(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """positions [T] long -> encodings [T, D]: sin(p / 10000^(2i/D)) on even dims, cos on odd dims."""
    inv_freq = torch.exp(torch.arange(0, dim, 2, device=positions.device) * (-math.log(10000.0) / dim))  # [D/2]
    angles = positions.float().unsqueeze(1) * inv_freq  # [T, D/2]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # [T, D]


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with n_heads heads; keys/values are projected by `keys_values`
    (once per sentence for cross-attention, once per new position for cached self-attention)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.kv_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = Dropout(dropout)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, h, T, D / h]."""
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # [B, h, T, d]

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, S, D] -> keys, values [B, h, S, d] each (views into one projection)."""
        k, v = self.kv_proj(x).chunk(2, dim=-1)  # [B, S, D] x2
        return self._split_heads(k), self._split_heads(v)  # [B, h, S, d] x2

    def forward(
        self, x: torch.Tensor, keys_t: torch.Tensor, values: torch.Tensor, mask: Optional[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, D] queries; keys_t [B, h, d, S] (keys transposed); values [B, h, S, d];
        mask broadcastable to [B, h, T, S], True = may attend.
        Returns output [B, T, D] and weights [B, h, T, S] (before attention dropout)."""
        B, T, D = x.shape
        q = self._split_heads(self.q_proj(x)) / math.sqrt(self.d_head)  # [B, h, T, d]
        scores = q @ keys_t  # [B, h, T, S]
        if mask is not None:
            scores.masked_fill_(~mask, float("-inf"))  # [B, h, T, S]
        weights = F.softmax(scores, dim=-1)  # [B, h, T, S]
        out = self.dropout(weights) @ values  # [B, h, T, d]
        out = out.transpose(1, 2).reshape(B, T, D)  # [B, T, D]
        return self.out_proj(out), weights


class FeedForward(nn.Sequential):
    """Position-wise Linear(D, F) -> ReLU -> Linear(F, D) (no dropout inside, as fairseq's default)."""

    def __init__(self, d_model: int, ff_size: int):
        super().__init__(nn.Linear(d_model, ff_size), nn.ReLU(), nn.Linear(ff_size, d_model))


class EncoderLayer(nn.Module):
    """x + SelfAttention(LN(x)), then x + FeedForward(LN(x))."""

    def __init__(self, d_model: int, n_heads: int, ff_size: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.self_attn_norm, self.ff_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.ff = FeedForward(d_model, ff_size)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, S, D], mask [B, 1, 1, S] (True on real tokens) -> [B, S, D]."""
        h = self.self_attn_norm(x)  # [B, S, D]
        k, v = self.self_attn.keys_values(h)  # [B, h, S, d] x2
        x = x + self.dropout(self.self_attn(h, k.transpose(-1, -2), v, mask)[0])  # [B, S, D]
        return x + self.dropout(self.ff(self.ff_norm(x)))  # [B, S, D]


class DecoderLayer(nn.Module):
    """x + SelfAttention(LN(x)) over cached + new positions, x + CrossAttention(LN(x)), x + FeedForward(LN(x))."""

    def __init__(self, d_model: int, n_heads: int, ff_size: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.self_attn_norm, self.cross_attn_norm, self.ff_norm = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, attention_dropout)
        self.ff = FeedForward(d_model, ff_size)
        self.dropout = Dropout(dropout)

    def forward(
        self, x: torch.Tensor, cache: Optional[tuple[torch.Tensor, torch.Tensor, int]],
        cross_kv: tuple[torch.Tensor, torch.Tensor], self_mask: Optional[torch.Tensor], src_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run T new positions after t cached ones.

        Args:
            x: [B, T, D];
            cache: None (teacher forcing: no earlier positions), or key and value buffers
                [capacity, B, h, d] holding t earlier positions, and t; the T new positions are
                written into the buffers after them (capacity >= t + T);
            cross_kv: keys transposed [B, h, d, S] and values [B, h, S, d] of the encoder memory;
            self_mask: [T, t + T] bool (causal) or None (T == 1: everything so far is visible);
            src_mask: [B, 1, 1, S] bool, True on real source tokens.
        Returns:
            x [B, T, D] and the cross-attention weights [B, h, T, S].
        """
        h = self.self_attn_norm(x)  # [B, T, D]
        k, v = self.self_attn.keys_values(h)  # [B, h, T, d] x2
        if cache is not None:
            key_buf, value_buf, t = cache
            n = t + x.size(1)
            key_buf[t:n], value_buf[t:n] = k.permute(2, 0, 1, 3), v.permute(2, 0, 1, 3)  # [T, B, h, d] each
            k, v = key_buf[:n].permute(1, 2, 0, 3), value_buf[:n].permute(1, 2, 0, 3)  # [B, h, t + T, d] x2
        x = x + self.dropout(self.self_attn(h, k.transpose(-1, -2), v, self_mask)[0])  # [B, T, D]
        context, weights = self.cross_attn(self.cross_attn_norm(x), *cross_kv, src_mask)  # [B, T, D], [B, h, T, S]
        x = x + self.dropout(context)  # [B, T, D]
        x = x + self.dropout(self.ff(self.ff_norm(x)))  # [B, T, D]
        return x, weights


class TransformerEncoderOutput(NamedTuple):
    """The encoder memory and, per decoder layer, its cross-attention keys/values (projected once)."""

    memory: torch.Tensor  # [B, S, D] (after the final LayerNorm)
    mask: torch.Tensor  # [B, S] bool, True on real source positions
    cross_keys: tuple[torch.Tensor, ...]  # per decoder layer [B, h, d, S] (transposed, contiguous)
    cross_values: tuple[torch.Tensor, ...]  # per decoder layer [B, h, S, d] (contiguous)

    def index_select(self, index: torch.Tensor) -> "TransformerEncoderOutput":
        """Pick (or repeat) batch rows: index [B'] long -> output with batch size B'."""
        pick = lambda ts: tuple(t.index_select(0, index) for t in ts)  # noqa: E731
        return TransformerEncoderOutput(
            self.memory.index_select(0, index), self.mask.index_select(0, index),
            pick(self.cross_keys), pick(self.cross_values),
        )


class TransformerState(NamedTuple):
    """Self-attention keys/values of the target positions so far, per decoder layer, in buffers with
    room for more: positions [0, length) are filled. Position-major, so that a step writes one
    contiguous block and a reordering gathers whole [h, d] rows.

    Buffers are reused rather than allocated at every step (fresh memory costs more than the copy):
    `decode_step` writes the next position into the buffers in place, and `index_select` writes
    the picked rows into `spare` buffers (those of the state it reordered before), so two sets
    alternate. Hence go on from the state a call returns: after `s2 = s.index_select(i)`, `s`
    stays valid until `s2`, or a state decoded from it, is reordered in turn.
    """

    keys: tuple[torch.Tensor, ...]  # per decoder layer [capacity, B, h, d]
    values: tuple[torch.Tensor, ...]  # per decoder layer [capacity, B, h, d]
    length: int
    spare: Optional[tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]] = None  # like (keys, values)

    def index_select(self, index: torch.Tensor) -> "TransformerState":
        """Pick batch rows: index [B'] long -> state with batch size B' (beam reordering)."""
        n, rows = self.length, index.numel()

        def pick(buf: torch.Tensor, spare: Optional[torch.Tensor]) -> torch.Tensor:
            if spare is None or spare.size(1) < rows or spare.size(0) != buf.size(0):
                spare = buf.new_empty(buf.size(0), rows, *buf.shape[2:])  # [capacity, B', h, d]
            out = spare[:, :rows]
            torch.index_select(buf[:n], 1, index, out=out[:n])  # straight into the buffer
            return out

        spare_keys, spare_values = self.spare or ((None,) * len(self.keys), (None,) * len(self.values))
        return TransformerState(tuple(map(pick, self.keys, spare_keys)), tuple(map(pick, self.values, spare_values)),
                                n, (self.keys, self.values))

    def with_room(self, new: int) -> "TransformerState":
        """This state, or a copy into buffers of twice the capacity while `new` more positions do not fit."""
        capacity = self.keys[0].size(0)
        if self.length + new <= capacity:
            return self
        while capacity < self.length + new:
            capacity *= 2

        def grow(buf: torch.Tensor) -> torch.Tensor:
            out = buf.new_empty(capacity, *buf.shape[1:])  # [capacity, B, h, d]
            out[: self.length] = buf[: self.length]
            return out

        return TransformerState(tuple(map(grow, self.keys)), tuple(map(grow, self.values)), self.length)


class Transformer(nn.Module):
    """Transformer encoder-decoder with the search interface of seq2seq.inference.search.

    Built by Hydra from conf/model/transformer.yaml plus the vocabulary sizes and special ids.
    `dropout` applies to the (position-encoded) embeddings and to every sublayer's output before
    the residual sum; `attention_dropout` to the attention weights.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        d_model: int = 512,  # embedding and model size (even, divisible by n_heads)
        n_heads: int = 8,  # attention heads
        ff_size: int = 2048,  # inner size of the feed-forward blocks
        enc_layers: int = 6,
        dec_layers: int = 6,
        dropout: float = 0.1,  # on embeddings and sublayer outputs
        attention_dropout: float = 0.1,  # on attention weights
        share_embeddings: bool = False,  # one embedding for source and target (equal vocab sizes)
        tie_embeddings: bool = True,  # output layer weight = target embedding
    ):
        super().__init__()
        if d_model % n_heads or d_model % 2:
            raise ValueError(f"d_model={d_model} must be even and divisible by n_heads={n_heads}")
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.d_model, self.n_heads = d_model, n_heads
        self.src_embed, self.tgt_embed = make_embeddings(
            src_vocab_size, tgt_vocab_size, d_model, pad_id, share_embeddings
        )
        layer_args = (d_model, n_heads, ff_size, dropout, attention_dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(*layer_args) for _ in range(enc_layers))
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder_layers = nn.ModuleList(DecoderLayer(*layer_args) for _ in range(dec_layers))
        self.decoder_norm = nn.LayerNorm(d_model)
        self.output_layer = nn.Linear(d_model, tgt_vocab_size, bias=False)
        self.dropout = Dropout(dropout)
        self._init_parameters()
        if tie_embeddings:
            self.output_layer.weight = self.tgt_embed.weight

    def _init_parameters(self) -> None:
        """Xavier-uniform linear weights, zero biases, N(0, 1/d_model) embeddings with zero padding rows."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for embed in (self.src_embed, self.tgt_embed):
            nn.init.normal_(embed.weight, std=self.d_model**-0.5)
            with torch.no_grad():
                embed.weight[self.pad_id].zero_()

    def _embed(self, embed: nn.Embedding, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """tokens [B, T] at positions start..start+T-1 -> dropout(sqrt(D) * embedding + sinusoids) [B, T, D]."""
        positions = torch.arange(start, start + tokens.size(1), device=tokens.device)  # [T]
        return self.dropout(embed(tokens) * math.sqrt(self.d_model) + sinusoids(positions, self.d_model))  # [B, T, D]

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor) -> TransformerEncoderOutput:
        """src [B, S] long (padded), src_lens [B] long -> memory and per-layer cross-attention keys/values."""
        mask = source_mask(src_lens, src.size(1), src.device)  # [B, S]
        x = self._embed(self.src_embed, src)  # [B, S, D]
        for layer in self.encoder_layers:
            x = layer(x, mask[:, None, None, :])  # [B, S, D]
        memory = self.encoder_norm(x)  # [B, S, D]
        kvs = [layer.cross_attn.keys_values(memory) for layer in self.decoder_layers]  # per layer ([B, h, S, d] x2)
        # once per sentence, the layout each decoding step's products read: [B, h, d, S] and [B, h, S, d]
        return TransformerEncoderOutput(memory, mask, tuple(k.transpose(-1, -2).contiguous() for k, _ in kvs),
                                        tuple(v.contiguous() for _, v in kvs))

    def init_state(self, enc: TransformerEncoderOutput) -> TransformerState:
        """Empty self-attention caches (buffers [CACHE_CAPACITY, B, h, d] per layer, length 0)."""
        shape = (CACHE_CAPACITY, enc.memory.size(0), self.n_heads, self.d_model // self.n_heads)
        n = len(self.decoder_layers)
        return TransformerState(tuple(enc.memory.new_empty(shape) for _ in range(n)),
                                tuple(enc.memory.new_empty(shape) for _ in range(n)), 0)

    def _decode(
        self, x: torch.Tensor, state: Optional[TransformerState], enc: TransformerEncoderOutput,
        self_mask: Optional[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, D] embedded new target positions after those of `state` (None: there are none)
        -> logits [B, T, V], the last layer's cross-attention averaged over heads [B, T, S].
        The new positions' keys/values are written into the state's buffers (which must have room)."""
        src_mask = enc.mask[:, None, None, :]  # [B, 1, 1, S]
        for i, layer in enumerate(self.decoder_layers):
            cache = None if state is None else (state.keys[i], state.values[i], state.length)
            x, weights = layer(x, cache, (enc.cross_keys[i], enc.cross_values[i]), self_mask, src_mask)  # [B, T, D]
        logits = self.output_layer(self.decoder_norm(x))  # [B, T, V]
        return logits, weights.mean(dim=1)  # [B, T, V], [B, T, S]

    def decode_step(
        self, prev_tokens: torch.Tensor, state: TransformerState, enc: TransformerEncoderOutput
    ) -> tuple[torch.Tensor, TransformerState, torch.Tensor]:
        """prev_tokens [B] long -> logits [B, V], state with one more cached position, attention [B, S]."""
        state = state.with_room(1)
        x = self._embed(self.tgt_embed, prev_tokens.unsqueeze(1), start=state.length)  # [B, 1, D]
        logits, weights = self._decode(x, state, enc, self_mask=None)  # [B, 1, V], [B, 1, S]
        return logits.squeeze(1), state._replace(length=state.length + 1), weights.squeeze(1)

    def forward(
        self, src: torch.Tensor, src_lens: torch.Tensor, tgt_in: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing, all positions at once under a causal mask.

        Args:
            src: [B, S] long; src_lens: [B] long; tgt_in: [B, T] long, starting with BOS.
        Returns:
            logits [B, T, V] (and the last layer's cross-attention, mean over heads, [B, T, S] if asked).
        """
        enc = self.encode(src, src_lens)
        T = tgt_in.size(1)
        causal = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()  # [T, T] True = may attend
        x = self._embed(self.tgt_embed, tgt_in)  # [B, T, D]
        logits, attention = self._decode(x, None, enc, causal)  # [B, T, V], [B, T, S]
        return (logits, attention) if return_attention else logits
