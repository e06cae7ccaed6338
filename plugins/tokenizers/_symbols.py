"""What the symbol-list tokenizers (``char``, ``whitespace``) share: a stored list of symbols is
accepted only if it starts with the symbols the task asked for, so ids never shift silently."""
from __future__ import annotations

import seqkit


def checked_symbols(kind: str, state: dict, leading: tuple[str, ...]) -> list[str]:
    """``state["symbols"]``, which must start with ``leading`` (the task's specials, the unknown)."""
    symbols = list(state["symbols"])
    if tuple(symbols[:len(leading)]) != leading:
        raise seqkit.SeqkitError(f"a {kind} vocabulary starts with {list(leading)}; this one starts with "
                                 f"{symbols[:len(leading)]}")
    return symbols
