"""The one way a script under ``tools/`` reports bad input: one line, no traceback.

The package raises errors that name the file, the field and the fix
(``ValueError``, ``KeyError``, ``FileNotFoundError``, ...). A command line
prints that message as one line on stderr and exits with
:data:`ERROR_EXIT_CODE`; with ``--debug`` it re-raises, so the traceback shows.
Standard library only: the light evaluation CLI uses it too.

Typical use at the bottom of a tool::

    if __name__ == '__main__':
        run_cli(main)

where ``main(argv)`` parses its arguments with a parser that went through
:func:`add_debug_argument`.
"""

import argparse
import os.path as osp
import sys
from typing import Callable, Optional, Sequence

#: The flag that turns the one-line message back into a traceback.
DEBUG_FLAG = '--debug'
#: Exit status of a run that stopped on an error (argparse's own usage errors exit 2).
ERROR_EXIT_CODE = 1


def add_debug_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--debug`` (show the traceback of an error) to a tool's parser; returns it."""
    parser.add_argument(
        DEBUG_FLAG,
        action='store_true',
        help='on an error, show the full traceback instead of the one-line message',
    )
    return parser


def error_message(error: BaseException) -> str:
    """The text of an error as one line: ``KeyError``'s quotes dropped, lines joined with ' | '."""
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    else:
        text = str(error)
    text = text or type(error).__name__
    return ' | '.join(line.strip() for line in text.splitlines() if line.strip())


def run_cli(
    main: Callable[[Optional[Sequence[str]]], object],
    argv: Optional[Sequence[str]] = None,
    prog: Optional[str] = None,
) -> None:
    """Run ``main(argv)``; on an error print ``PROG: error: MESSAGE`` and exit non-zero.

    Args:
        main: the tool's entry point, called with ``argv``.
        argv: the arguments (default: ``sys.argv[1:]``).
        prog: the name printed before the message (default: the script's file name).

    ``KeyboardInterrupt`` and ``SystemExit`` (argparse's usage errors) pass
    through unchanged; with ``--debug`` among the arguments every error does.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        main(argv)
    except Exception as error:  # every error of the run: the package's messages name the fix
        if DEBUG_FLAG in argv:
            raise
        name = prog or osp.basename(sys.argv[0] or 'tool')
        print(
            f'{name}: error: {error_message(error)} (rerun with {DEBUG_FLAG} for the traceback)',
            file=sys.stderr,
        )
        sys.exit(ERROR_EXIT_CODE)
