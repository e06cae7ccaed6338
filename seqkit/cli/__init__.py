"""The ``seqkit`` command line: one module per command, each with ``add_parser`` and ``command``.

Input errors print one line each and exit with status 2; ``--debug`` (or ``SEQKIT_DEBUG=1``) shows
the traceback instead. The library never imports this package.
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import warnings

from seqkit.cli import decode, eval, export, plot, plugins, prepare, probe, run, runs, serve, show, validate
from seqkit.cli._common import EXIT_INPUT_ERROR, common_parser, one_line_warning
from seqkit.distributed import is_main
from seqkit.errors import RunInterrupted, SeqkitError
from seqkit.plugin_errors import component_at_fault
from seqkit.version import __version__

COMMANDS = (validate, prepare, run, decode, eval, export, serve, probe, runs, plot, plugins, show)
EXIT_BROKEN_PIPE = 1  # as rich's console exits on a broken pipe, and Python's docs on SIGPIPE advise


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="seqkit", parents=[common],
        description="Recurrent sequence models from YAML recipes: cells, decoders and tasks as plugins.")
    parser.add_argument("--version", action="version", version=f"seqkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub, common)
    return parser


def _stdout_to_devnull() -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout is no file (a test's capture)
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("SEQKIT_DEBUG", "") not in ("", "0")
    if debug:  # what seqkit decides on the way, such as the kernels it measured (seqkit.nn.kernels)
        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger("seqkit").setLevel(logging.DEBUG)
    else:
        warnings.showwarning = one_line_warning
    try:
        return args.func(args)
    except SeqkitError as exc:
        if debug:
            raise
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INPUT_ERROR
    except RunInterrupted as exc:
        if is_main():  # every process stopped after the same step: one says so
            print(exc, file=sys.stderr)
        return 128 + exc.signal_number
    except KeyboardInterrupt:
        print("seqkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped reading (seqkit ... | head): nothing is wrong, nothing more to say.
        # stdout goes to devnull so that Python's flush at exit does not fail on the pipe again.
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if debug:
            raise
        culprit = component_at_fault(exc)
        if culprit is None:  # seqkit's own bug: the traceback is what a report needs
            raise
        print(f"seqkit {args.command}: {culprit}; run with --debug for the traceback", file=sys.stderr)
        return EXIT_INPUT_ERROR


if __name__ == "__main__":
    sys.exit(main())
