"""Batched greedy and beam search.

Works with any model exposing `encode(src, src_lens)`, `init_state(enc)`,
`decode_step(prev_tokens [B], state, enc) -> (logits [B, V], state, attn [B, S])` and `pad_id` /
`bos_id` / `eos_id`, whose encoder output and decoder state have `index_select(index [B'])`, picking
(or repeating) batch rows, for beam reordering.
Callers put the model in eval mode and wrap the call in `torch.no_grad()`; the search may change
the logits `decode_step` returns in place. Both searches drop finished sentences from the batch, so
a step only computes the sentences (or beams) still being decoded.

Lengths: a sentence of n source tokens gets at most max(1, int(a * n + b)) output tokens,
EOS included. Returned token lists hold neither BOS nor EOS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def max_length(n: int, max_len_a: float, max_len_b: float) -> int:
    """The output limit of a sentence of n source tokens (EOS included): max(1, int(a * n + b))."""
    return max(1, int(max_len_a * n + max_len_b))


def max_lengths(src_lens: torch.Tensor, max_len_a: float, max_len_b: float) -> list[int]:
    """Per-sentence output limits: src_lens [B] -> [max_length(n) for each n]."""
    return [max_length(n, max_len_a, max_len_b) for n in src_lens.tolist()]


def gnmt_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + length) / 6) ** alpha; a hypothesis scores log P / penalty."""
    return ((5.0 + length) / 6.0) ** alpha


def best_reachable(log_prob: float, shortest: int, limit: int, alpha: float) -> float:
    """The best penalised score a live hypothesis with summed log-prob `log_prob` (<= 0) can still
    reach when it finishes at a length in [shortest, limit]: more tokens only lower log P, and
    the penalty is monotone in the length, so the best is at one end."""
    return max(log_prob / gnmt_penalty(shortest, alpha), log_prob / gnmt_penalty(max(limit, shortest), alpha))


def never_pad_or_bos(model, logits: torch.Tensor) -> torch.Tensor:
    """logits [N, V] with PAD and BOS made impossible, in place: neither may appear inside an output."""
    logits[:, model.pad_id] = float("-inf")
    logits[:, model.bos_id] = float("-inf")
    return logits


def greedy_search(
    model, src: torch.Tensor, src_lens: torch.Tensor, max_len_a: float = 1.5, max_len_b: float = 10
) -> list[list[int]]:
    """Pick the most probable token at every step; a sentence leaves the batch when it emits EOS
    or reaches its length limit, so later steps only compute the sentences still being decoded.

    Args:
        src: [B, S] long, padded; src_lens: [B] long.
    Returns:
        one list of token ids per sentence, without BOS/EOS.
    """
    B = src.size(0)
    limits = max_lengths(src_lens, max_len_a, max_len_b)
    enc = model.encode(src, src_lens)
    state = model.init_state(enc)
    prev = src.new_full((B,), model.bos_id)  # [B']
    alive = list(range(B))  # sentence ids still being decoded, B' of them
    outputs: list[list[int]] = [[] for _ in range(B)]
    for t in range(max(limits)):
        logits, state, _ = model.decode_step(prev, state, enc)  # [B', V]
        prev = never_pad_or_bos(model, logits).argmax(dim=-1)  # [B']
        still = []  # rows of sentences that go on (one host sync per step)
        for i, token in enumerate(prev.tolist()):
            b = alive[i]
            if token != model.eos_id:
                outputs[b].append(token)
                if t + 1 < limits[b]:
                    still.append(i)
        if not still:
            break
        if len(still) < len(alive):  # drop finished sentences from every batched tensor
            index = torch.tensor(still, device=src.device)  # [B'']
            alive = [alive[i] for i in still]
            prev, state, enc = prev.index_select(0, index), state.index_select(index), enc.index_select(index)
    return outputs


