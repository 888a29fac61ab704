"""Ctrl-C (SIGINT) and SIGTERM as a clean stop that never cuts a write short.

A command that writes its output as it goes (`zoo translate`) must not be stopped halfway through writing
a line: the output would no longer be a complete, aligned prefix of what the input asked for. Inside
``stop_requests()`` a signal raises ``Stopped`` at once (while decoding, or while waiting for input),
except inside ``StopRequest.deferred()``, which holds it until the block is done. A second signal acts
as it would have without us.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """The user asked the command to stop (``signum``: SIGINT or SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process a signal ended: 130, 143

    @property
    def cause(self) -> str:
        return "Ctrl-C (SIGINT)" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


class StopRequest:
    def __init__(self):
        self.signum: int | None = None
        self._deferring = False

    def on_signal(self, signum: int) -> None:
        self.signum = signum
        if not self._deferring:
            raise Stopped(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A signal inside this block stops the command when the block is done, not in the middle of it."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self.signum is not None:
            raise Stopped(self.signum)


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    request = StopRequest()
    previous = {}

    def handler(signum, frame) -> None:
        signal.signal(signum, previous[signum])  # a second one acts at once
        request.on_signal(signum)

    for signum in SIGNALS:
        previous[signum] = signal.signal(signum, handler)
    try:
        yield request
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
