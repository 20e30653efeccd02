"""Static checks of a manifest's primitive instances against the catalog's contracts.

For each record: the contract is known (else a warning: not checked), its version is the
catalog's, the policies are the contract's (required ones present, values of the right type
and among the choices), the parts exist (nodes and routes in the manifest, of the kinds the
contract builds, in no other instance), the stores its durable state needs are declared, and
the contract's own validators find no unsafe wiring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from manyfold.primitives.errors import PrimitiveError
from manyfold.primitives.findings import Finding, Severity

if TYPE_CHECKING:
    from manyfold.manifest.model import Manifest, PrimitiveRecord
    from manyfold.primitives.contract import Primitive


def _catalog_lookup(name: str) -> "Primitive | None":
    from manyfold import catalog

    return catalog.find(name)


def check_record(manifest: "Manifest", record: "PrimitiveRecord", contract: "Primitive") -> list[Finding]:
    """Every finding about one instance of a known contract."""
    i = record.instance
    out: list[Finding] = []
    if record.version != contract.version:
        out.append(Finding("contract_version", i, f"records {contract.name} version {record.version}, but this catalog has version {contract.version}"))
        return out  # the rest of the contract may not apply to another version
    out += _policies(record, contract)
    out += _parts(manifest, record, contract)
    out += _stores(record, contract)
    for validator in contract.validators:
        try:
            out += validator(manifest, record)
        except Exception as error:  # a check must not take validation down; say which failed
            out.append(Finding("validator_failed", i, f"{contract.name}'s check {getattr(validator, '__name__', validator)} failed: {type(error).__name__}: {error}"))
    return out


def _policies(record: "PrimitiveRecord", contract: "Primitive") -> list[Finding]:
    out = []
    known = {p.name: p for p in contract.policies}
    for name in sorted(set(record.policies) - set(known)):
        out.append(Finding("unknown_policy", record.instance, f"policy {name} is not one of {contract.name}'s ({', '.join(known) or 'none'})"))
    for policy in contract.policies:
        if policy.name not in record.policies:
            if policy.required:
                out.append(Finding("missing_policy", record.instance, f"{contract.name} needs policy {policy.name} ({policy.doc or policy.type_name})"))
            continue
        if policy.record is not None:
            continue  # recorded in another shape (a schema by label)
        try:
            policy.check(record.policies[policy.name], f"{contract.name} {record.instance}")
        except PrimitiveError as error:
            out.append(Finding("bad_policy", record.instance, str(error).split(": ", 1)[-1]))
    return out


def _parts(manifest: "Manifest", record: "PrimitiveRecord", contract: "Primitive") -> list[Finding]:
    out = []
    nodes = {n.name: n for n in manifest.nodes}
    routes = {r.route for r in manifest.routes}
    for name in record.nodes:
        node = nodes.get(name)
        if node is None:
            out.append(Finding("missing_part", record.instance, f"node {name} is not in the manifest"))
        elif contract.kinds and node.kind not in contract.kinds:
            out.append(Finding("wrong_part", record.instance, f"node {name} is a {node.kind}, but {contract.name} builds {' or '.join(contract.kinds)}"))
    for route in record.routes:
        if route not in routes:
            out.append(Finding("missing_part", record.instance, f"route {route} is not in the manifest"))
    if contract.kinds and not record.nodes:
        out.append(Finding("missing_part", record.instance, f"{contract.name} builds {' or '.join(contract.kinds)} nodes, but the instance lists none"))
    return out


def _stores(record: "PrimitiveRecord", contract: "Primitive") -> list[Finding]:
    out = []
    declared = [s.kind for s in record.stores]
    for state in contract.state:
        if state.store and state.store not in declared:
            out.append(Finding("missing_store", record.instance, f"its {state.name} state is kept in a {state.store}, but the instance declares no {state.store} store"))
    return out


def _shared_parts(manifest: "Manifest") -> list[Finding]:
    owner: dict[str, str] = {}
    out = []
    for record in manifest.primitives:
        for name in record.nodes:
            first = owner.setdefault(name, record.instance)
            if first != record.instance:
                out.append(Finding("shared_part", record.instance, f"node {name} is already a part of {first}"))
    return out


def check_manifest(manifest: "Manifest", lookup: Callable[[str], "Primitive | None"] | None = None) -> list[Finding]:
    """Every finding about the manifest's primitive instances (``lookup`` finds a contract by
    name; the catalog by default)."""
    lookup = lookup or _catalog_lookup
    out: list[Finding] = []
    seen: set[str] = set()
    for record in manifest.primitives:
        if record.instance in seen:
            out.append(Finding("duplicate_instance", record.instance, "two instances have this name"))
        seen.add(record.instance)
        contract = lookup(record.contract)
        if contract is None:
            out.append(Finding("unknown_contract", record.instance, f"contract {record.contract} is not in this catalog: not checked", Severity.WARNING))
            continue
        out += check_record(manifest, record, contract)
    out += _shared_parts(manifest)
    return out


__all__ = ["check_manifest", "check_record"]
