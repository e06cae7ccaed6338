"""What the tokenizer tests share: real text, odd Unicode, and a save through torch."""
from __future__ import annotations

import functools
import io

import numpy as np
import torch

# Texts whose round trip is easy to get wrong: astral emoji with a skin tone and a zero-width
# joiner, combining marks (decomposed and composed), CRLF and lone CR, tabs and odd spaces,
# right-to-left and CJK text, control characters, and nothing at all.
ODD_TEXTS = [
    "",
    "héllo wörld: e\u0301 vs \u00e9, ñ vs n\u0303",
    "thumbs 👍🏽 family 👨\u200d👩\u200d👧 flag 🇫🇷!",
    "line one\r\nline two\rline three\n\n\ttabbed\u00a0nbsp\u2003em space  ",
    "Ελληνικά ΟΔΟΣ, العربية, 日本語のテキスト, 한국어",
    "\x00\x01\x7f control <s> not special </s> <pad>",
    "   ",
]


@functools.cache
def python_text() -> str:
    """About 0.7 MB of real English and Python: pydoc's topics (imported here only: it is big)."""
    from pydoc_data.topics import topics

    return "".join(topics[key] for key in sorted(topics))


def saved_and_loaded(state):
    """``state`` through torch.save and torch.load(weights_only=True), as a checkpoint holds it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def random_unicode(rng: np.random.Generator, n: int) -> str:
    """``n`` characters: mostly ASCII, some Latin-1, Greek, CJK, emoji and whitespace."""
    pools = [range(0x20, 0x7f), range(0xa0, 0x100), range(0x391, 0x3ca), range(0x4e00, 0x4e40),
             range(0x1f600, 0x1f640), [0x9, 0xa, 0xd, 0x2028, 0x3000, 0xfffd]]
    weights = np.array([0.7, 0.1, 0.08, 0.04, 0.03, 0.05])
    picks = rng.choice(len(pools), size=n, p=weights)
    return "".join(chr(pools[p][rng.integers(len(pools[p]))]) for p in picks)
