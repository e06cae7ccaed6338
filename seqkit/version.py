"""seqkit's version, as installed (a leaf: the registry stamps built-in plugins with it)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("seqkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
