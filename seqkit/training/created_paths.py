"""Remember what a folder holds, to remove later exactly what appeared in it since.

A run that fails before it has trained removes what it made (its folder, if the folder was new,
and the folders above it that it had to create), and never a file that was there before it.
"""
from __future__ import annotations

from pathlib import Path


class CreatedPaths:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.before = set(self.folder.rglob("*")) if self.folder.is_dir() else set()
        missing = [f for f in (self.folder, *self.folder.parents) if not f.exists()]
        self.folders = missing  # to be created, deepest first

    def remove(self) -> None:
        """Delete what appeared under the folder since, then the folders that were created."""
        if self.folder.is_dir():
            new = set(self.folder.rglob("*")) - self.before
            for path in sorted(new, key=lambda p: len(p.parts), reverse=True):  # contents first
                try:
                    if path.is_dir() and not path.is_symlink():
                        path.rmdir()
                    else:
                        path.unlink()
                except OSError:
                    pass  # something else put a file there meanwhile: leave it
        for folder in self.folders:
            try:
                folder.rmdir()  # only if empty
            except OSError:
                return
