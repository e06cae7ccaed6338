"""Kept for scripts written against seqkit 0.1, which imported the run functions from here; they
live in ``seqkit.training.run`` (``seqkit.load_run`` is the Python API's)."""
from seqkit.training.run import LoadedRun, load_run, resume_run, start_run

__all__ = ["LoadedRun", "load_run", "resume_run", "start_run"]
