"""Greedy and beam search: beam 1 == greedy, batching is invisible, limits, length penalty, learning
(every model; tests/test_models_family.py checks the search properties for every model too)."""

from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from model_helpers import BOS, CONF_DIR, EOS, LENGTHS, NAMES, PAD, V, build, padded_batch
from omegaconf import OmegaConf

from seq2seq.inference.search import beam_search, gnmt_penalty, greedy_search, never_pad_or_bos
from seq2seq.models import Seq2Seq


def make_model(eos_bias: float = 1.5, **kw) -> Seq2Seq:
    """A seeded random model, sharpened so outputs vary; eos_bias makes some end before their limit."""
    torch.manual_seed(0)
    sizes = dict(emb_size=16, hidden_size=16, dropout=0.1) | kw
    model = Seq2Seq(V, V, PAD, BOS, EOS, **sizes).eval()
    with torch.no_grad():
        model.decoder.output_layer.weight.mul_(20)
        model.decoder.output_layer.bias[EOS] = eos_bias
    return model


@torch.no_grad()
def test_greedy_outputs_mix_eos_and_length_limits():
    """Guards the fixture: the other tests only mean something if both stopping rules occur."""
    src, lens = padded_batch(LENGTHS)
    hyps = greedy_search(make_model(), src, lens, max_len_a=1.5, max_len_b=5)
    limits = [int(1.5 * n + 5) for n in LENGTHS]
    assert any(len(h) == n for h, n in zip(hyps, limits))
    assert any(0 < len(h) < n for h, n in zip(hyps, limits))
    assert all(EOS not in h and BOS not in h for h in hyps)


@torch.no_grad()
@pytest.mark.parametrize("eos_bias", [0.0, 1.5, 2.0])
def test_beam_size_one_equals_greedy(eos_bias):
    model = make_model(eos_bias)
    src, lens = padded_batch(LENGTHS)
    greedy = greedy_search(model, src, lens, 1.5, 5)
    beam = beam_search(model, src, lens, beam_size=1, length_penalty=1.0, max_len_a=1.5, max_len_b=5)
    assert [nbest[0][0] for nbest in beam] == greedy


@torch.no_grad()
def test_batch_decoded_together_equals_each_sentence_alone():
    model = make_model()
    src, lens = padded_batch(LENGTHS)
    greedy = greedy_search(model, src, lens, 1.5, 5)
    beam = beam_search(model, src, lens, 3, 1.0, 1.5, 5, n_best=2)
    for i, n in enumerate(LENGTHS):
        one, one_len = src[i : i + 1, :n], lens[i : i + 1]
        assert greedy_search(model, one, one_len, 1.5, 5) == [greedy[i]]
        (alone,) = beam_search(model, one, one_len, 3, 1.0, 1.5, 5, n_best=2)
        assert [h for h, _ in alone] == [h for h, _ in beam[i]]
        assert [s for _, s in alone] == pytest.approx([s for _, s in beam[i]], abs=1e-5)


@torch.no_grad()
def test_nbest_lists_are_sorted_and_scored():
    model = make_model()
    src, lens = padded_batch(LENGTHS)
    for nbest in beam_search(model, src, lens, beam_size=5, length_penalty=1.0, max_len_b=5, n_best=4):
        assert len(nbest) == 4
        scores = [s for _, s in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h) for h, _ in nbest}) == 4
    # The score is the summed log-prob of the tokens (and EOS) under the model, over the GNMT
    # penalty; PAD and BOS are never possible outputs, so they are out of the distribution.
    tokens, score = beam_search(model, src[:1], lens[:1], 3, 1.0, 1.5, 5)[0][0]
    tgt_in = torch.tensor([[BOS] + tokens])  # [1, T]
    logits = model(src[:1], lens[:1], tgt_in)[0]  # [T, V]
    log_probs = F.log_softmax(never_pad_or_bos(model, logits), dim=-1)  # [T, V]
    gold = tokens + [EOS] if len(tokens) < int(1.5 * LENGTHS[0] + 5) else tokens
    total = log_probs[torch.arange(len(gold)), gold].sum().item()
    assert score == pytest.approx(total / gnmt_penalty(len(gold), 1.0), abs=1e-4)


