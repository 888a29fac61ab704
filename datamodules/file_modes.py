"""Files we write look like files the user makes: the modes their umask gives (usually 0644 and 0755).

Atomic writes stage their result in a temporary file or folder (``tempfile.mkstemp`` / ``mkdtemp``, and
safetensors' own staging), which are private to the user (0600 / 0700) by design; renamed into place as
they are, a bundle or a downloaded corpus would stay unreadable to the colleague it was shared with.
"""

from __future__ import annotations

import os
from pathlib import Path


def umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


def give_default_modes(path: Path) -> None:
    """``path`` (a file, or a folder and everything in it) set to 0666 / 0777 less the umask."""
    mask = umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        if not item.is_symlink():
            item.chmod((0o777 if item.is_dir() else 0o666) & ~mask)