def beam_search(
    model,
    src: torch.Tensor,
    src_lens: torch.Tensor,
    beam_size: int = 5,
    length_penalty: float = 1.0,
    max_len_a: float = 1.5,
    max_len_b: float = 10,
    n_best: int = 1,
) -> list[list[tuple[list[int], float]]]:
    """Beam search over all sentences at once (sentences x beams flattened into one batch dim).

    Each step ranks the K * V extensions of a sentence's K live hypotheses by summed log-prob.
    Extensions ending in EOS among the best K are set aside as finished (score = log P / GNMT
    penalty, length counting EOS); the best K others live on. A sentence is done when
      * n_best hypotheses have finished and none of the live ones can still beat the n_best-th
        best of them under the penalty (a live hypothesis' log P only falls, and its penalty is
        at most that of the length limit: best_reachable), so stopping never drops the penalised
        winner among the hypotheses the beam holds; with alpha = 0 this is joeynmt's rule (the
        best extension is EOS), or
      * it reaches its length limit, where the live hypotheses are finished too, or
      * beam_size is 1 and a hypothesis finished: exactly greedy search.
    Neither "the raw leader is EOS" (joeynmt) nor "K hypotheses finished" (fairseq) is safe under
    a penalty: the first drops longer hypotheses that win after it, the second counts poor short
    ones that finish early. Done sentences leave the batch.

    Args:
        src: [B, S] long, padded; src_lens: [B] long.
        length_penalty: GNMT alpha; 0 disables the penalty, larger favours longer outputs.
    Returns:
        per sentence, n_best (tokens without BOS/EOS, score) pairs, best first.
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"need 1 <= n_best ({n_best}) <= beam_size ({beam_size})")
    B, K, device = src.size(0), beam_size, src.device
    limits = max_lengths(src_lens, max_len_a, max_len_b)
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(B)]
    results: list[list[tuple[list[int], float]]] = [[] for _ in range(B)]

    enc = model.encode(src, src_lens)
    enc = enc.index_select(torch.arange(B, device=device).repeat_interleave(K))  # [B * K] rows
    state = model.init_state(enc)
    alive = list(range(B))  # sentence ids still being searched, B' of them
    scores = torch.full((B, K), float("-inf"), device=device)  # [B', K] summed log-probs
    scores[:, 0] = 0.0  # only one live hypothesis (BOS) at the start
    seqs = src.new_empty((B * K, 0))  # [B' * K, t]
    prev = src.new_full((B * K,), model.bos_id)  # [B' * K]

    for t in range(max(limits)):
        logits, state, _ = model.decode_step(prev, state, enc)  # [B' * K, V]
        log_probs = F.log_softmax(never_pad_or_bos(model, logits.float()), dim=-1)  # [B' * K, V]
        V = log_probs.size(-1)
        cand = log_probs.add_(scores.view(-1, 1)).view(len(alive), K * V)  # [B', K * V] (in place)
        top_scores, top_ids = cand.topk(min(2 * K, K * V), dim=1)  # [B', 2K] best first
        top_beam, top_tokens = top_ids // V, top_ids % V  # [B', 2K], [B', 2K]
        is_eos = top_tokens == model.eos_id  # [B', 2K]

        # The best K extensions that do not end in EOS live on (a stable sort keeps their ranking).
        keep = is_eos.long().sort(dim=1, stable=True).indices[:, :K]  # [B', K]
        offsets = torch.arange(len(alive), device=device).unsqueeze(1) * K  # [B', 1]
        rows = (offsets + top_beam.gather(1, keep)).view(-1)  # [B' * K] beam each one extends
        prev = top_tokens.gather(1, keep).view(-1)  # [B' * K]
        scores = top_scores.gather(1, keep)  # [B', K]
        old_seqs, seqs = seqs, torch.cat([seqs[rows], prev.unsqueeze(1)], dim=1)  # [B' * K, t + 1]
        state = state.index_select(rows)

        # Set finished hypotheses aside; decide which sentences are done (one host sync per step).
        penalty = gnmt_penalty(t + 1, length_penalty)
        eos_l, top_l, beam_l = is_eos[:, :K].tolist(), top_scores[:, :K].tolist(), top_beam[:, :K].tolist()
        best_live = scores[:, 0].tolist()  # [B'] the best live summed log-prob (kept in rank order)
        still = []
        for i, b in enumerate(alive):
            for j in range(K):
                if eos_l[i][j] and top_l[i][j] > float("-inf"):
                    finished[b].append((old_seqs[i * K + beam_l[i][j]].tolist(), top_l[i][j] / penalty))
            at_limit = t + 1 >= limits[b]
            if at_limit:  # the live hypotheses are final too
                for j, score in enumerate(scores[i].tolist()):
                    if score > float("-inf"):
                        finished[b].append((seqs[i * K + j].tolist(), score / penalty))
            done = at_limit or (K == 1 and bool(finished[b]))  # beam 1 is greedy: no alternative to keep
            if not done and len(finished[b]) >= n_best:
                nth = sorted((h[1] for h in finished[b]), reverse=True)[n_best - 1]
                done = nth >= best_reachable(best_live[i], t + 2, limits[b], length_penalty)
            if done:
                results[b] = sorted(finished[b], key=lambda h: h[1], reverse=True)[:n_best]
            else:
                still.append(i)
        if not still:
            break
        if len(still) < len(alive):  # drop done sentences from every batched tensor
            index = torch.tensor(still, device=device)  # [B'']
            flat = (index.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1)  # [B'' * K]
            alive = [alive[i] for i in still]
            scores = scores.index_select(0, index)  # [B'', K]
            seqs, prev = seqs.index_select(0, flat), prev.index_select(0, flat)  # [B'' * K, t + 1], [B'' * K]
            state = state.index_select(flat)
            enc = enc.index_select(flat)
    return results
