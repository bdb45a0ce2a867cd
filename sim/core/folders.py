"""Folders the user names: refused early, with the path, when they cannot be folders."""

from __future__ import annotations

from pathlib import Path

from sim.core.errors import CascadeError


def require_folder(path: Path, named: str, expected: str) -> None:
    """A CascadeError when `path` cannot be a folder because it, or the first part of it that exists, is a file.
    `named` says how the user gave it (option and value); `expected` what would be right."""
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                which = "that is" if part == path else f"{part} is"
                raise CascadeError(f"{named}: {which} a file, not a folder; give {expected}")
            return
