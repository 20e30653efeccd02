"""How a command's problems reach the user: one sentence on stderr, and an exit code.

- A problem the user can fix is one sentence, ``manyfold COMMAND: ...``, and exit code 2
  (:data:`EXIT_USAGE`), never a traceback. Commands raise :class:`CliError` for what they check
  themselves; the library's own errors that name the offending object in one sentence (a graph,
  manifest or board error, a port that does not open, a query the device cannot answer, a
  names file that cannot be read: :func:`user_errors`) are reported the same way. argparse
  reports bad arguments the same way too (exit 2).
- A command that ran and says "no" (a manifest with problems, an incompatible diff, a frame
  demo that accepted a corrupted reading) returns 1 (:data:`EXIT_FAILED`).
- Ctrl-C prints ``interrupted`` and exits 130; a reader that went away (``manyfold ... | head``)
  ends the command quietly with 0.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A problem with the user's input, reported as one sentence without a traceback."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors reported as a sentence: :class:`CliError`, and the library errors whose
    message names the offending object."""
    from manyfold.devices.ports import PortError
    from manyfold.devices.queries import QueryError, RouteNamesError
    from manyfold.graph.errors import GraphError  # BoardError and ManifestError too

    return (CliError, GraphError, PortError, QueryError, RouteNamesError)


def message(command: str, error: BaseException) -> str:
    """The line printed for ``error`` in ``command``."""
    return f"manyfold {command}: {error}"


def run(command: str, func: Callable[[], int]) -> int:
    """Runs a command and turns what it raises into a message and an exit code (module docs)."""
    try:
        return func()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`manyfold ... | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except user_errors() as error:  # evaluated only when something was raised
        print(message(command, error), file=sys.stderr)
        return EXIT_USAGE


__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "CliError", "message", "run", "user_errors"]
