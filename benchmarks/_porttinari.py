"""The Porttinari treebank (UD Portuguese news, CC BY 4.0: 8,420 sentences, 168k words, gold UPOS),
as shipped by the PyPI package ``dante-corpora`` (MIT), split into train / dev / test by document.

An optional benchmark dependency, never a seqkit one: ``pip install --no-deps dante-corpora==2.0.5``
(143 MB of corpora; ``--no-deps`` skips its unrelated requirements). The file is found through the
package's import location without importing it.

Sentence ids read ``# sent_id = FOLHA_DOC000001_SENT003``: the document is what comes before
``_SENT``. A document goes to train, dev or test (80/10/10) by the CRC-32 of its id, so sentences
of one article never straddle splits and the split never moves between runs or machines.
"""
from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path

INSTALL_HINT = "pip install --no-deps dante-corpora==2.0.5"
TREEBANK = ("data", "porttinari", "annotated.conllu")  # inside the package folder
SPLITS = ("train", "dev", "test")


def treebank_file() -> Path | None:
    """The installed ``annotated.conllu`` of Porttinari, or None when dante-corpora is missing."""
    spec = importlib.util.find_spec("dante")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder).joinpath(*TREEBANK)
        if path.is_file():
            return path
    return None


def document_of(block: str) -> str:
    """The document id of one CoNLL-U sentence block: its sent_id up to ``_SENT``."""
    for line in block.splitlines():
        if line.startswith("# sent_id"):
            sentence_id = line.split("=", 1)[1].strip()
            return sentence_id.rsplit("_SENT", 1)[0]
    raise ValueError(f"a sentence without '# sent_id': {block.splitlines()[:2]}")


def split_of(document: str) -> str:
    bucket = zlib.crc32(document.encode()) % 10
    return "train" if bucket < 8 else ("dev" if bucket == 8 else "test")


def split_by_document(text: str) -> dict[str, list[str]]:
    """The sentence blocks of a CoNLL-U text (comments kept), in file order, per split."""
    splits = {split: [] for split in SPLITS}
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if any(line and not line.startswith("#") for line in block.splitlines()):
            splits[split_of(document_of(block))].append(block.strip("\n"))
    return splits


def write_splits(folder: Path, max_sentences: int = 0) -> dict[str, Path]:
    """CoNLL-U files of Porttinari in ``folder``: ``train``, ``dev`` and ``test`` (with
    ``max_sentences`` > 0, only the first sentences of each: a smoke run), and ``held-out``, every
    dev and test sentence whatever ``max_sentences``. Raises FileNotFoundError without the package."""
    source = treebank_file()
    if source is None:
        raise FileNotFoundError(f"the Porttinari treebank needs the dante-corpora package: {INSTALL_HINT}")
    splits = split_by_document(source.read_text(encoding="utf-8"))
    files = {split: blocks[:max_sentences] if max_sentences else blocks for split, blocks in splits.items()}
    files["held-out"] = splits["dev"] + splits["test"]
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, blocks in files.items():
        paths[name] = folder / f"{name}.conllu"
        paths[name].write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return paths
