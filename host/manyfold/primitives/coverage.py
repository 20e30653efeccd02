"""Whether a contract backs what it says about failures: each handled failure names tests that
exist (the file is there and defines the test function), and a contract at ``fault_tested`` or
beyond speaks to all six failures."""

from __future__ import annotations

import re
from pathlib import Path

from manyfold.primitives.contract import Primitive
from manyfold.primitives.enums import Maturity
from manyfold.primitives.parts import Handled, OutsideProfile


def find_test(test_id: str, root: Path) -> str | None:
    """None when ``path.py::test_name`` (or ``path.py::Class::test_name[param]``) names a test
    function defined in that file under ``root``; else why not, in a sentence."""
    path, sep, rest = test_id.partition("::")
    if not sep or not rest:
        return f"{test_id!r} is not of the form tests/path.py::test_name"
    file = root / path
    if not file.is_file():
        return f"{path} does not exist"
    name = rest.split("::")[-1].split("[", 1)[0]
    if not re.search(rf"^\s*(async\s+)?def {re.escape(name)}\(", file.read_text(), flags=re.M):
        return f"{path} defines no test {name}"
    return None


def coverage_problems(contract: Primitive, root: Path) -> list[str]:
    """What is wrong with ``contract``'s failure coverage, one sentence each (empty: nothing)."""
    out = []
    for failure, said in contract.coverage():
        if said is None:
            if contract.maturity >= Maturity.FAULT_TESTED:
                out.append(f"{contract.name}: says nothing about {failure.value}")
        elif isinstance(said, Handled):
            if not said.tests and contract.maturity >= Maturity.FAULT_TESTED:
                out.append(f"{contract.name}: handles {failure.value} without naming a test")
            for test in said.tests:
                why = find_test(test, root)
                if why:
                    out.append(f"{contract.name}: {failure.value} is proved by {test}, but {why}")
        elif not isinstance(said, OutsideProfile) or not said.why.strip():
            out.append(f"{contract.name}: declares {failure.value} outside its profile without saying why")
    return out


__all__ = ["coverage_problems", "find_test"]
