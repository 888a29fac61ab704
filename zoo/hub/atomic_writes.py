"""Every file and folder the zoo writes for a user appears whole or not at all.

``atomic_file(path)`` yields a hidden temporary path beside ``path``; when the block ends without error the file
is flushed to disk and renamed over ``path`` (atomic on POSIX and Windows). ``atomic_folder(out, force)`` does
the same for a folder (bundles, transformers and CTranslate2 exports): a new private staging folder beside
``out``, renamed into place, where an existing ``out`` is refused unless ``force`` and then replaced whole (moved
aside first, deleted only once the new one stands). On an error nothing is left behind and ``out`` is as it was.
Both give the result the modes the user's umask gives (temporary files and folders are private by design).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datamodules.file_modes import give_default_modes
from zoo.hub.checkpoints import CheckpointError


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        with open(partial, "rb+") as file:
            os.fsync(file.fileno())
        give_default_modes(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def atomic_folder(out: str | Path, force: bool = False) -> Iterator[Path]:
    out = refuse_to_overwrite(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    except OSError as error:
        raise not_writable(out, error) from error
    try:
        yield staging
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def refuse_to_overwrite(out: str | Path, force: bool) -> Path:
    """``out`` as a Path, if it may be written: new, an empty folder, or ``force`` (replaced whole)."""
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(
            f"{out} already exists and is not an empty folder; export never overwrites it. "
            f"Fix: choose another --out, or pass --force to replace it."
        )
    return out


def not_writable(out: Path, error: OSError) -> CheckpointError:
    """Names the user's folder, not our staging path inside it."""
    parent = out.resolve().parent
    return CheckpointError(
        f"cannot write {out}: {error.strerror or error} in {parent}. Fix: choose an --out in a folder you can "
        f"write to, or make {parent} writable (and {out} too, to replace it with --force)."
    )


def replace_folder(new: Path, target: Path) -> None:
    """Put the folder ``new`` at ``target`` by renames, so that ``target`` is never half written."""
    give_default_modes(new)
    old = None
    try:
        if target.exists():
            old = target.with_name(f".{target.name}.replaced")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        new.rename(target)
    except OSError as error:
        if old is not None and old.exists() and not target.exists():
            old.rename(target)  # the user's folder stays as it was
        raise not_writable(target, error) from error
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()
