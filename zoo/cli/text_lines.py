"""A user's text as one sentence per line, and back: what keeps a command's output aligned with its input.

Lines end only at ``\\n`` (a ``\\r`` before it is dropped), not at the other characters Python's
``str.splitlines`` breaks on (U+2028, U+0085, form feeds, ...), which may sit inside a sentence.
Lines are read one at a time (memory does not grow with the input) and each is decoded on its own, so a
byte that is not UTF-8 is reported with its line number after every line before it has been handed on.
A gzip file (or stream) is read as gzip, whatever its name.
"""

from __future__ import annotations

import gzip
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from datamodules.sources import GZIP_MAGIC, open_bytes

# Everything str.splitlines() would break a line at: never written inside an output line.
LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class InputError(ValueError):
    """A user's input file cannot be read as lines of UTF-8 text; the message names the file, the line and the fix."""


def input_name(path: Path | None) -> str:
    """How messages name the input: its path, or standard input."""
    return str(path) if path is not None else "standard input"


def open_input(path: Path | None) -> BinaryIO:
    """``path`` (stdin when None) as a binary stream, decompressed when it is gzip."""
    if path is not None:
        return open_bytes(path)
    stream = sys.stdin.buffer
    if not hasattr(stream, "peek"):  # (a BytesIO standing in for stdin, say)
        stream = io.BufferedReader(stream)
    return gzip.GzipFile(fileobj=stream) if stream.peek(2)[:2] == GZIP_MAGIC else stream


def iter_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """The lines of ``stream``, without their line ends; a final ``\\n`` ends the last line rather than
    starting an empty one. A UTF-8 byte-order mark at the start is dropped. A line that is not UTF-8 raises
    InputError, naming ``name`` and the line, once the lines before it are yielded."""
    for number, line in enumerate(stream, 1):  # binary streams split at b"\n" only
        line = line[:-1] if line.endswith(b"\n") else line
        line = line[:-1] if line.endswith(b"\r") else line
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(
                f"{name}, line {number}: byte {line[error.start]:#04x} at column {error.start + 1} is not UTF-8. "
                f"Fix: convert the text to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
            ) from None
        yield text[1:] if number == 1 and text.startswith("\ufeff") else text


def read_lines(path: Path | None) -> list[str]:
    """All the lines of ``path`` (stdin when None), as ``iter_lines`` reads them."""
    stream = open_input(path)
    try:
        return list(iter_lines(stream, input_name(path)))
    finally:
        if path is not None:  # (standard input stays open)
            stream.close()


def one_line(text: str) -> str:
    """``text`` with any line break inside it turned into a space, so that it is exactly one output line."""
    return LINE_BREAKS.sub(" ", text)
