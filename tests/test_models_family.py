"""Every conf/model/*.yaml: config check, shapes, teacher forcing == stepping, padding, search, gradients;
then what is specific to each model (Luong scores, GRU/RNN state, CNN masking, no attention,
Transformer causality and caches, shared/tied embeddings)."""

import pytest
import torch
import torch.nn as nn
from hydra.errors import InstantiationException
from model_helpers import BOS, CONF_DIR, LENGTHS, NAMES, V, build, output_layer, padded_batch, target
from omegaconf import OmegaConf

from seq2seq.errors import ConfigError
from seq2seq.inference.search import beam_search, greedy_search
from seq2seq.models import ConvSeq2Seq, Seq2Seq, Transformer
from seq2seq.models.builder import check_model
from seq2seq.models.transformer import CACHE_CAPACITY


def build_error(name: str, **overrides) -> str:
    """The message of the ValueError that building the model raises (Hydra wraps it)."""
    with pytest.raises(InstantiationException) as info:
        build(name, **overrides)
    assert isinstance(info.value.__cause__, ValueError)
    return str(info.value.__cause__)


def step_through(model: nn.Module, src: torch.Tensor, lens: torch.Tensor, tgt_in: torch.Tensor):
    """Feed tgt_in token by token through decode_step: logits [B, T, V], attention [B, T, S]."""
    enc = model.encode(src, lens)
    state = model.init_state(enc)
    logits, attention = [], []
    for t in range(tgt_in.size(1)):
        step_logits, state, weights = model.decode_step(tgt_in[:, t], state, enc)
        logits.append(step_logits)
        attention.append(weights)
    return torch.stack(logits, 1), torch.stack(attention, 1)


