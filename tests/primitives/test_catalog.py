"""The catalog: seven families at honest maturity, docs/catalog.md generated from it, and `manyfold catalog`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from primkit import ROOT

from manyfold import catalog
from manyfold.catalog.docs import REGENERATE, render_markdown
from manyfold.primitives import Family, Maturity, PrimitiveError


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=120)


def test_every_family_has_contracts_and_names_are_unique():
    """Each of the seven families holds contracts; all() lists each name once, by family."""
    names = [c.name for c in catalog.all()]
    assert len(names) == len(set(names))
    for family in Family:
        assert catalog.family(family), family
    order = [list(Family).index(c.family) for c in catalog.all()]
    assert order == sorted(order)


def test_existing_operators_are_executable_and_the_rest_named():
    """The built-in operators are executable contracts with installers; the vision's distributed primitives are named only."""
    for name in ("Mailbox", "Capacitor", "Resistor", "RateLimiter", "Sample", "Resequencer", "CountWindow", "TimeWindow",
                 "Join", "WriteBinding", "Repair", "Deadband", "Threshold", "Scale"):
        c = catalog.get(name)
        assert c.maturity == Maturity.EXECUTABLE and c.installer is not None and c.kinds, name
    for name in ("Lease", "Quorum", "LeaderElection", "Consensus", "ShardMap", "Replicator", "Heartbeat", "RolloutController"):
        c = catalog.get(name)
        assert c.named_only and c.maturity == Maturity.NAMED and c.requires and c.provides, name


def test_every_contract_says_what_it_requires_or_provides():
    """No contract is an empty name: each has a summary sentence and provides something."""
    for c in catalog.all():
        assert c.summary.endswith(".") and c.provides, c.name


def test_an_unknown_name_suggests_near_misses():
    """catalog.get of a misspelt name is a sentence with suggestions."""
    with pytest.raises(PrimitiveError, match="no primitive called 'Resister'; did you mean Resistor"):
        catalog.get("Resister")
    with pytest.raises(PrimitiveError, match="family must be one of"):
        catalog.family("plumbing")


def test_registering_another_contract_with_a_taken_name_is_refused():
    """Two contracts with one name cannot both join the catalog."""
    import dataclasses

    twin = dataclasses.replace(catalog.get("Resistor"), summary="Another.")
    with pytest.raises(PrimitiveError, match="already has a contract called Resistor"):
        catalog.register(twin)


def test_docs_catalog_is_current():
    """docs/catalog.md is exactly what the contracts render to."""
    path = ROOT / "docs" / "catalog.md"
    assert path.read_text() == render_markdown(catalog.all()), f"docs/catalog.md is out of date with the contracts; regenerate it: {REGENERATE}"


def test_docs_describe_each_installable_contract():
    """The rendered page has a section per installable contract with its policies and failures."""
    text = render_markdown(catalog.all())
    assert "### Resistor" in text and "| `min_interval_us` | int | required |" in text
    assert "### Lease" not in text and "| Lease | distributed | named |" in text
    assert "| retry | retries only with a declared idempotency boundary" in text


def test_cli_markdown_is_the_docs_page():
    """`manyfold catalog --markdown` prints docs/catalog.md (how it is regenerated)."""
    result = run("catalog", "--markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "docs" / "catalog.md").read_text()


def test_cli_json_and_family():
    """`manyfold catalog --json --family coordination` lists that family's contracts with every field."""
    result = run("catalog", "--json", "--family", "coordination")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["primitives"]
    assert {p["family"] for p in data} == {"coordination"} and "Lease" in [p["name"] for p in data]
    lease = next(p for p in data if p["name"] == "Lease")
    assert lease["maturity"] == "named" and "FencingToken" in lease["requires"]


def test_cli_table_lists_families_and_refuses_bad_arguments():
    """The table names each family and its contracts; an unknown family or two formats is a sentence (exit 2)."""
    result = run("catalog")
    assert result.returncode == 0, result.stderr
    for family in Family:
        assert family.value in result.stdout
    assert "Resistor" in result.stdout and "Traceback" not in result.stdout
    bad = run("catalog", "--json", "--markdown")
    assert bad.returncode == 2 and bad.stderr.strip() == "manyfold catalog: give --json or --markdown, not both"
    assert run("catalog", "--family", "plumbing").returncode == 2


def test_docstring_examples_run():
    """The examples at the top of manyfold.primitives and manyfold.catalog are true."""
    import doctest

    import manyfold.primitives

    for module in (manyfold.primitives, catalog):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
