"""Every catalog contract at fault_tested or beyond handles each of the six failures with tests that exist, or declares it outside its profile."""

from __future__ import annotations

from primkit import ROOT

from manyfold import catalog
from manyfold.primitives import Failure, Family, Layer, Maturity, Primitive, handled, outside_profile
from manyfold.primitives.coverage import coverage_problems, find_test


def test_catalog_failure_coverage_is_backed_by_tests():
    """For each contract at fault_tested or more, all six failures are spoken to and every named test exists."""
    problems = [p for c in catalog.all() for p in coverage_problems(c, ROOT)]
    assert problems == []


def test_named_tests_of_every_contract_exist():
    """Tests named by contracts below fault_tested exist too (a rename cannot leave a contract pointing nowhere)."""
    named = [(c.name, t) for c in catalog.all() for _, said in c.coverage() for t in getattr(said, "tests", ())]
    assert named, "some contract names a test"
    assert [(name, t, find_test(t, ROOT)) for name, t in named if find_test(t, ROOT)] == []


def _installer(ctx, **policies):
    raise AssertionError("not called")


def test_the_check_finds_missing_tests():
    """A handled failure naming a missing file or function is reported, so the walk above can fail."""
    c = Primitive.define(
        name="Flaky", version=1, family=Family.HANDOFF, layer=Layer.DURABLE, summary="A flaky thing.", maturity=Maturity.FAULT_TESTED,
        installer=_installer,
        failures={
            **{f: outside_profile("not here") for f in Failure},
            Failure.CRASH: handled("replays", tests=("tests/primitives/test_failure_coverage.py::test_no_such_test",)),
            Failure.DUPLICATE: handled("dedups", tests=("tests/nowhere/test_x.py::test_y", "no_separator")),
        },
    )
    problems = coverage_problems(c, ROOT)
    assert problems == [
        "Flaky: crash is proved by tests/primitives/test_failure_coverage.py::test_no_such_test, but tests/primitives/test_failure_coverage.py defines no test test_no_such_test",
        "Flaky: duplicate is proved by tests/nowhere/test_x.py::test_y, but tests/nowhere/test_x.py does not exist",
        "Flaky: duplicate is proved by no_separator, but 'no_separator' is not of the form tests/path.py::test_name",
    ]


def test_parametrized_and_class_test_ids_are_found():
    """Test ids with a class or parameters resolve to the function they name."""
    assert find_test("tests/primitives/test_failure_coverage.py::TestX::test_the_check_finds_missing_tests[a-b]", ROOT) is None
