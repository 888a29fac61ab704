"""The model zoo: LightningModules, their layers, decoding, checkpoints and the `zoo` CLI."""

from zoo.char_rnn import CharRNN
from zoo.checkpoints import CheckpointError, load_model
from zoo.decoding import DecodingMixin
from zoo.pretrained import load_pretrained
from zoo.seq2seq import Seq2Seq
from zoo.transformer import Transformer
from zoo.transformer_lm import TransformerLM

__all__ = ["CharRNN", "CheckpointError", "DecodingMixin", "Seq2Seq", "Transformer", "TransformerLM", "load_model", "load_pretrained"]
