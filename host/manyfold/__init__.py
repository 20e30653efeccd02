"""Manyfold: graph-shaped embedded and edge systems, authored in Python.

The package is organised by layer (see README.md, "Layout"):

- ``manyfold.framing``: the v1 wire frame layer (COBS + CRC-32C), run by the Rust core.
- ``manyfold.links``: in-memory links and seeded fault injection for tests and demos.
- ``manyfold.cli``: the ``manyfold`` command (one module per command group, on top of the
  library: nothing below it imports it).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("manyfold")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"

__all__ = ["__version__"]
