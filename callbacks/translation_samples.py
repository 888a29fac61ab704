"""TranslationSamplesCallback: after each validation, translate fixed sentences and log them with attention maps."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from datamodules.checks import require_positive


def draw_attention(axes, src_pieces: list[str], tgt_pieces: list[str], weights, title: str = "") -> None:
    """A heatmap of attention weights on ``axes``: one row per target piece, one column per source piece."""
    axes.imshow(weights.numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(len(src_pieces)), src_pieces, rotation=60, ha="right")
    axes.set_yticks(range(len(tgt_pieces)), tgt_pieces)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    axes.set_title(title, fontsize=9)


def attention_figure(src_pieces: list[str], tgt_pieces: list[str], weights, title: str = ""):
    # A Figure of its own, not pyplot's: no backend to choose (importing callbacks changes no global
    # setting), nothing to close, and it renders without a display.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1 + 0.45 * len(src_pieces), 1 + 0.4 * len(tgt_pieces)))
    axes = figure.subplots()
    draw_attention(axes, src_pieces, tgt_pieces, weights, title)
    figure.tight_layout()
    return figure


class TranslationSamplesCallback(Callback):
    """Logs ``translations`` (epoch, source, reference, hypothesis) for the first ``n`` validation
    sentences, and one ``attention/<i>`` heatmap image per sentence. Needs W&B and a model with
    ``translate_n_best`` with attention (zoo.Seq2Seq, zoo.Transformer)."""

    def __init__(self, n: int = 4):
        require_positive(n=n)
        self.n = n
        self.rows: list[list] = []

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Checked when the run starts, not at its first validation an epoch later.
        if not hasattr(pl_module, "translate_n_best"):
            raise ValueError(
                f"TranslationSamplesCallback translates, but {type(pl_module).__name__} does not. Fix: remove it "
                f"from trainer.callbacks (language models: callbacks.SampleTextCallback)."
            )
        if not hasattr(trainer.datamodule, "texts"):
            raise ValueError(
                "TranslationSamplesCallback takes its sentences from the validation split of a "
                "datamodules.TranslationDataModule. Fix: use that DataModule, or remove the callback."
            )

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if trainer.sanity_checking or not trainer.is_global_zero or not loggers:
            return
        texts = trainer.datamodule.texts["val"]
        sources, references = texts.src[: self.n], texts.tgt[: self.n]
        best = pl_module.translate_n_best(sources, truncate=True, attention=True)
        results = [(text, detail) for (text, _score, detail), *_ in best]  # a long sentence: its first tokens
        images = []
        for i, (source, reference, (hypothesis, detail)) in enumerate(zip(sources, references, results)):
            self.rows.append([trainer.current_epoch, source, reference, hypothesis])
            if detail["attention"] is not None:
                figure = attention_figure(detail["src"], detail["tgt"], detail["attention"], title=hypothesis)
                images.append(figure)
        for logger in loggers:
            logger.log_text("translations", columns=["epoch", "source", "reference", "hypothesis"], data=self.rows)
            for i, figure in enumerate(images):  # one key per sentence: the maps differ in size
                logger.log_image(f"attention/{i}", images=[figure], step=trainer.global_step)
