"""The rules every translation engine (the zoo's models, the CTranslate2 engine) applies to its sources, once.

- A sentence is tokenized once: ``encode_sources`` turns raw sentences into the tokenizer's Encodings,
  and the translate methods take either, so `zoo translate` measures and translates the same encodings.
- A source holds at most ``max_source_tokens`` tokens, its <eos> included: ``source_room`` is what is left
  for the sentence; ``checked_sources`` refuses an empty sentence, and a longer one unless it is truncated.
- How long a translation may grow is decided for every engine by zoo.generation.options.length_limits.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Encoding, Tokenizer

Source = str | Encoding  # a raw sentence, or one already encoded by ``encode_sources``


def encode_sources(tokenizer: Tokenizer, sources: Sequence[Source]) -> list[Encoding]:
    """Each source as an Encoding (special tokens left out: <eos> is added when batched); the raw ones are
    encoded in one call, the encoded ones pass as they are."""
    texts = [s for s in sources if isinstance(s, str)]
    encoded = iter(tokenizer.encode_batch(texts, add_special_tokens=False) if texts else ())
    return [next(encoded) if isinstance(s, str) else s for s in sources]


def source_room(max_source_tokens: int) -> int:
    """The tokens a sentence may have: the model reads ``max_source_tokens``, one of them its <eos>."""
    return max_source_tokens - 1


def checked_sources(
    encoded: Sequence[Encoding], max_source_tokens: int, truncate: bool
) -> list[tuple[list[int], list[str]]]:
    """Each encoding's (ids, tokens), refused when one is empty (nothing to translate) or, unless ``truncate``,
    longer than the model reads; with ``truncate``, a longer one keeps its first ``source_room`` tokens."""
    empty = [i for i, e in enumerate(encoded) if not e.ids]
    if empty:
        raise ValueError(f"source sentence(s) {empty} are empty: there is nothing to translate.")
    room = source_room(max_source_tokens)
    long = [i for i, e in enumerate(encoded) if len(e.ids) > room]
    if long and not truncate:
        raise ValueError(
            f"source sentence {long[0]} has {len(encoded[long[0]].ids)} tokens, more than the {room} this model "
            f"reads. Fix: split it, or pass truncate=True to translate its first {room} tokens."
        )
    return [(e.ids[:room], e.tokens[:room]) for e in encoded]
