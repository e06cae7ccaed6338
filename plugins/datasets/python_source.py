"""``python-source``: the standard library's own top-level ``.py`` files (about 4.7 MB on 3.11)."""
import sysconfig
from pathlib import Path

import seqkit
from seqkit import Dataset, Option
from seqkit.contracts import read_text_file
from seqkit.plugins.datasets._text_files import join_texts


class PythonSource(Dataset):
    options = {"max_chars": Option(0, min=0, help="keep only the first N characters; 0: all")}

    def load(self) -> str:
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        files = sorted(stdlib.glob("*.py"))  # sorted: the same order, so the same split, everywhere
        if not files:
            raise seqkit.SeqkitError(f"{stdlib}: no .py files found in the standard library folder")
        return join_texts([read_text_file(f) for f in files], self.config.get("max_chars", 0))


@seqkit.hookimpl
def register_datasets(register):
    register("python-source", PythonSource)