@torch.no_grad()
def test_max_length_is_per_sentence():
    model = make_model(eos_bias=-1e4)  # never ends by itself
    src, lens = padded_batch(LENGTHS)
    limits = [int(1.0 * n + 2) for n in LENGTHS]
    assert [len(h) for h in greedy_search(model, src, lens, max_len_a=1.0, max_len_b=2)] == limits
    beam = beam_search(model, src, lens, beam_size=3, max_len_a=1.0, max_len_b=2, n_best=3)
    assert [[len(h) for h, _ in nbest] for nbest in beam] == [[n] * 3 for n in limits]


class Rows(NamedTuple):
    """A tensor whose batch rows search can pick, as it does the models' encoder outputs and states."""

    rows: torch.Tensor  # [B, ...]

    def index_select(self, index: torch.Tensor) -> "Rows":
        return Rows(self.rows.index_select(0, index))


class BigramModel:
    """Fake model with the search interface: log P(next | previous token) comes from a fixed table.

    By default, from BOS: "a" (p .5) then EOS (p .8), log P = -0.92 over 2 tokens; or "b1 b2 b3"
    (p .45, .99, .99) then EOS (p .55), log P = -1.42 over 4 tokens. Filler "z" soaks up the rest.
    """

    pad_id, bos_id, eos_id = 0, 1, 2
    A, B1, B2, B3, Z = 3, 4, 5, 6, 7

    def __init__(self, p_a: float = 0.5, p_a_eos: float = 0.8, p_b1: float = 0.45, p_b3_eos: float = 0.55):
        probs = torch.full((8, 8), 1e-9)  # [prev, next]
        probs[self.bos_id, [self.A, self.B1, self.Z]] = torch.tensor([p_a, p_b1, 1 - p_a - p_b1])
        probs[self.A, [self.eos_id, self.Z]] = torch.tensor([p_a_eos, 1 - p_a_eos])
        probs[self.B1, [self.B2, self.Z]] = torch.tensor([0.99, 0.01])
        probs[self.B2, [self.B3, self.Z]] = torch.tensor([0.99, 0.01])
        probs[self.B3, [self.eos_id, self.Z]] = torch.tensor([p_b3_eos, 1 - p_b3_eos])
        probs[self.Z, [self.eos_id, self.Z]] = torch.tensor([0.7, 0.3])
        probs[[self.pad_id, self.eos_id]] = 1.0
        self.log_probs = (probs / probs.sum(-1, keepdim=True)).log()  # [8, 8]

    def encode(self, src, src_lens):
        return Rows(src)  # [B, S]

    def init_state(self, enc):
        return Rows(torch.zeros(enc.rows.size(0)))  # [B]

    def decode_step(self, prev_tokens, state, enc):
        return self.log_probs[prev_tokens], state, torch.ones_like(enc.rows, dtype=torch.float)  # [B, V], [B], [B, S]


def test_length_penalty_favours_longer_hypotheses_as_alpha_grows():
    model, src, lens = BigramModel(), torch.full((1, 5), 3), torch.tensor([5])
    short, long_ = [BigramModel.A], [BigramModel.B1, BigramModel.B2, BigramModel.B3]
    assert greedy_search(model, src, lens) == [short]
    (plain,) = beam_search(model, src, lens, beam_size=2, length_penalty=0.0, n_best=2)
    assert [h for h, _ in plain] == [short, long_]
    assert plain[0][1] == pytest.approx(torch.tensor(0.5 * 0.8).log().item(), abs=1e-4)
    (penalised,) = beam_search(model, src, lens, beam_size=2, length_penalty=2.0, n_best=2)
    assert [h for h, _ in penalised] == [long_, short]
    assert penalised[1][1] == pytest.approx(plain[0][1] / gnmt_penalty(2, 2.0))


