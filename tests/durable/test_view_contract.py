"""The MaterializedView contract: installed from the catalog into a graph with a store
directory, recorded in the manifest with its stores, validated clean, and refused without a
store directory."""

from __future__ import annotations

import pytest
from viewkit import SOURCE, Reading, reading

from manyfold import catalog, manifest
from manyfold.graph import Graph, StoreError
from manyfold.primitives import Maturity


def test_the_view_installs_from_its_contract_and_validates(tmp_path):
    """install() builds the materialized_view node and declares its two stores; the manifest
    records the instance and validates with no finding; the installed view keeps state."""
    g = Graph(store_dir=tmp_path)
    src = g.route(SOURCE, Reading)
    contract = catalog.get("MaterializedView")
    assert contract.maturity is Maturity.FAULT_TESTED
    installed = contract.install(g, "latest", source=src, key="sensor", snapshot_every=10)
    assert [n.kind for n in installed.nodes] == ["materialized_view"]
    m = manifest.compile(g)
    (record,) = m.primitives
    assert (record.contract, record.policies["key"], record.policies["sync"]) == ("MaterializedView", "sensor", "full")
    assert [(s.name, s.kind, s.sync) for s in record.stores] == [("latest.updates", "EventLog", "full"), ("latest.view", "SnapshotStore", "full")]
    assert manifest.validate(m) == []
    g.publish(SOURCE, reading(1), producer=g.producer("probe"))
    assert g.view("latest").get("s1") == reading(1)
    assert (tmp_path / "latest.sqlite").exists()


def test_installing_without_a_store_directory_is_one_sentence():
    """The graph has no store directory: the install fails with the contract's sentence."""
    g = Graph()
    src = g.route(SOURCE, Reading)
    with pytest.raises(StoreError, match="keeps durable state: give the graph a store directory"):
        catalog.get("MaterializedView").install(g, "latest", source=src, key="sensor")
