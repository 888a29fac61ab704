"""The LightningModules of the zoo: CharRNN, Seq2Seq, Transformer, TransformerLM (public as zoo.<Name>).

Importing this package defines them all, and so fills the registry (zoo/models/registry.py) loading reads.
"""

from zoo.models.char_rnn import CharRNN
from zoo.models.seq2seq import Seq2Seq
from zoo.models.transformer import Transformer
from zoo.models.transformer_lm import TransformerLM

__all__ = ["CharRNN", "Seq2Seq", "Transformer", "TransformerLM"]
