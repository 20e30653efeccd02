"""Shared test setup: the independent protocol oracles (``runtime_nostd/vectors/oracle.py`` for
link v1, ``oracle_v11.py`` for v1.1) sit next to the vector generator, outside the package; the
tests import them as ``oracle`` and ``oracle_v11``."""

from __future__ import annotations

import sys
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "runtime_nostd" / "vectors"
if str(VECTORS) not in sys.path:
    sys.path.insert(0, str(VECTORS))
