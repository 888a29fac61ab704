"""Callbacks that plug into any Lightning Trainer."""

from callbacks.checkpoint_on_error import CheckpointOnError
from callbacks.freeze_parts import FreezeParts
from callbacks.hidden_state import HiddenStateCallback
from callbacks.last_checkpoint import ModelCheckpoint
from callbacks.random_state import RandomStateCheckpoint
from callbacks.sample_text import SampleTextCallback
from callbacks.time_budget import TimeBudgetDecay
from callbacks.translation_samples import TranslationSamplesCallback
from datamodules.batch_counts import sequences, target_tokens  # for ThroughputMonitor, as configs name them

__all__ = [
    "CheckpointOnError",
    "FreezeParts",
    "HiddenStateCallback",
    "ModelCheckpoint",
    "RandomStateCheckpoint",
    "SampleTextCallback",
    "TimeBudgetDecay",
    "TranslationSamplesCallback",
    "sequences",
    "target_tokens",
]
