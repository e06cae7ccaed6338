"""``text``: any UTF-8 file, or every file matching a glob (concatenated in sorted order)."""
import glob
import os
from pathlib import Path

import seqkit
from seqkit import Dataset, Option, SeqkitError
from seqkit.plugins.datasets._text_files import files_identity, stream_joined
from seqkit.text_files import stream_text_file


class TextFiles(Dataset):
    options = {
        "path": Option(type=str, help="a UTF-8 text file or a glob such as 'books/*.txt'"),
        "max_chars": Option(0, min=0, help="keep only the first N characters; 0: all"),
    }

    @classmethod
    def check(cls, options: dict) -> list[str]:
        try:
            text_files(options.get("path"))
        except SeqkitError as exc:
            return exc.problems
        return []

    def load(self) -> str:
        return "".join(self.texts())

    def texts(self):
        """The files one after another, each read a piece at a time."""
        files = text_files(self.config.get("path"))
        empty = True
        try:
            for piece in stream_joined(map(stream_text_file, files), self.config.get("max_chars", 0)):
                empty = empty and not piece.strip()
                yield piece
        except SeqkitError as exc:  # a file that is not text: name the key that chose it
            raise SeqkitError(*(f"data.path: {p}" for p in exc.problems)) from None
        if empty:
            raise SeqkitError(f"data.path: {self.config['path']}: the text is empty")

    def identity(self) -> dict:
        return {"dataset": "text", "files": files_identity(text_files(self.config.get("path"))),
                "max_chars": self.config.get("max_chars", 0)}


def text_files(pattern: str | None) -> list[Path]:
    """The files ``data.path`` names, each there and readable; a ``SeqkitError`` naming the key
    otherwise. Nothing is read, so validation can call it."""
    if not pattern:
        raise SeqkitError("data.path: the text dataset needs a file or glob, "
                          "e.g. --set data.path=corpus.txt")
    pattern = str(Path(pattern).expanduser())
    if glob.has_magic(pattern):
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not files:
            raise SeqkitError(f"data.path: no files match the glob '{pattern}'")
    else:
        files = [Path(pattern)]
        if not files[0].exists():
            raise SeqkitError(f"data.path: no such file '{pattern}'")
        if files[0].is_dir():
            raise SeqkitError(f"data.path: '{pattern}' is a folder; give a file or a glob such as "
                              f"'{pattern.rstrip('/')}/*.txt'")
    unreadable = [f for f in files if not os.access(f, os.R_OK)]
    if unreadable:
        more = f" and {len(unreadable) - 1} more files" if len(unreadable) > 1 else ""
        raise SeqkitError(f"data.path: cannot read '{unreadable[0]}'{more} (permission denied)")
    return files


@seqkit.hookimpl
def register_datasets(register):
    register("text", TextFiles)
