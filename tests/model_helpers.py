"""Small, seeded models and batches shared by the model and search tests."""

from pathlib import Path

import torch
import torch.nn as nn
from hydra.utils import instantiate
from omegaconf import OmegaConf

from seq2seq.models import Transformer

PAD, BOS, EOS, V = 0, 1, 2, 20
CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "model"
NAMES = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
LENGTHS = [7, 3, 5, 1, 6, 4]
SMALL = dict(emb_size=16, hidden_size=16, channels=16, d_model=16, ff_size=32, n_heads=2, enc_layers=2, dec_layers=2)


def build(name: str, src_vocab_size: int = V, tgt_vocab_size: int = V, **overrides) -> nn.Module:
    """The model of conf/model/<name>.yaml, shrunk (keeping the yaml's other settings), seeded."""
    cfg = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    for key, value in SMALL.items():
        if key in cfg:
            cfg[key] = value
    if "enc_hidden_size" in cfg and not OmegaConf.is_interpolation(cfg, "enc_hidden_size"):
        cfg.enc_hidden_size = 8  # lstm_luong: half the decoder size, as in the yaml
    cfg = OmegaConf.merge(cfg, overrides)
    torch.manual_seed(0)
    return instantiate(cfg, src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                       pad_id=PAD, bos_id=BOS, eos_id=EOS)


def output_layer(model: nn.Module) -> nn.Linear:
    """The vocabulary projection: the Transformer's own, or the recurrent decoder's."""
    return model.output_layer if isinstance(model, Transformer) else model.decoder.output_layer


def padded_batch(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids (no specials) padded with PAD: src [B, S], lens [B]."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor(lengths)  # [B]
    src = torch.randint(3, V, (len(lengths), max(lengths)), generator=g)  # [B, S]
    src[torch.arange(max(lengths)) >= lens.unsqueeze(1)] = PAD  # [B, S]
    return src, lens


def target(B: int, T: int, seed: int = 2) -> torch.Tensor:
    """tgt_in [B, T]: BOS then random tokens."""
    tgt = torch.randint(3, V, (B, T), generator=torch.Generator().manual_seed(seed))  # [B, T]
    tgt[:, 0] = BOS
    return tgt
