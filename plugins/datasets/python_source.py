"""``python-source``: the standard library's own top-level ``.py`` files (about 4.7 MB on 3.11)."""
import sysconfig
from pathlib import Path

import seqkit
from seqkit import Dataset, Option
from seqkit.plugins.datasets._text_files import files_identity, stream_joined
from seqkit.text_files import stream_text_file


class PythonSource(Dataset):
    options = {"max_chars": Option(0, min=0, help="keep only the first N characters; 0: all")}

    def load(self) -> str:
        return "".join(self.texts())

    def texts(self):
        return stream_joined(map(stream_text_file, _files()), self.config.get("max_chars", 0))

    def identity(self) -> dict:
        return {"dataset": "python-source", "files": files_identity(_files()),
                "max_chars": self.config.get("max_chars", 0)}


def _files() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))  # sorted: the same order, so the same split, everywhere
    if not files:
        raise seqkit.SeqkitError(f"{stdlib}: no .py files found in the standard library folder")
    return files


@seqkit.hookimpl
def register_datasets(register):
    register("python-source", PythonSource)