# --- every model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_yaml_passes_the_config_check_as_is(name):
    check_model(OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{name}.yaml"), resolve=True), source=name)


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_and_attention(name):
    model = build(name)
    src, lens = padded_batch([5, 3, 4])
    logits, attention = model(src, lens, target(3, 6), return_attention=True)
    assert logits.shape == (3, 6, V) and attention.shape == (3, 6, 5)
    assert model(src, lens, target(3, 6)).shape == (3, 6, V)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 6))
    assert torch.all(attention[:, :, 4][lens < 5] == 0)  # padding gets no attention


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_teacher_forcing_equals_stepping_decode_step(name):
    model = build(name).eval()
    src, lens = padded_batch([5, 3, 4])
    tgt_in = target(3, 7)
    logits, attention = model(src, lens, tgt_in, return_attention=True)
    step_logits, step_attention = step_through(model, src, lens, tgt_in)
    torch.testing.assert_close(step_logits, logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(step_attention, attention, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_padded_batch_equals_each_sentence_alone(name):
    model = build(name).eval()
    src, lens = padded_batch(LENGTHS)
    tgt_in = target(len(LENGTHS), 5)
    logits, attention = model(src, lens, tgt_in, return_attention=True)
    for i, n in enumerate(LENGTHS):
        alone, alone_attention = model(src[i : i + 1, :n], lens[i : i + 1], tgt_in[i : i + 1], return_attention=True)
        torch.testing.assert_close(logits[i], alone[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(attention[i, :, :n], alone_attention[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_extra_padding_columns_change_no_real_position(name):
    """trainer.pad_multiple pads source and target beyond the longest sentence: the logits of the
    real target positions stay what they were."""
    model = build(name).eval()
    src, lens = padded_batch(LENGTHS)
    tgt_in = target(len(LENGTHS), 5)
    logits = model(src, lens, tgt_in)
    wider = model(nn.functional.pad(src, (0, 3)), lens, nn.functional.pad(tgt_in, (0, 3)))  # PAD is 0
    torch.testing.assert_close(wider[:, :5], logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    model = build(name)
    src, lens = padded_batch([5, 3, 4])
    model(src, lens, target(3, 6)).logsumexp(-1).sum().backward()
    for param_name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, param_name


def search_model(name: str) -> nn.Module:
    """A random model in eval mode whose untied output layer is sharpened, so that outputs vary."""
    tie = {"tie_embeddings": False} if "tie_embeddings" in OmegaConf.load(CONF_DIR / f"{name}.yaml") else {}
    model = build(name, **tie).eval()
    with torch.no_grad():
        output_layer(model).weight.mul_(10)
    return model


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_search_beam_one_is_greedy_and_batching_is_invisible(name):
    model = search_model(name)
    src, lens = padded_batch(LENGTHS)
    greedy = greedy_search(model, src, lens, 1.5, 3)
    assert len({tuple(h) for h in greedy}) > 1  # guards the fixture: outputs depend on the source
    beam1 = beam_search(model, src, lens, beam_size=1, max_len_a=1.5, max_len_b=3)
    assert [nbest[0][0] for nbest in beam1] == greedy
    beam3 = beam_search(model, src, lens, 3, 1.0, 1.5, 3, n_best=3)
    for i, n in enumerate(LENGTHS):
        one, one_len = src[i : i + 1, :n], lens[i : i + 1]
        assert greedy_search(model, one, one_len, 1.5, 3) == [greedy[i]]
        (alone,) = beam_search(model, one, one_len, 3, 1.0, 1.5, 3, n_best=3)
        assert [h for h, _ in alone] == [h for h, _ in beam3[i]]
        assert [s for _, s in alone] == pytest.approx([s for _, s in beam3[i]], abs=1e-5)
    for nbest in beam3:
        scores = [s for _, s in nbest]
        assert len(nbest) == 3 and scores == sorted(scores, reverse=True)
        assert len({tuple(h) for h, _ in nbest}) == 3


# --- model-specific ------------------------------------------------------------------------------


@torch.no_grad()
def test_luong_general_and_dot_both_work():
    src, lens = padded_batch([5, 3, 4])
    general = build("lstm_luong", attention="luong_general").eval()
    dot = build("lstm_luong", attention="luong_dot").eval()
    assert isinstance(general.decoder.attention.key_layer, nn.Linear)
    assert not list(dot.decoder.attention.parameters())  # the dot score has no parameters
    for model in (general, dot):
        assert not model.decoder.input_feeding and model.decoder.rnn.input_size == 16  # embedding only
        logits = model(src, lens, target(3, 5))
        torch.testing.assert_close(step_through(model, src, lens, target(3, 5))[0], logits, atol=1e-5, rtol=0)
    assert not torch.allclose(general(src, lens, target(3, 5)), dot(src, lens, target(3, 5)))
    assert "enc_hidden_size=8" in build_error("lstm_luong", attention="luong_dot", enc_hidden_size=16)  # 32 != 16


@torch.no_grad()
def test_luong_with_input_feeding_steps_through_the_attentional_vector():
    model = build("lstm_luong", input_feeding=True).eval()
    assert model.decoder.rnn.input_size == 16 + 16
    src, lens = padded_batch([5, 3])
    logits = model(src, lens, target(2, 5))
    torch.testing.assert_close(step_through(model, src, lens, target(2, 5))[0], logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name, rnn", [("gru", nn.GRU), ("rnn", nn.RNN), ("lstm_bahdanau", nn.LSTM)])
@torch.no_grad()
def test_rnn_cells_and_their_state(name, rnn):
    model = build(name).eval()
    assert type(model.encoder.rnn) is rnn and type(model.decoder.rnn) is rnn
    src, lens = padded_batch([5, 3, 4])
    enc = model.encode(src, lens)
    state = model.init_state(enc)
    assert state.hidden.shape == (2, 3, 16)  # [dec_layers, B, H]
    assert (state.cell is None) == (rnn is not nn.LSTM)
    _, state, _ = model.decode_step(torch.full((3,), BOS), state, enc)
    assert (state.cell is None) == (rnn is not nn.LSTM)
    index = torch.tensor([2, 0])
    reordered = state.index_select(index)
    torch.testing.assert_close(reordered.hidden, state.hidden[:, index])
    assert (reordered.cell is None) == (rnn is not nn.LSTM)


def test_unknown_cell_or_attention_is_rejected_with_the_key_named():
    for key, value in (("cell", "lstmx"), ("attention", "additive")):
        cfg = OmegaConf.load(CONF_DIR / "lstm_bahdanau.yaml")
        cfg[key] = value
        with pytest.raises(ConfigError, match=key):
            check_model(OmegaConf.to_container(cfg, resolve=True))


@torch.no_grad()
def test_cnn_padding_never_leaks_into_real_positions():
    model = build("cnn").eval()
    src, lens = padded_batch([6, 2, 4])
    enc = model.encode(src, lens)
    assert torch.all(enc.memory[~enc.mask] == 0)
    torch.testing.assert_close(enc.final, enc.memory.sum(1) / lens.unsqueeze(1))  # masked mean
    noisy = src.masked_fill(~enc.mask, 7)  # real tokens where the padding was
    noisy_enc = model.encode(noisy, lens)
    torch.testing.assert_close(noisy_enc.memory, enc.memory, atol=1e-6, rtol=0)
    assert not torch.allclose(model.encode(noisy, torch.tensor([6, 6, 6])).memory[1, :2], enc.memory[1, :2])
    assert "kernel_size=4" in build_error("cnn", kernel_size=4)


@torch.no_grad()
def test_no_attention_reads_the_source_only_through_the_summary():
    model = build("no_attention").eval()
    assert model.decoder.attention is None
    src_a, lens = padded_batch([5, 3, 4], seed=1)
    src_b, _ = padded_batch([5, 3, 4], seed=3)
    enc_a, enc_b = model.encode(src_a, lens), model.encode(src_b, lens)
    mixed = enc_a._replace(final=enc_b.final)  # a's memory, b's summary
    tgt_in = target(3, 4)
    logits_b, attention = step_through(model, src_b, lens, tgt_in)
    state = model.init_state(mixed)
    for t in range(4):
        logits, state, weights = model.decode_step(tgt_in[:, t], state, mixed)
        torch.testing.assert_close(logits, logits_b[:, t], atol=1e-6, rtol=0)
    torch.testing.assert_close(attention[:, 0], enc_a.mask.float() / lens.unsqueeze(1))  # uniform over real tokens
    assert not torch.allclose(logits_b, step_through(model, src_a, lens, tgt_in)[0])


@torch.no_grad()
def test_transformer_decoder_is_causal():
    model = build("transformer").eval()
    src, lens = padded_batch([5, 3, 4])
    tgt_in = target(3, 7)
    logits = model(src, lens, tgt_in)
    for t in range(6):
        changed = tgt_in.clone()
        changed[:, t + 1 :] = torch.randint(3, V, (3, 6 - t))
        torch.testing.assert_close(model(src, lens, changed)[:, : t + 1], logits[:, : t + 1], atol=1e-5, rtol=0)
    changed = tgt_in.clone()
    changed[:, 3] = (changed[:, 3] + 1 - 3) % (V - 3) + 3
    assert not torch.allclose(model(src, lens, changed)[:, 3:], logits[:, 3:])


@torch.no_grad()
def test_transformer_caches_grow_by_one_position_and_follow_reordering():
    model = build("transformer").eval()
    src, lens = padded_batch([5, 3, 4])
    enc = model.encode(src, lens)
    state = model.init_state(enc)
    for t in range(3):
        _, state, _ = model.decode_step(torch.full((3,), BOS + t), state, enc)
        assert state.length == t + 1 and len(state.keys) == 2
        assert all(k.shape == (CACHE_CAPACITY, 3, 2, 8) for k in state.keys + state.values)  # [capacity, B, h, d]
    index = torch.tensor([2, 2, 0])
    prev = torch.full((3,), 5)
    reordered_state, reordered_enc = state.index_select(index), enc.index_select(index)
    for k, r in zip(state.keys + state.values, reordered_state.keys + reordered_state.values):
        torch.testing.assert_close(r[:3], k[:3, index], atol=0, rtol=0)
    reordered, _, _ = model.decode_step(prev, reordered_state, reordered_enc)
    direct, _, _ = model.decode_step(prev, state, enc)
    torch.testing.assert_close(reordered, direct[index], atol=1e-6, rtol=0)


@torch.no_grad()
def test_transformer_cache_keeps_every_position_through_growth_and_repeated_reordering():
    """Stepping past the first buffer's capacity, with reorderings (repeated rows, dropped rows) that
    alternate the two sets of buffers, gives each row the logits teacher forcing gives its history."""
    model = build("transformer").eval()
    src, lens = padded_batch([5, 3, 4])
    T = CACHE_CAPACITY + 9
    tgt_in = torch.cat([torch.full((3, 1), BOS), torch.randint(3, V, (3, T - 1), generator=torch.Generator().manual_seed(0))], 1)
    full = model(src, lens, tgt_in)  # [3, T, V]
    reorders = {3: [2, 2, 0], 10: [1, 0, 2], 17: [0, 2, 1], 30: [2, 0], CACHE_CAPACITY + 4: [1, 1]}
    enc = model.encode(src, lens)
    state, rows = model.init_state(enc), torch.arange(3)  # rows: the sentence (and history) each row follows
    for t in range(T):
        if t in reorders:
            index = torch.tensor(reorders[t])
            state, enc, rows = state.index_select(index), enc.index_select(index), rows[index]
        logits, state, _ = model.decode_step(tgt_in[rows, t], state, enc)
        torch.testing.assert_close(logits, full[rows, t], atol=1e-5, rtol=0)
    assert state.length == T and state.keys[0].size(0) == 2 * CACHE_CAPACITY


def test_shared_and_tied_embeddings_are_one_parameter():
    rnn = build("lstm_bahdanau", share_embeddings=True, tie_embeddings=True)
    assert rnn.src_embed.weight is rnn.tgt_embed.weight is rnn.decoder.output_layer.weight
    assert isinstance(rnn.decoder.embed_proj, nn.Identity)  # emb_size == hidden_size
    projected = build("lstm_bahdanau", emb_size=8, tie_embeddings=True)  # 16-wide attentional vector, 8-wide embedding
    assert projected.decoder.output_layer.weight is projected.tgt_embed.weight
    assert projected.decoder.embed_proj.weight.shape == (8, 16)
    src, lens = padded_batch([5, 3])
    assert projected(src, lens, target(2, 4)).shape == (2, 4, V)
    transformer = build("transformer")  # the yaml shares and ties
    assert transformer.src_embed.weight is transformer.tgt_embed.weight is transformer.output_layer.weight
    untied = build("transformer", share_embeddings=False, tie_embeddings=False)
    assert len({id(p) for p in (untied.src_embed.weight, untied.tgt_embed.weight, untied.output_layer.weight)}) == 3


@pytest.mark.parametrize("name", NAMES)
def test_sharing_embeddings_needs_equal_vocabularies(name):
    assert "share_embeddings" in build_error(name, src_vocab_size=V, tgt_vocab_size=V + 1, share_embeddings=True)
    model = build(name, src_vocab_size=V, tgt_vocab_size=V + 1, share_embeddings=False)
    src, lens = padded_batch([4, 2])
    assert model(src, lens, target(2, 3)).shape == (2, 3, V + 1)


def test_classes_are_exported():
    assert {type(build(name)) for name in NAMES} == {Seq2Seq, ConvSeq2Seq, Transformer}
