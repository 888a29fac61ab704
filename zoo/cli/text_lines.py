"""A user's text as one sentence per line, and back: what keeps a command's output aligned with its input.

Lines end only at ``\\n`` (a ``\\r`` before it is dropped), not at the other characters Python's
``str.splitlines`` breaks on (U+2028, U+0085, form feeds, ...), which may sit inside a sentence.
Each line is decoded on its own, so a byte that is not UTF-8 is reported with its line number.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Everything str.splitlines() would break a line at: never written inside an output line.
LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class InputError(ValueError):
    """A user's input file cannot be read as lines of UTF-8 text; the message names the file, the line and the fix."""


def input_name(path: Path | None) -> str:
    """How messages name the input: its path, or standard input."""
    return str(path) if path is not None else "standard input"


def read_lines(path: Path | None) -> list[str]:
    """The lines of ``path`` (stdin when None), without their line ends; a final ``\\n`` ends the last
    line rather than starting an empty one. A UTF-8 byte-order mark at the start is dropped."""
    name = input_name(path)
    data = path.read_bytes() if path is not None else sys.stdin.buffer.read()
    raw = data.split(b"\n")
    if raw[-1] == b"":
        raw.pop()
    lines = []
    for number, line in enumerate(raw, 1):
        line = line[:-1] if line.endswith(b"\r") else line
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise InputError(
                f"{name}, line {number}: byte {line[error.start]:#04x} at column {error.start + 1} is not UTF-8. "
                f"Fix: convert the text to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
            ) from None
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return lines


def one_line(text: str) -> str:
    """``text`` with any line break inside it turned into a space, so that it is exactly one output line."""
    return LINE_BREAKS.sub(" ", text)
