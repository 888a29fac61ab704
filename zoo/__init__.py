"""The model zoo: sequence models as LightningModules, with decoding, checkpoints, bundles and the `zoo` CLI.

    zoo/models/      CharRNN, Seq2Seq, Transformer, TransformerLM: the LightningModules, and their registry
    zoo/tasks/       what models of one kind share: language modelling, translation (losses, metrics, inputs)
    zoo/modules/     building blocks: attention, the RNN attention decoder, Transformer blocks, caches, schedules
    zoo/generation/  the decoding protocol and DecodingMixin, beam search, greedy and sampling, length limits
    zoo/hub/         loading, checkpoints, bundles, the pretrained registry, averaging, atomic writes
    zoo/interop/     export to transformers and CTranslate2, and the CTranslate2 engine
    zoo/demo/        the `zoo serve` page
    zoo/cli/         the `zoo` command

The public names below load on first use, so that ``import zoo.generation.nested`` (say, from
callbacks/) loads no model, Lightning module or tokenizer.
"""

from __future__ import annotations

import importlib

PUBLIC = {  # name -> the module that defines it
    "CharRNN": "zoo.models.char_rnn",
    "Seq2Seq": "zoo.models.seq2seq",
    "Transformer": "zoo.models.transformer",
    "TransformerLM": "zoo.models.transformer_lm",
    "DecodingMixin": "zoo.generation.decoding",
    "CheckpointError": "zoo.hub.checkpoints",
    "load_model": "zoo.hub.loading",
    "load_pretrained": "zoo.hub.loading",
    "list_pretrained": "zoo.hub.pretrained",
}
__all__ = sorted(PUBLIC)


def __getattr__(name: str):
    if name in PUBLIC:
        value = getattr(importlib.import_module(PUBLIC[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *PUBLIC])
