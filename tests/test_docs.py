"""The Python examples in docs/*.md run as written (each page's blocks in order, one namespace)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run(page):
    """Every ```python block of the page executes without error, top to bottom."""
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert blocks
    # A real module, so dataclasses defined in the examples can resolve their annotations.
    module = types.ModuleType(f"docs_{page.stem}")
    sys.modules[module.__name__] = module
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"{page.name}[block {i}]", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
