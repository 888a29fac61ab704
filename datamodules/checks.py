"""Argument checks for the constructors the CLI builds: a bad value fails where it enters, naming its option.

`zoo fit --data.init_args.batch_size 0` should end in "batch_size must be >= 1, got 0", not in a
traceback from deep inside a DataLoader or a layer. Models, DataModules, callbacks and decoding options
use these. Every float goes through ``require_in``: NaN fails every comparison, so a check written as
``value < 0`` lets it through; ``require_in`` asks for the value to lie inside, which NaN never does.
"""

from __future__ import annotations

import math
import re

_INTERVAL = re.compile(r"([\[(])\s*(-?inf|[-+0-9.e]+)\s*,\s*(inf|[-+0-9.e]+)\s*([\])])")


def require_positive(**values: int | None) -> None:
    """Each value (None: not set) is a whole number >= 1."""
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


def require_in(interval: str, **values: float | None) -> None:
    """Each value (None: not set) is a real number inside ``interval``, written as in maths: ``"[0, 1)"``,
    ``"(0, inf)"``. An open ``inf`` end means finite: NaN and infinities are refused with the option's name."""
    match = _INTERVAL.fullmatch(interval)
    if match is None:
        raise ValueError(f"not an interval: {interval!r}")  # a bug in the caller, not a user error
    left, low, high, right = match[1], float(match[2]), float(match[3]), match[4]
    for name, value in values.items():
        if value is None:
            continue
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        above = number >= low if left == "[" else number > low
        below = number <= high if right == "]" else number < high
        if not (above and below):
            finite = " finite" if math.isinf(low) or math.isinf(high) else ""
            raise ValueError(f"{name} must be a{finite} number in {interval}, got {value!r}")
