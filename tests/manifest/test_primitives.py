"""Primitive instances in manifests: records, ids, validation findings, diff and drawing."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from manifestkit import GOLDEN, small_graph

from manyfold import catalog, manifest
from manyfold.graph import FLOAT, Graph
from manyfold.graph.errors import ManifestError
from manyfold.manifest import Manifest, PrimitiveRecord, StoreRecord
from manyfold.primitives import Family, Layer, Maturity, Policy, Port, Primitive, State, StateKind
from manyfold.primitives.validate import check_manifest

TEMP = "read.logical.sensor.env.temperature.event.v1"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manyfold", *args], capture_output=True, text=True, timeout=120, **kwargs)


def installed_graph() -> Graph:
    g = Graph()
    g.route(TEMP, FLOAT)
    catalog.get("Resistor").install(g, "slow_temp", source=TEMP, min_interval_us=1000)
    catalog.get("WriteBinding").install(g, "heater", owner="heater", family="env", stream="setpoint", schema=float, retry_max=2,
                                        retry_interval_us=1000, idempotency="absolute_value")  # fmt: skip
    return g


def replace_record(m: Manifest, instance: str, **changes) -> Manifest:
    records = tuple(dataclasses.replace(p, **changes) if p.instance == instance else p for p in m.primitives)
    return dataclasses.replace(m, primitives=records)


def test_a_graph_without_primitives_keeps_its_manifest_and_id():
    """No primitives: no `primitives` key, so the manifest (and id) equals the golden one from before primitives existed."""
    m = manifest.compile(small_graph())
    assert "primitives" not in m.to_data() and m.primitives == ()
    assert m.to_json() == (GOLDEN / "small.json").read_text()
    assert Manifest.from_json((GOLDEN / "small.json").read_text()).id == m.id


def test_records_are_sorted_and_round_trip():
    """Records are sorted by instance, carry contract, version, layer, maturity, policies and parts, and survive JSON and CBOR."""
    m = manifest.compile(installed_graph())
    assert [p.instance for p in m.primitives] == ["heater", "slow_temp"]
    data = m.to_data()["primitives"][1]
    assert data == {
        "instance": "slow_temp", "contract": "Resistor", "version": 1, "layer": "local", "maturity": "executable",
        "policies": {"min_interval_us": 1000},
        "parts": {"nodes": ["slow_temp"], "routes": ["read.internal.slow_temp.env.temperature.event.v1"], "stores": []},
    }
    assert Manifest.from_json(m.to_json()) == m and Manifest.from_cbor(m.to_cbor()).id == m.id
    assert manifest.compile(manifest.load(m)).id == m.id


def test_a_malformed_record_is_a_sentence():
    """A record with a missing field or a bad store is refused with a ManifestError naming the instance."""
    data = json.loads(manifest.compile(installed_graph()).to_json())
    del data["primitives"][0]["version"]
    with pytest.raises(ManifestError, match="primitive heater has no field 'version'"):
        Manifest.from_data(data)
    data = json.loads(manifest.compile(installed_graph()).to_json())
    data["primitives"][0]["parts"]["stores"] = [{"name": "q", "kind": "EventLog", "sync": "sometimes"}]
    with pytest.raises(ManifestError, match="primitive heater: parts.stores\\[0\\]: sync must be full or normal"):
        Manifest.from_data(data)


def test_the_rust_loader_accepts_the_primitives_key():
    """The runtime builds a manifest with primitives (it ignores what it does not run)."""
    g = manifest.load(manifest.compile(installed_graph()))
    assert set(g.nodes) == {"slow_temp", "heater"} and set(g.primitives) == {"heater", "slow_temp"}


def test_installed_graphs_validate_clean():
    """Instances installed from the catalog pass every rule."""
    assert manifest.validate(manifest.compile(installed_graph())) == []


def _findings(m: Manifest, lookup=None) -> list[tuple[str, str, str]]:
    return [(f.check, f.instance, f.severity.value) for f in check_manifest(m, lookup)]


def test_an_unknown_contract_is_a_warning_and_validate_still_passes(tmp_path):
    """A contract the catalog does not know is reported as not checked, and `manyfold validate` exits 0 with the warning."""
    m = replace_record(manifest.compile(installed_graph()), "slow_temp", contract="Teleporter")
    assert _findings(m) == [("unknown_contract", "slow_temp", "warning")]
    path = tmp_path / "m.json"
    m.write(path)
    result = run("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "[unknown_contract] primitive slow_temp: contract Teleporter is not in this catalog: not checked (warning)" in result.stdout
    assert "1 warning(s)" in result.stdout


def test_an_unknown_contract_version_is_an_error(tmp_path):
    """A record of a contract version the catalog does not have fails validation with a sentence."""
    m = replace_record(manifest.compile(installed_graph()), "slow_temp", version=2)
    (finding,) = check_manifest(m)
    assert finding.check == "contract_version" and finding.message == "records Resistor version 2, but this catalog has version 1"
    path = tmp_path / "m.json"
    m.write(path)
    result = run("validate", str(path))
    assert result.returncode == 1 and "[contract_version] primitive slow_temp" in result.stdout


def test_policy_findings():
    """A missing required policy, an unknown one and a value of the wrong type are each found."""
    m = manifest.compile(installed_graph())
    assert _findings(replace_record(m, "slow_temp", policies={})) == [("missing_policy", "slow_temp", "error")]
    assert _findings(replace_record(m, "slow_temp", policies={"min_interval_us": 5, "speed": 1})) == [("unknown_policy", "slow_temp", "error")]
    (bad,) = check_manifest(replace_record(m, "slow_temp", policies={"min_interval_us": "fast"}))
    assert bad.check == "bad_policy" and bad.message == "policy min_interval_us must be int, got str 'fast'"


def test_part_findings():
    """Parts that are missing, of the wrong kind, or shared by two instances are found."""
    m = manifest.compile(installed_graph())
    assert _findings(replace_record(m, "slow_temp", nodes=("ghost",))) == [("missing_part", "slow_temp", "error")]
    assert _findings(replace_record(m, "slow_temp", nodes=("heater",))) == [("wrong_part", "slow_temp", "error"), ("shared_part", "slow_temp", "error")]


def test_a_write_binding_that_retries_without_idempotency_is_unsafe_wiring():
    """The WriteBinding contract's own check finds retries with an unknown idempotency boundary."""
    m = manifest.compile(installed_graph())
    policies = dict(m.primitive("heater").policies, idempotency="unknown")
    found = [v for v in manifest.validate(replace_record(m, "heater", policies=policies)) if v.rule == "unsafe_wiring"]
    assert [str(v) for v in found] == [
        "[unsafe_wiring] primitive heater: retries 2 times with an unknown idempotency boundary; set idempotency to absolute_value or request_id"
    ]


