"""Argument checks for the constructors the CLI builds: a bad value fails where it enters, naming its option.

`zoo fit --data.init_args.batch_size 0` should end in "batch_size must be >= 1, got 0", not in a
traceback from deep inside a DataLoader or a layer. Models and DataModules both use these.
"""

from __future__ import annotations


def require_positive(**values: int | None) -> None:
    """Each value (None: not set) is a whole number >= 1."""
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


def require_dropout(**values: float) -> None:
    """Each value is a probability in [0, 1)."""
    for name, value in values.items():
        if not 0 <= value < 1:
            raise ValueError(f"{name} is a dropout probability and must lie in [0, 1), got {value!r}")
