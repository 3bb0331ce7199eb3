"""The default model (lstm_bahdanau) and its parts: attention masking, packed encoder, teacher forcing
vs stepping, gradients, dropout options. tests/test_models_family.py covers every conf/model/*.yaml."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from model_helpers import BOS, EOS, PAD, V, padded_batch
from omegaconf import OmegaConf

from seq2seq.models import BahdanauAttention, LuongAttention, Seq2Seq

CONF = Path(__file__).resolve().parents[1] / "conf" / "model" / "lstm_bahdanau.yaml"


def make_model(**kw) -> Seq2Seq:
    torch.manual_seed(0)
    sizes = dict(emb_size=16, hidden_size=16, enc_layers=2, dec_layers=2, dropout=0.3) | kw
    return Seq2Seq(src_vocab_size=V, tgt_vocab_size=V, pad_id=PAD, bos_id=BOS, eos_id=EOS, **sizes)


def test_attention_weights_sum_to_one_and_are_zero_on_padding():
    torch.manual_seed(0)
    att = BahdanauAttention(query_size=8, key_size=12, hidden_size=10)
    lens = torch.tensor([5, 2, 3])
    mask = torch.arange(5) < lens.unsqueeze(1)  # [3, 5]
    keys, query = torch.randn(3, 5, 12), torch.randn(3, 8)
    context, weights = att(query, att.compute_proj_keys(keys), keys, mask)
    assert context.shape == (3, 12) and weights.shape == (3, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[~mask] == 0)
    assert torch.all(weights[mask] > 0)
    # Whatever sits in the padded positions cannot reach the context.
    noisy = keys.masked_fill(~mask.unsqueeze(-1), 1e3)  # [3, 5, 12]
    context2, weights2 = att(query, att.compute_proj_keys(noisy), noisy, mask)
    torch.testing.assert_close(context2, context)
    torch.testing.assert_close(weights2, weights)


@pytest.mark.parametrize("kind, Q", [("bahdanau", 8), ("general", 8), ("dot", 12)])
def test_attention_over_all_positions_equals_one_query_at_a_time(kind, Q):
    torch.manual_seed(0)
    att = BahdanauAttention(Q, 12, 10) if kind == "bahdanau" else LuongAttention(Q, 12, kind)
    mask = torch.arange(5) < torch.tensor([5, 2, 3]).unsqueeze(1)  # [3, 5]
    keys, queries = torch.randn(3, 5, 12), torch.randn(3, 4, Q)  # [B, S, K], [B, T, Q]
    proj_keys = att.compute_proj_keys(keys)
    context, weights = att(queries, proj_keys, keys, mask)  # [B, T, K], [B, T, S]
    assert context.shape == (3, 4, 12) and weights.shape == (3, 4, 5)
    assert torch.all(weights.masked_select(~mask.unsqueeze(1)) == 0)
    for t in range(4):
        one_context, one_weights = att(queries[:, t], proj_keys, keys, mask)  # [B, K], [B, S]
        torch.testing.assert_close(one_context, context[:, t])
        torch.testing.assert_close(one_weights, weights[:, t])


def test_encoder_padded_batch_equals_each_sentence_alone():
    model = make_model().eval()
    src, lens = padded_batch([6, 2, 4, 1])
    with torch.no_grad():
        enc = model.encode(src, lens)
        assert enc.memory.shape == (4, 6, 32) and enc.final.shape == (4, 32)
        assert torch.all(enc.memory[~enc.mask] == 0)
        for i, n in enumerate(lens.tolist()):
            alone = model.encode(src[i : i + 1, :n], lens[i : i + 1])
            torch.testing.assert_close(enc.memory[i, :n], alone.memory[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(enc.final[i], alone.final[0], atol=1e-6, rtol=0)


def test_forward_shapes_and_attention():
    model = make_model()
    src, lens = padded_batch([5, 3, 4])
    tgt_in = torch.randint(3, V, (3, 7))  # [B, T]
    tgt_in[:, 0] = BOS
    logits, attention = model(src, lens, tgt_in, return_attention=True)
    assert logits.shape == (3, 7, V)
    assert attention.shape == (3, 7, 5)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 7))
    assert torch.all(attention[1, :, 3:] == 0)


def test_padded_target_positions_do_not_change_earlier_logits():
    model = make_model().eval()
    src, lens = padded_batch([5, 3])
    tgt_in = torch.randint(3, V, (2, 6))  # [B, T]
    tgt_in[:, 0] = BOS
    changed = tgt_in.clone()
    changed[:, 4:] = PAD
    with torch.no_grad():
        a, b = model(src, lens, tgt_in), model(src, lens, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=0, rtol=0)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_teacher_forcing_equals_stepping_decode_step():
    model = make_model().eval()
    src, lens = padded_batch([5, 3, 4])
    tgt_in = torch.randint(3, V, (3, 6))  # [B, T]
    tgt_in[:, 0] = BOS
    with torch.no_grad():
        logits = model(src, lens, tgt_in)
        enc = model.encode(src, lens)
        state = model.init_state(enc)
        for t in range(tgt_in.size(1)):
            step_logits, state, attn = model.decode_step(tgt_in[:, t], state, enc)
            torch.testing.assert_close(step_logits, logits[:, t], atol=1e-6, rtol=0)
            assert attn.shape == (3, 5)


def test_reordering_state_and_encoder_output_follows_the_index():
    model = make_model().eval()
    src, lens = padded_batch([5, 3, 4])
    index, prev = torch.tensor([2, 2, 0]), torch.full((3,), 5)
    with torch.no_grad():
        enc = model.encode(src, lens)
        state = model.init_state(enc)
        logits, state, _ = model.decode_step(torch.full((3,), BOS), state, enc)
        reordered, _, _ = model.decode_step(prev, state.index_select(index), enc.index_select(index))
        direct, _, _ = model.decode_step(prev, state, enc)
    torch.testing.assert_close(reordered[:2], direct[[2, 2]])
    torch.testing.assert_close(reordered[2], direct[0])
    assert not torch.allclose(reordered[1], direct[1])


def test_all_parameters_get_gradients():
    model = make_model()
    src, lens = padded_batch([5, 3, 4])
    tgt_in = torch.randint(3, V, (3, 6))  # [B, T]
    tgt_in[:, 0] = BOS
    model(src, lens, tgt_in).logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.all(model.src_embed.weight.grad[PAD] == 0)


def test_init_is_seeded_and_sets_forget_gate_bias():
    a, b = make_model(), make_model()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    H = 16
    assert torch.all(a.decoder.rnn.bias_ih_l0[H : 2 * H] == 1)
    assert torch.all(a.decoder.rnn.bias_ih_l0[:H] == 0)
    assert torch.all(a.tgt_embed.weight[PAD] == 0)


def test_built_by_hydra_from_the_model_config():
    cfg = OmegaConf.load(CONF)
    cfg.emb_size, cfg.hidden_size = 8, 8
    model = instantiate(cfg, src_vocab_size=V, tgt_vocab_size=V + 1, pad_id=PAD, bos_id=BOS, eos_id=EOS)
    assert isinstance(model, Seq2Seq)
    assert (model.pad_id, model.bos_id, model.eos_id) == (PAD, BOS, EOS)
    src, lens = padded_batch([4, 2])
    assert model(src, lens, torch.full((2, 3), BOS)).shape == (2, 3, V + 1)


@pytest.mark.parametrize("enc_layers,dec_layers", [(1, 1), (1, 3)])
def test_layer_counts(enc_layers, dec_layers):
    model = make_model(enc_layers=enc_layers, dec_layers=dec_layers)
    src, lens = padded_batch([4, 2])
    state = model.init_state(model.encode(src, lens))
    assert state.hidden.shape == state.cell.shape == (dec_layers, 2, 16)
    assert torch.all(state.cell == 0)


def test_vocabulary_projection_runs_once_per_forward():
    """Teacher forcing steps through the recurrence only; all T positions are projected at once."""
    model = make_model()
    calls = []
    model.decoder.output_layer.register_forward_hook(lambda module, args, out: calls.append(tuple(out.shape)))
    src, lens = padded_batch([4, 2])
    model(src, lens, torch.full((2, 5), BOS))
    assert calls == [(2, 5, V)]


def test_dropout_options_default_to_dropout():
    model = make_model(dropout=0.3)
    assert model.emb_dropout.p == model.decoder.dropout.p == 0.3
    assert model.encoder.rnn.dropout == model.decoder.rnn.dropout == 0.3
    model = make_model(dropout=0.3, emb_dropout=0.1, hidden_dropout=0.2)
    assert (model.emb_dropout.p, model.decoder.dropout.p) == (0.1, 0.3)
    assert model.encoder.rnn.dropout == model.decoder.rnn.dropout == 0.2
