"""The ``seqkit`` command line. Input errors print one line each and exit with status 2."""
from __future__ import annotations

import argparse
import io
import os
import sys
import warnings

from seqkit.distributed import is_main
from seqkit.errors import RunInterrupted, SeqkitError, SeqkitWarning

EXIT_INPUT_ERROR = 2
EXIT_BROKEN_PIPE = 1  # as rich's console exits on a broken pipe, and Python's docs on SIGPIPE advise


def _common() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks (also SEQKIT_DEBUG=1)")
    return parent


class _Override(argparse.Action):
    """``--set KEY=VALUE``, appended to ``overrides``. ``--set train.steps 100`` is refused here, in
    one line: argparse would only say that ``100`` is an unrecognized argument, after a usage."""

    def __call__(self, parser, namespace, value, option_string=None):
        from seqkit.recipe import override_problem

        problem = override_problem(value)
        if problem:
            parser.exit(EXIT_INPUT_ERROR, problem + "\n")
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), value])


def _recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action=_Override, default=[], metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set train.steps=100 (value parsed as YAML)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (overrides the recipe)")


def cmd_validate(args) -> int:
    from seqkit.recipe import load_recipe

    load_recipe(args.recipe, _overrides(args))
    print(f"{args.recipe}: ok")
    return 0


def cmd_run(args) -> int:
    from seqkit.run_cli import run_command

    return run_command(args, _overrides(args))


def cmd_decode(args) -> int:
    from seqkit.decode_cli import decode_command

    return decode_command(args)


def _overrides(args) -> list[str]:
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "device", None):
        overrides.append(f"device={args.device}")
    return overrides


def build_parser() -> argparse.ArgumentParser:
    from seqkit import __version__

    common = _common()
    parser = argparse.ArgumentParser(
        prog="seqkit", parents=[common],
        description="Recurrent sequence models from YAML recipes: cells, decoders and tasks as plugins.")
    parser.add_argument("--version", action="version", version=f"seqkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", parents=[common], help="check a recipe without running it")
    p.add_argument("recipe")
    _recipe_args(p)
    p.set_defaults(func=cmd_validate)

    from seqkit.run_cli import add_run_parser

    add_run_parser(sub, common, _recipe_args)
    sub.choices["run"].set_defaults(func=cmd_run)

    from seqkit.decode_cli import add_decode_parser

    add_decode_parser(sub, common).set_defaults(func=cmd_decode)

    from seqkit.eval_cli import add_eval_parser, eval_command

    add_eval_parser(sub, common).set_defaults(func=eval_command)

    from seqkit.export_cli import add_export_parser, export_command

    add_export_parser(sub, common).set_defaults(func=export_command)

    from seqkit.probe_cli import add_probe_parser, probe_command

    add_probe_parser(sub, common).set_defaults(func=probe_command)

    from seqkit.runs_cli import add_runs_parser, runs_command

    add_runs_parser(sub, common).set_defaults(func=runs_command)

    from seqkit.plot_cli import add_plot_parser, plot_command

    add_plot_parser(sub, common).set_defaults(func=plot_command)

    from seqkit.plugins_cli import add_plugins_parser, plugins_command

    add_plugins_parser(sub, common).set_defaults(func=plugins_command)

    from seqkit.show_cli import add_show_parser, show_command

    add_show_parser(sub, common).set_defaults(func=show_command)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    prefix = "seqkit: warning: " if issubclass(category, SeqkitWarning) else f"{category.__name__}: "
    print(prefix + str(message).replace("\n", " "), file=sys.stderr)


def _stdout_to_devnull() -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout is no file (a test's capture)
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("SEQKIT_DEBUG", "") not in ("", "0")
    if not debug:
        warnings.showwarning = _one_line_warning
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
        from seqkit.plugin_errors import component_at_fault

        culprit = component_at_fault(exc)
        if culprit is None:  # seqkit's own bug: the traceback is what a report needs
            raise
        print(f"seqkit {args.command}: {culprit}; run with --debug for the traceback", file=sys.stderr)
        return EXIT_INPUT_ERROR


if __name__ == "__main__":
    sys.exit(main())
