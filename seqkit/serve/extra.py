"""The serve extra's packages (starlette, uvicorn): whether they are installed, and how to install them."""
from __future__ import annotations

import importlib.util

PACKAGES = ("starlette", "uvicorn")
INSTALL = 'pip install -e ".[serve]" (or pip install "seqkit[serve]")'


def missing_packages() -> list[str]:
    """The serve extra's packages that cannot be imported; found, not imported."""
    missing = []
    for package in PACKAGES:
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):  # a broken install, or a module set to None in sys.modules
            found = False
        if not found:
            missing.append(package)
    return missing


def install_hint(missing: list[str]) -> str:
    """'seqkit serve needs starlette and uvicorn, which are not installed: pip install ...'."""
    verb = "is" if len(missing) == 1 else "are"
    return f"seqkit serve needs {' and '.join(missing)}, which {verb} not installed: {INSTALL}"