def test_the_penalised_winner_is_found_after_a_shorter_hypothesis_leads():
    """"a EOS" (log P -0.62) finishes at step 2 while leading every live hypothesis by raw log P;
    "b1 b2 b3 EOS" (log P -1.18) finishes at step 4 and wins once alpha is large enough. Ending
    the search when the raw leader is EOS would return "a" whatever alpha is. (Outputs of at most
    6 tokens: with a long limit and alpha 4, a long run of filler would win, as it should.)"""
    model, src, lens = BigramModel(p_a=0.6, p_a_eos=0.9, p_b1=0.35, p_b3_eos=0.9), torch.full((1, 5), 3), torch.tensor([5])
    short, long_ = [BigramModel.A], [BigramModel.B1, BigramModel.B2, BigramModel.B3]
    log_p = {tuple(short): torch.tensor(0.6 * 0.9).log().item(), tuple(long_): torch.tensor(0.35 * 0.99 * 0.99 * 0.9).log().item()}
    for alpha in (0.0, 1.0, 2.0, 4.0):
        winner = max(log_p, key=lambda h: log_p[h] / gnmt_penalty(len(h) + 1, alpha))
        for K in (2, 3):
            ((best,),) = beam_search(model, src, lens, beam_size=K, length_penalty=alpha, max_len_a=0, max_len_b=6)
            tokens, score = best
            assert tokens == list(winner), (alpha, K)
            assert score == pytest.approx(log_p[winner] / gnmt_penalty(len(winner) + 1, alpha), abs=1e-5)
    assert max(log_p, key=lambda h: log_p[h] / gnmt_penalty(len(h) + 1, 4.0)) == tuple(long_)  # the case occurs
    assert greedy_search(model, src, lens, max_len_a=0, max_len_b=6) == [short]
    beam1 = beam_search(model, src, lens, beam_size=1, length_penalty=4.0, max_len_a=0, max_len_b=6)
    assert [n[0][0] for n in beam1] == [short]  # beam 1 is greedy


def test_search_ends_early_only_when_no_live_hypothesis_can_win():
    from seq2seq.inference.search import best_reachable

    # log P only falls and the penalty grows: the best a live hypothesis can reach is at the limit
    assert best_reachable(-2.0, 3, 10, 1.0) == pytest.approx(-2.0 / gnmt_penalty(10, 1.0))
    assert best_reachable(-2.0, 3, 10, 0.0) == -2.0
    assert best_reachable(-2.0, 3, 10, -1.0) == pytest.approx(-2.0 / gnmt_penalty(3, -1.0))  # a penalty that shrinks


@pytest.mark.parametrize("name", NAMES)
def test_trained_model_reproduces_reversed_sequences(name):
    """Every conf/model/*.yaml (one layer, size 32, no dropout) learns to reverse 20 short random
    sequences; greedy and beam search then reproduce them exactly."""
    small = dict(emb_size=32, hidden_size=32, channels=32, d_model=32, ff_size=64, enc_layers=1, dec_layers=1,
                 dropout=0.0, emb_dropout=0.0, hidden_dropout=0.0, attention_dropout=0.0)
    keys = OmegaConf.load(CONF_DIR / f"{name}.yaml").keys()
    model = build(name, **{k: v for k, v in small.items() if k in keys})
    lengths = torch.randint(3, 7, (20,)).tolist()
    src, lens = padded_batch(lengths, seed=2)
    targets = [src[i, :n].flip(0).tolist() for i, n in enumerate(lengths)]
    T = max(lengths) + 1
    tgt_in = torch.tensor([[BOS] + t + [PAD] * (T - 1 - len(t)) for t in targets])  # [B, T]
    tgt_out = torch.tensor([t + [EOS] + [PAD] * (T - 1 - len(t)) for t in targets])  # [B, T]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        logits = model(src, lens, tgt_in)  # [B, T, V]
        loss = F.cross_entropy(logits.view(-1, V), tgt_out.view(-1), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert greedy_search(model, src, lens, 1.0, 2) == targets
        assert [nbest[0][0] for nbest in beam_search(model, src, lens, 5, 1.0, 1.0, 2)] == targets
