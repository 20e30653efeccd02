"""Shared helpers for frame tests: the repository root and the independent reference codec."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def load_module(path: Path, name: str):
    """Import a script that is not part of the package (generators, examples) by path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def reference_codec():
    """The independent reference codec (the `cobs` package + crcmod) from the vector generator."""
    return load_module(ROOT / "framing" / "vectors" / "generate.py", "frame_vector_generator")
