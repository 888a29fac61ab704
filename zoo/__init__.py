"""The model zoo: LightningModules, their layers, decoding, checkpoints and the `zoo` CLI."""

from zoo.char_rnn import CharRNN
from zoo.checkpoints import CheckpointError, load_model
from zoo.decoding import DecodingMixin

__all__ = ["CharRNN", "CheckpointError", "DecodingMixin", "load_model"]
