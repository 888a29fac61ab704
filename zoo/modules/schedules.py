"""Learning-rate schedules."""

from __future__ import annotations

import math

import torch


def warmup_inverse_sqrt(optimizer: torch.optim.Optimizer, warmup_steps: int) -> dict:
    """Linear warm-up to the optimizer's learning rate over ``warmup_steps``, then decay as 1/sqrt(step)
    (Vaswani et al. 2017), stepped every optimizer step; in Lightning's lr_scheduler format."""
    warmup = max(1, warmup_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))
    )
    return {"scheduler": schedule, "interval": "step"}
