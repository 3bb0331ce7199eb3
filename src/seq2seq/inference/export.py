"""Export a trained Transformer to CTranslate2, the engine NMT is deployed with on CPUs and GPUs.

    pip install -e ".[ctranslate2]"
    seq2seq export                      # data/train/checkpoints/best.ckpt -> data/export/ctranslate2
    seq2seq export --quantization int8 --out data/export/ctranslate2-int8

The folder holds CTranslate2's model.bin and vocabularies plus this project's two SentencePiece
models (src.model, tgt.model), so it translates on its own (`seq2seq translate --engine
ctranslate2`, or ctranslate2.Translator directly). The conversion goes through CTranslate2's own
Converter and TransformerSpec; only the weight mapping is ours:

  * self-attention q_proj and kv_proj (keys then values) -> one fused qkv projection;
    cross-attention q_proj -> the query projection, kv_proj -> the fused key/value projection;
  * embeddings scaled by sqrt(d_model) plus the interleaved sinusoid table of models/transformer.py;
  * pre-norm layers, a final LayerNorm on both stacks, LayerNorm epsilon as in the model;
  * the source gets EOS appended (as in training), decoding starts with BOS and stops at EOS.

CTranslate2 runs Transformers only: recurrent (LSTM/GRU) and convolutional models are refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from seq2seq.data.sentencepiece import load_sp
from seq2seq.errors import ConfigError, DataError
from seq2seq.inference.ct2 import require_ctranslate2
from seq2seq.inference.translator import load_model
from seq2seq.io import atomic_path
from seq2seq.models.transformer import Transformer, sinusoids
from seq2seq.vocab import BOS_ID, EOS_ID, UNK_ID

MAX_POSITIONS = 2048  # rows of the exported position table: the longest source or output it can handle
QUANTIZATIONS = ("float32", "int8", "int8_float32", "int16", "bfloat16", "int8_bfloat16", "float16", "int8_float16")


def _spec(model: Transformer, src_pieces: list[str], tgt_pieces: list[str]):
    """CTranslate2 TransformerSpec holding `model`'s weights (export has checked that ctranslate2 imports)."""
    from ctranslate2.converters import utils
    from ctranslate2.specs import common_spec, transformer_spec

    spec = transformer_spec.TransformerSpec.from_config(
        (len(model.encoder_layers), len(model.decoder_layers)), model.n_heads, pre_norm=True,
        activation=common_spec.Activation.RELU,
    )
    np_ = lambda t: t.detach().float().cpu().numpy()  # noqa: E731

    def linear(spec_, module):
        spec_.weight = np_(module.weight)
        if module.bias is not None:
            spec_.bias = np_(module.bias)

    def norm(spec_, module):
        spec_.gamma, spec_.beta = np_(module.weight), np_(module.bias)

    def attention(spec_, module, self_attention: bool):
        if self_attention:  # [q; k; v] as one [3D, D] projection
            q, kv = common_spec.LinearSpec(), common_spec.LinearSpec()
            linear(q, module.q_proj)
            linear(kv, module.kv_proj)
            utils.fuse_linear(spec_.linear[0], [q, kv])
        else:  # query from the decoder, [k; v] from the memory
            linear(spec_.linear[0], module.q_proj)
            linear(spec_.linear[1], module.kv_proj)
        linear(spec_.linear[-1], module.out_proj)

    def ffn(spec_, layer):
        norm(spec_.layer_norm, layer.ff_norm)
        linear(spec_.linear_0, layer.ff[0])
        linear(spec_.linear_1, layer.ff[2])

    table = np_(sinusoids(torch.arange(MAX_POSITIONS), model.d_model))  # [P, D]
    for stack, embed in ((spec.encoder, model.src_embed), (spec.decoder, model.tgt_embed)):
        (stack.embeddings[0] if isinstance(stack.embeddings, list) else stack.embeddings).weight = np_(embed.weight)
        stack.scale_embeddings = True
        stack.position_encodings.encodings = table
    for layer_spec, layer in zip(spec.encoder.layer, model.encoder_layers):
        attention(layer_spec.self_attention, layer.self_attn, self_attention=True)
        norm(layer_spec.self_attention.layer_norm, layer.self_attn_norm)
        ffn(layer_spec.ffn, layer)
    norm(spec.encoder.layer_norm, model.encoder_norm)
    for layer_spec, layer in zip(spec.decoder.layer, model.decoder_layers):
        attention(layer_spec.self_attention, layer.self_attn, self_attention=True)
        norm(layer_spec.self_attention.layer_norm, layer.self_attn_norm)
        attention(layer_spec.attention, layer.cross_attn, self_attention=False)
        norm(layer_spec.attention.layer_norm, layer.cross_attn_norm)
        ffn(layer_spec.ffn, layer)
    norm(spec.decoder.layer_norm, model.decoder_norm)
    linear(spec.decoder.projection, model.output_layer)

    spec.register_source_vocabulary(src_pieces)
    spec.register_target_vocabulary(tgt_pieces)
    spec.config.unk_token, spec.config.bos_token = tgt_pieces[UNK_ID], tgt_pieces[BOS_ID]
    spec.config.eos_token, spec.config.decoder_start_token = tgt_pieces[EOS_ID], tgt_pieces[BOS_ID]
    spec.config.add_source_eos = True
    spec.config.layer_norm_epsilon = float(model.encoder_norm.eps)
    return spec


def export(checkpoint: str | Path, tokenizer_dir: str | Path, out: str | Path, quantization: str = "float32") -> Path:
    """Convert `checkpoint` (a Transformer) with the SentencePiece models of `tokenizer_dir` into a
    CTranslate2 model folder `out`, written whole or not at all."""
    require_ctranslate2()
    from ctranslate2.converters.converter import Converter

    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"--quantization {quantization}: choose one of {', '.join(QUANTIZATIONS)}")
    model, meta = load_model(checkpoint)
    if not isinstance(model, Transformer):
        raise DataError(f"{checkpoint}: a {type(model).__name__} model (model {meta['model'].get('_target_')}); "
                        "CTranslate2 runs Transformer models only, not recurrent or convolutional ones")
    sps = {side: load_sp(tokenizer_dir, side) for side in ("src", "tgt")}
    pieces = {side: [sp.id_to_piece(i) for i in range(sp.get_piece_size())] for side, sp in sps.items()}

    class ProjectConverter(Converter):
        def _load(self):
            return _spec(model, pieces["src"], pieces["tgt"])

    with atomic_path(out) as tmp:
        ProjectConverter().convert(str(tmp), quantization=quantization)
        for side in ("src", "tgt"):
            shutil.copyfile(Path(tokenizer_dir) / f"{side}.model", tmp / f"{side}.model")
    return Path(out)
