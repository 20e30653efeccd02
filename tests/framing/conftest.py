"""Fixtures for frame tests: the shared vectors and the reference codec."""

from __future__ import annotations

import json

import pytest
from framekit import ROOT, reference_codec


@pytest.fixture(scope="session")
def vectors() -> dict:
    return json.loads((ROOT / "framing" / "vectors" / "vectors.json").read_text())


@pytest.fixture(scope="session")
def reference():
    return reference_codec()
