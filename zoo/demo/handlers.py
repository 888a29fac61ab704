"""What the demo page does with one request, apart from the page itself (zoo/demo/page.py): checks the input
against limits that keep any request to seconds, decodes, and draws the attention of a hypothesis.

Translations and generations decode on the model's ``DecodeEngine`` (zoo/serving/engine.py), as the HTTP API's
do: the requests of many users at once join one running batch, and a request's answer is the one it would get
alone. The engine records no attention, so a translation's heatmaps come from one teacher-forced pass over its
hypotheses afterwards (``TranslationTask.attention_details``).

Every refusal is a ``RequestError`` whose message the page shows as it is: it names the problem and the fix.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from PIL import Image

from callbacks.translation_samples import attention_figure
from zoo.demo.beam_tree_figure import beam_tree_figure
from zoo.generation.beam_tree import beam_tree_of_text
from zoo.generation.options import DecodingOptions
from zoo.serving.engine import DecodeEngine, EngineFull, Job
from zoo.tasks.translation_inputs import checked_sources


class RequestError(ValueError):
    """Bad input from the page: shown to the user as a message."""


@dataclass(frozen=True)
class Limits:
    """Per request, so that one request cannot hold the server for minutes."""

    source_chars: int = 500
    prompt_chars: int = 500
    generated_chars: int = 2000
    beam_size: int = 10
    tree_beam_size: int = 5  # the beam-search view draws every extension: wider trees are unreadable
    tree_steps: int = 40
    wait_seconds: float = 60.0  # a request still waiting for its answer then is dropped, with a message


@dataclass
class TranslationResult:
    best: str
    n_best: list[tuple[str, float]]  # (translation, score), best first
    details: list[dict]  # per hypothesis: {"src", "tgt", "attention"} (zoo.tasks.translation)


def translate(engine: DecodeEngine, text: str, beam_size: int, n_best: int, limits: Limits) -> TranslationResult:
    """Beam size 1 decodes greedily. The text is one sentence: line breaks count as spaces."""
    model = engine.model
    sentence = " ".join(str(text or "").split())
    if not sentence:
        raise RequestError("There is nothing to translate: type a sentence.")
    if len(sentence) > limits.source_chars:
        raise RequestError(
            f"The text has {len(sentence)} characters; this page translates at most {limits.source_chars}. "
            f"Shorten it, or use `zoo translate` for long texts."
        )
    beam_size, n_best = int(beam_size), int(n_best)
    if not 1 <= beam_size <= limits.beam_size:
        raise RequestError(f"Beam size must lie in 1..{limits.beam_size}, got {beam_size}.")
    if not 1 <= n_best <= beam_size:
        raise RequestError(f"The n-best list can hold 1 to beam size ({beam_size}) translations, got {n_best}.")
    options = (
        {"strategy": "greedy"} if beam_size == 1 else {"strategy": "beam", "beam_size": beam_size, "n_best": n_best}
    )
    try:
        [(ids, pieces)] = checked_sources(model.encode_sources([sentence]), model.max_source_tokens, truncate=True)
    except ValueError as error:  # e.g. a sentence with nothing the tokenizer keeps
        raise RequestError(str(error)) from error
    job = decoded(engine, Job([model.bos_id], options, src=[*ids, model.eos_id]), limits)
    found = job.found()
    n_best_list = [(model.detokenize(torch.tensor(tokens, dtype=torch.long)), round(s, 4)) for tokens, s in found]
    details = model.attention_details(ids, pieces, [tokens for tokens, _ in found])
    return TranslationResult(n_best_list[0][0], n_best_list, details)


def decoded(engine: DecodeEngine, job: Job, limits: Limits) -> Job:
    """``job`` done on ``engine`` (this thread waits for it); a full queue, a bad option or a wait longer than
    ``limits.wait_seconds`` is a RequestError that says so."""
    try:
        engine.submit(job)
    except EngineFull as error:
        raise RequestError(f"The page is busy ({error}). Try again in a few seconds.") from None
    except ValueError as error:  # an option out of range, a length the model cannot hold
        raise RequestError(str(error)) from error
    if not job.finished.wait(limits.wait_seconds):
        job.cancelled = True  # its rows leave the batch at the next step
        raise RequestError(f"The answer took longer than {limits.wait_seconds:g} s. Try a shorter text, or later.")
    if isinstance(job.error, ValueError):  # this input's own problem, e.g. too long for the model
        raise RequestError(str(job.error)) from job.error
    if job.error is not None:
        raise job.error
    return job


def attention_image(detail: dict | None, title: str = "") -> Image.Image | None:
    """The cross-attention heatmap of one hypothesis (target pieces x source pieces), as a picture."""
    if detail is None or detail.get("attention") is None:
        return None
    return picture(attention_figure(detail["src"], detail["tgt"], detail["attention"], title))


def picture(figure) -> Image.Image:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return Image.open(io.BytesIO(buffer.getvalue()))


def beam_tree_image(model, text: str, beam_size: int, steps: int, limits: Limits) -> Image.Image:
    """The tree of the beam search of ``text`` (a sentence to translate, or a prompt to continue), drawn up to
    step ``steps`` (a character model searches that many characters)."""
    text = str(text or "")
    translator = hasattr(model, "source_batch")
    if translator:
        text = " ".join(text.split())
    if not text:
        raise RequestError("There is nothing to search from: type a sentence (or, for a character model, a prompt).")
    most = limits.source_chars if translator else limits.prompt_chars
    if len(text) > most:
        raise RequestError(f"The text has {len(text)} characters; this view takes at most {most}.")
    beam_size, steps = int(beam_size), int(steps)
    if not 1 <= beam_size <= limits.tree_beam_size:
        raise RequestError(f"Beam size must lie in 1..{limits.tree_beam_size} for the tree, got {beam_size}.")
    if not 1 <= steps <= limits.tree_steps:
        raise RequestError(f"Steps must lie in 1..{limits.tree_steps}, got {steps}.")
    try:
        tree, token_text = beam_tree_of_text(model, text, beam_size, **({} if translator else {"max_len": steps}))
    except ValueError as error:  # a character the model has never seen, or nothing the tokenizer keeps
        raise RequestError(str(error)) from error
    return picture(beam_tree_figure(tree, token_text, up_to_step=steps, title=f"beam search, n = {beam_size}"))


def generate(
    engine: DecodeEngine,
    prompt: str,
    length: int,
    strategy: str,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    limits: Limits,
) -> str:
    """The prompt and its continuation of ``length`` characters."""
    model = engine.model
    prompt = str(prompt or "")
    if not prompt:
        raise RequestError("The prompt is empty: type a few characters to continue, e.g. ROMEO:")
    if len(prompt) > limits.prompt_chars:
        raise RequestError(f"The prompt has {len(prompt)} characters; this page takes at most {limits.prompt_chars}.")
    length = int(length)
    if not 1 <= length <= limits.generated_chars:
        raise RequestError(f"Length must lie in 1..{limits.generated_chars} characters, got {length}.")
    options = {"strategy": strategy, "max_len": length}
    if strategy == "sample":
        options.update(
            temperature=float(temperature),
            top_k=int(top_k) if top_k else None,
            top_p=float(top_p) if top_p and float(top_p) < 1 else None,
            seed=int(seed) if seed not in (None, "") else None,
        )
    try:
        DecodingOptions(**options).check()
        ids = model.vocab.encode(prompt).tolist()
    except ValueError as error:  # an option out of range, or a character the model has never seen
        raise RequestError(str(error)) from error
    job = decoded(engine, Job(ids, options), limits)
    return prompt + model.vocab.decode(torch.tensor(job.tokens, dtype=torch.long))
