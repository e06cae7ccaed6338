"""``python-docs``: the English reference text shipped with every CPython (``pydoc_data.topics``).

About 465 kB of prose and code examples; no download, so the default recipe runs offline.
"""
from pathlib import Path

import seqkit
from seqkit import Dataset, Option
from seqkit.plugins.datasets._text_files import files_identity, join_texts


class PythonDocs(Dataset):
    options = {"max_chars": Option(0, min=0, help="keep only the first N characters; 0: all")}

    def load(self) -> str:
        from pydoc_data.topics import topics  # 0.7 MB of text: read with the data, not at plugin load

        # sorted topic names: the same text on every machine with this Python version
        return join_texts([topics[name] for name in sorted(topics)], self.config.get("max_chars", 0))

    def identity(self) -> dict:
        import pydoc_data.topics  # the module's file says which text this Python ships

        return {"dataset": "python-docs", "files": files_identity([Path(pydoc_data.topics.__file__)]),
                "max_chars": self.config.get("max_chars", 0)}


@seqkit.hookimpl
def register_datasets(register):
    register("python-docs", PythonDocs)
