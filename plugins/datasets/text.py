"""``text``: any UTF-8 file, or every file matching a glob (concatenated in sorted order)."""
import glob
from pathlib import Path

import seqkit
from seqkit import Dataset, Option

from seqkit.plugins.datasets._text_files import join_texts, read_text_file


class TextFiles(Dataset):
    options = {
        "path": Option(type=str, help="a UTF-8 text file or a glob such as 'books/*.txt'"),
        "max_chars": Option(0, min=0, help="keep only the first N characters; 0: all"),
    }

    def load(self) -> str:
        pattern = self.config.get("path")
        if not pattern:
            raise seqkit.SeqkitError("data.path: the text dataset needs a file or glob, "
                                     "e.g. --set data.path=corpus.txt")
        pattern = str(Path(pattern).expanduser())
        if glob.has_magic(pattern):
            files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
            if not files:
                raise seqkit.SeqkitError(f"{pattern}: no files match this glob (data.path)")
        else:
            files = [Path(pattern)]
            if not files[0].exists():
                raise seqkit.SeqkitError(f"{pattern}: no such file (data.path)")
            if files[0].is_dir():
                raise seqkit.SeqkitError(f"{pattern}: is a folder; give a file or a glob such as "
                                         f"'{pattern.rstrip('/')}/*.txt' (data.path)")
        text = join_texts([read_text_file(f) for f in files], self.config.get("max_chars", 0))
        if not text.strip():
            raise seqkit.SeqkitError(f"{pattern}: the text is empty (data.path)")
        return text


@seqkit.hookimpl
def register_datasets(register):
    register("text", TextFiles)