def _queue_contract() -> Primitive:
    def install(ctx, **policies):
        raise AssertionError("not called")

    return Primitive.define(
        name="Spool", version=1, family=Family.HANDOFF, layer=Layer.DURABLE, summary="A spool.",
        inputs=(Port("source", "T"),), state=(State("log", StateKind.DURABLE, store="EventLog"),),
        policies=(Policy("capacity", int, required=True),), maturity=Maturity.INSTALLABLE, installer=install,
    )  # fmt: skip


def test_a_durable_instance_without_its_store_is_found():
    """An instance whose durable state's store is not declared is a missing_store finding; declaring it clears it."""
    spool = _queue_contract()
    record = PrimitiveRecord("spool", "Spool", 1, "durable", "installable", {"capacity": 10})
    m = dataclasses.replace(manifest.compile(Graph()), primitives=(record,))
    lookup = {"Spool": spool}.get
    (finding,) = check_manifest(m, lookup)
    assert finding.check == "missing_store"
    assert finding.message == "its log state is kept in a EventLog, but the instance declares no EventLog store"
    fixed = replace_record(m, "spool", stores=(StoreRecord("spool", "EventLog", "full"),))
    assert check_manifest(fixed, lookup) == []


def test_a_failing_contract_check_is_a_finding_not_a_crash():
    """A contract validator that raises becomes a validator_failed finding."""
    def broken(m, record):
        raise KeyError("capacity")

    spool = dataclasses.replace(_queue_contract(), validators=(broken,))
    record = PrimitiveRecord("spool", "Spool", 1, "durable", "installable", {"capacity": 10}, stores=(StoreRecord("spool", "EventLog", "full"),))
    m = dataclasses.replace(manifest.compile(Graph()), primitives=(record,))
    (finding,) = check_manifest(m, {"Spool": spool}.get)
    assert finding.check == "validator_failed" and "broken failed: KeyError" in finding.message


def test_diff_reports_a_contract_version_change_as_incompatible(tmp_path):
    """`manyfold diff` says `primitive X: Contract 1 -> 2` and exits 1; a policy change is compatible."""
    old = manifest.compile(installed_graph())
    new = replace_record(old, "slow_temp", version=2)
    d = manifest.diff(old, new)
    (change,) = d.changes
    assert str(change) == "changed  primitive slow_temp: Resistor 1 -> 2  [incompatible]" and not d.compatible
    policy = manifest.diff(old, replace_record(old, "slow_temp", policies={"min_interval_us": 5}))
    assert policy.compatible and "policies" in policy.changes[0].detail
    gone = manifest.diff(old, dataclasses.replace(old, primitives=old.primitives[:1]))
    assert [str(c) for c in gone.changes] == ["removed  primitive slow_temp  [incompatible]"]
    old.write(tmp_path / "old.json")
    new.write(tmp_path / "new.json")
    result = run("diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"))
    assert result.returncode == 1 and "primitive slow_temp: Resistor 1 -> 2" in result.stdout


def test_drawing_clusters_an_instance_parts():
    """The DOT drawing puts an instance's nodes and routes in one cluster labelled with its contract."""
    dot = manifest.to_dot(manifest.compile(installed_graph()))
    start = dot.index('label="slow_temp (Resistor v1)"')
    cluster = dot[start:dot.index("    }", start)]
    assert '"n:slow_temp"' in cluster and '"r:read.internal.slow_temp.env.temperature.event.v1"' in cluster
    assert '"n:heater"' not in cluster and 'label="heater (WriteBinding v1)"' in dot
    assert "(Resistor" not in manifest.to_dot(manifest.compile(small_graph()))


def test_show_lists_primitive_instances(tmp_path):
    """`manyfold show` prints a table of the instances with contract, version and policies."""
    path = tmp_path / "m.json"
    manifest.compile(installed_graph()).write(path)
    result = run("show", str(path))
    assert result.returncode == 0, result.stderr
    assert "primitives" in result.stdout and "Resistor v1" in result.stdout and "min_interval_us=1000" in result.stdout
