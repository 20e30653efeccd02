"""A semantic diff of two manifests: what was added, removed or changed, and whether the new
manifest is compatible with the old one.

Compatible: only additions (routes, nodes, edges, schemas), and policy changes that do not
change what flows (retention, audit). Incompatible: removals, a route whose schema changed,
a node whose kind, inputs or outputs changed, an edge whose source or target changed.
Parameter and edge policy changes are reported as changes in behaviour (compatible in shape).
A primitive instance whose contract or contract version changed is incompatible (its promises
changed); its policy or part changes are changes in behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from manyfold.manifest.model import Manifest


@dataclass(frozen=True)
class Change:
    kind: str
    """``added``, ``removed`` or ``changed``."""
    subject: str
    """``route <route>``, ``node <name>``, ``edge <name>``, ``schema <name@v>``, ``link <name>`` ..."""
    detail: str
    compatible: bool

    def __str__(self) -> str:
        mark = "" if self.compatible else "  [incompatible]"
        return f"{self.kind:8} {self.subject}{': ' + self.detail if self.detail else ''}{mark}"


@dataclass(frozen=True)
class Diff:
    changes: tuple[Change, ...]

    @property
    def compatible(self) -> bool:
        return all(c.compatible for c in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes


def _fields(old: dict, new: dict, skip: tuple = ()) -> list[str]:
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if k not in skip and old.get(k) != new.get(k)]


def diff(old: Manifest, new: Manifest) -> Diff:
    """What changed from ``old`` to ``new``."""
    changes: list[Change] = []

    def keyed(items, key):
        return {key(i): i for i in items}

    for label, key, items_old, items_new in (
        ("schema", lambda s: f"{s.name}@{s.version}", old.schemas, new.schemas),
        ("route", lambda r: str(r.route), old.routes, new.routes),
        ("node", lambda n: n.name, old.nodes, new.nodes),
        ("edge", lambda e: e.name, old.edges, new.edges),
        ("partition", lambda p: p.name, old.partitions, new.partitions),
        ("link", lambda link: link.name, old.links, new.links),
        ("primitive", lambda p: p.instance, old.primitives, new.primitives),
    ):
        a, b = keyed(items_old, key), keyed(items_new, key)
        for k in sorted(set(b) - set(a)):
            changes.append(Change("added", f"{label} {k}", "", True))
        for k in sorted(set(a) - set(b)):
            changes.append(Change("removed", f"{label} {k}", "", False))
        for k in sorted(set(a) & set(b)):
            da, db = a[k].to_data(), b[k].to_data()
            if da == db:
                continue
            diffs = _fields(da, db)
            if label == "schema":
                compatible = False
            elif label == "route":
                compatible = da["schema"] == db["schema"] and da["partition"] == db["partition"]
            elif label == "node":
                compatible = all(da[f] == db[f] for f in ("kind", "inputs", "outputs"))
            elif label == "edge":
                compatible = da["source"] == db["source"] and da["target"] == db["target"] and da["port"] == db["port"]
            elif label == "primitive":
                # Another contract, or another version of it, is another promise.
                compatible = da["contract"] == db["contract"] and da["version"] == db["version"]
                if not compatible:
                    diffs = [f"{da['contract']} {da['version']} -> {db['contract']} {db['version']}" if da["contract"] != db["contract"]
                             else f"{da['contract']} {da['version']} -> {db['version']}"] + _fields(da, db, ("contract", "version"))
            else:
                compatible = True
            changes.append(Change("changed", f"{label} {k}", "; ".join(diffs), compatible))
    if old.settings != new.settings:
        changes.append(Change("changed", "settings", "; ".join(_fields(old.settings.to_data(), new.settings.to_data())), True))
    if old.query != new.query:
        changes.append(Change("changed", "query exposure", f"{old.query} -> {new.query}", True))
    return Diff(tuple(changes))
