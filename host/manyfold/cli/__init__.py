"""The ``manyfold`` command (``manyfold.cli:main``; ``python -m manyfold`` runs it too).

Layout: one module per job, and the library underneath knows nothing of them (no module of
``manyfold.devices``, ``manyfold.manifest`` or ``manyfold.query`` imports ``manyfold.cli``):

- ``main``: the parser (each group registers its subcommands) and :func:`main`;
- ``errors``: :class:`CliError`, and how errors become one sentence and an exit code;
- ``arguments``: argparse types (rates, ports, seconds);
- ``render``: terminal output: consoles as wide as the terminal, tables whose names wrap
  between words;
- ``demo_cmds``: ``demo``; ``manifest_cmds``: ``compile``, ``validate``, ``diff``, ``show``,
  ``graph``; ``cluster_cmds``: ``plan``, ``up``, ``node``; ``board_cmds``: ``boards``, ``flash``; ``device_cmds``: ``query``, ``ports``,
  ``footprint``; ``monitor_cmds``: ``monitor``; ``catalog_cmds``: ``catalog``.
"""

from manyfold.cli.errors import CliError
from manyfold.cli.main import build_parser, main

__all__ = ["CliError", "build_parser", "main"]
