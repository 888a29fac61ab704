"""The demo page (Gradio): one tab per model, translation or text generation, with the model's card beside it,
and a "Beam search" view that draws the tree of the search for what the user types.

Translations and generations decode on one DecodeEngine per model (zoo/serving/engine.py), the HTTP API's:
the requests of many users at once are decoded in one batch, so the page serves them together; the beam-search
view, a picture for one person at a time, runs one request at a time. Inputs are limited (zoo/demo/handlers.py)
so that none takes more than seconds; a refused input shows its message on the page, and an unexpected failure
a short message, never a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine

import gradio as gr  # noqa: E402

from zoo.demo import handlers  # noqa: E402
from zoo.serving.engine import DecodeEngine  # noqa: E402

QUEUE = 128  # requests waiting beyond this are refused at once, not queued for minutes
# Requests handled at once per event: each holds one of Gradio's worker threads (40 in all, anyio's default)
# while its job waits in the engine, whose batch they join.
TOGETHER = 32


@dataclass
class Served:
    name: str  # what the user passed: a registered name or a path
    model: object
    card: str  # Markdown


def safely(function):
    """Run a request; show a RequestError's message, and a short one for anything unexpected."""

    def run(*args):
        try:
            return function(*args)
        except handlers.RequestError as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:  # a bug: the page says so without a traceback; the server log has it
            raise gr.Error(f"The model failed on this input ({type(error).__name__}). Try other input.") from error

    return run


def translation_tab(served: Served, engine: DecodeEngine, index: int, limits: handlers.Limits) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            source = gr.Textbox(
                label="Text to translate",
                lines=3,
                max_length=limits.source_chars,
                placeholder="A man in a blue shirt is riding a bike.",
                elem_id=f"source-{index}",
            )
            with gr.Row():
                beam_size = gr.Slider(1, limits.beam_size, value=5, step=1, label="Beam size (1: greedy)")
                n_best = gr.Slider(1, limits.beam_size, value=3, step=1, label="Translations to list (n-best)")
            button = gr.Button("Translate", variant="primary", elem_id=f"translate-{index}")
            best = gr.Textbox(label="Translation", interactive=False, elem_id=f"translation-{index}")
            n_best_table = gr.Dataframe(
                headers=["translation", "score"], label="n-best list (score: log-probability / GNMT length penalty)"
            )
            chosen = gr.Radio([], label="Attention of translation number", type="index")
            heatmap = gr.Image(label="Cross-attention (target pieces x source pieces)", elem_id=f"heatmap-{index}")
            details = gr.State([])
        with gr.Column(scale=2):
            gr.Markdown(served.card)

    def run(text, beam, n):
        result = handlers.translate(engine, text, beam, n, limits)
        labels = [str(i + 1) for i in range(len(result.n_best))]
        image = handlers.attention_image(result.details[0], "translation 1")
        table = [[t, s] for t, s in result.n_best]
        return result.best, table, gr.update(choices=labels, value=labels[0]), image, result.details

    def show(number, kept):
        if number is None or not kept:
            return None
        return handlers.attention_image(kept[number], f"translation {number + 1}")

    outputs = [best, n_best_table, chosen, heatmap, details]
    together = {"concurrency_limit": TOGETHER, "concurrency_id": f"translate-{index}"}  # one limit for both events
    # api_name: what Gradio's own client calls (benchmarks/page_load.py); the Enter key is the same request
    button.click(safely(run), [source, beam_size, n_best], outputs, api_name=f"translate_{index}", **together)
    source.submit(safely(run), [source, beam_size, n_best], outputs, api_visibility="private", **together)
    chosen.input(safely(show), [chosen, details], heatmap)


def generation_tab(served: Served, engine: DecodeEngine, index: int, limits: handlers.Limits) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(
                label="Prompt", value="ROMEO:", lines=2, max_length=limits.prompt_chars, elem_id=f"prompt-{index}"
            )
            with gr.Row():
                length = gr.Slider(1, limits.generated_chars, value=300, step=1, label="Characters to generate")
                strategy = gr.Radio(["sample", "greedy"], value="sample", label="Decoding")
            with gr.Row():
                temperature = gr.Slider(0.05, 2.0, value=0.8, step=0.05, label="Temperature")
                top_k = gr.Number(value=0, precision=0, label="Top-k (0: off)", minimum=0)
                top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p (1: off)")
                seed = gr.Number(value=0, precision=0, label="Seed")
            button = gr.Button("Generate", variant="primary", elem_id=f"generate-{index}")
            text = gr.Textbox(label="Text", lines=12, interactive=False, elem_id=f"generated-{index}")
        with gr.Column(scale=2):
            gr.Markdown(served.card)

    def run(*values):
        return handlers.generate(engine, *values, limits)

    inputs = [prompt, length, strategy, temperature, top_k, top_p, seed]
    button.click(safely(run), inputs, text, api_name=f"generate_{index}", concurrency_limit=TOGETHER)


def beam_search_tab(served: Served, index: int, limits: handlers.Limits) -> None:
    """The tree of the search for what the user types (docs/lecture.md, section 7)."""
    translator = hasattr(served.model, "translate_n_best")
    text = gr.Textbox(
        label="Sentence to translate" if translator else "Prompt to continue",
        value="Two dogs play in the snow." if translator else "ROMEO:",
        lines=2,
        max_length=limits.source_chars if translator else limits.prompt_chars,
        elem_id=f"tree-text-{index}",
    )
    with gr.Row():
        beam_size = gr.Slider(1, limits.tree_beam_size, value=3, step=1, label="Beam size (n)")
        steps = gr.Slider(
            1,
            limits.tree_steps,
            value=limits.tree_steps if translator else 12,
            step=1,
            label="Draw up to step" if translator else "Characters to search (steps)",
        )
    button = gr.Button("Draw the search", variant="primary", elem_id=f"tree-{index}")
    tree = gr.Image(label="Beam search tree", elem_id=f"tree-image-{index}")

    def run(value, n, up_to):
        return handlers.beam_tree_image(served.model, value, n, up_to, limits)

    button.click(safely(run), [text, beam_size, steps], tree)


def build_page(models: list[Served], limits: handlers.Limits | None = None, batching: bool = True) -> gr.Blocks:
    """``batching=False``: each model's engine decodes one request at a time (for comparison)."""
    limits = limits or handlers.Limits()
    with gr.Blocks(title="seq-zoo demo", analytics_enabled=False) as page:
        gr.Markdown("# seq-zoo\nTranslate or generate text with the zoo's models, on this machine.")
        with gr.Tabs():
            for index, served in enumerate(models):
                with gr.Tab(served.name, id=index), gr.Tabs():
                    translator = hasattr(served.model, "translate_n_best")
                    with gr.Tab("Translate" if translator else "Generate"):
                        tab = translation_tab if translator else generation_tab
                        tab(served, DecodeEngine(served.model, batching=batching), index, limits)
                    with gr.Tab("Beam search"):
                        beam_search_tab(served, index, limits)
    return page.queue(default_concurrency_limit=1, max_size=QUEUE)
