"""The one exception type for problems a user can fix (bad recipe, unknown plugin, bad file)."""


class SeqkitError(Exception):
    """One or more input problems, each a single line; the CLI prints them and exits with 2."""

    def __init__(self, *problems: str):
        self.problems = [p for p in problems if p]
        super().__init__("\n".join(self.problems))


class MissingPackage(SeqkitError):
    """An optional package a component needs is not installed. ``install`` is the command that
    brings it, for callers that say it in their own words (``seqkit eval`` has no ``--set``)."""

    def __init__(self, problem: str, package: str, install: str):
        super().__init__(problem)
        self.package, self.install = package, install


class SeqkitWarning(UserWarning):
    """Something the user should know that does not stop the command; the CLI prints one line."""


class PluginWarning(SeqkitWarning):
    """A third-party plugin failed to load; the rest of seqkit still works."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after checkpointing its current step.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C still stops; the CLI prints the
    message and exits with 128 + the signal's number (130, 143), as a shell reports a signal.
    """

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number
