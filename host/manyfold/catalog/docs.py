"""The catalog as documents: Markdown (``docs/catalog.md``) and JSON data, both rendered from
the contracts, so the docs cannot say something the contracts do not.

Regenerate the file with ``manyfold catalog --markdown > docs/catalog.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

from manyfold.primitives import Family, Handled, Maturity, OutsideProfile, Primitive

REGENERATE = "manyfold catalog --markdown > docs/catalog.md"


def contract_data(c: Primitive) -> dict:
    """One contract as plain data (the ``--json`` output)."""
    failures = {}
    for failure, said in c.coverage():
        if isinstance(said, Handled):
            failures[failure.value] = {"handled": said.how, "tests": list(said.tests)}
        elif isinstance(said, OutsideProfile):
            failures[failure.value] = {"outside_profile": said.why}
    return {
        "name": c.name, "version": c.version, "family": c.family.value, "layer": c.layer.value,
        "maturity": c.maturity.value, "summary": c.summary, "requires": list(c.requires), "provides": list(c.provides),
        "inputs": [{"name": p.name, "type": p.type, "doc": p.doc} for p in c.inputs],
        "outputs": [{"name": p.name, "type": p.type, "doc": p.doc} for p in c.outputs],
        "state": [{"name": s.name, "kind": s.kind.value, "store": s.store, "doc": s.doc} for s in c.state],
        "policies": [
            {"name": p.name, "type": p.type_name, "required": p.required, "default": _plain(p.default), "choices": list(p.choices), "doc": p.doc}
            for p in c.policies
        ],
        "failures": failures, "queries": list(c.queries), "kinds": list(c.kinds),
    }


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    return getattr(value, "value", value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _names(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(f"`{i}`" for i in items) if items else "none"


def render_markdown(contracts: Iterable[Primitive]) -> str:
    """``docs/catalog.md``: a table per family, then each contract that is more than named."""
    contracts = list(contracts)
    out = [
        "# Primitive catalog",
        "",
        "<!-- Generated from the contracts in host/manyfold/catalog/; do not edit. Regenerate with:",
        f"     {REGENERATE} -->",
        "",
        "Every primitive manyfold knows, from its contract (`manyfold.primitives.Primitive.define`).",
        "Maturity, in order: " + ", ".join(f"`{m.value}`" for m in Maturity) + ".",
        "A `named` primitive has its requires and provides written down and nothing to install;",
        "from `installable` on, `Primitive.install(graph, name, **policies)` builds it into a graph",
        "and the manifest records the instance (`docs/manifest.md`, `primitives`).",
        "",
        "```python",
        "from manyfold import catalog, manifest",
        "from manyfold.graph import FLOAT, Graph",
        "",
        "g = Graph()",
        'temp = g.route("read.logical.sensor.env.temperature.event.v1", FLOAT)',
        'slow = catalog.get("Resistor").install(g, "slow_temp", source=temp, min_interval_us=1000)',
        "m = manifest.compile(g)",
        'assert m.primitive("slow_temp").contract == "Resistor" and slow.output in m.primitive("slow_temp").routes',
        "assert manifest.validate(m) == []",
        "```",
        "",
        "A contract is defined once with `Primitive.define(name=..., version=..., family=..., layer=...,",
        "summary=..., requires=..., provides=..., inputs=..., outputs=..., state=..., policies=...,",
        "failures=..., maturity=..., installer=..., validators=...)`. From `fault_tested` on it must",
        "say, for each of the six failures (crash, retry, timeout, duplicate, stale owner, partition),",
        "how it handles it and which tests prove it, or why it is outside its profile; a test walks",
        "the catalog and checks that every named test exists.",
        "",
        "| Family | Contracts | Named only |",
        "| --- | --- | --- |",
    ]
    for family in Family:
        members = [c for c in contracts if c.family == family]
        out.append(f"| {family.value} | {len(members)} | {sum(1 for c in members if c.named_only)} |")
    for family in Family:
        members = [c for c in contracts if c.family == family]
        if not members:
            continue
        out += ["", f"## {family.value.capitalize()}", "", "| Primitive | Layer | Maturity | Requires | Provides | Summary |", "| --- | --- | --- | --- | --- | --- |"]
        for c in members:
            title = f"[{c.name}](#{c.name.lower()})" if not c.named_only else c.name
            out.append(f"| {title} | {c.layer.value} | {c.maturity.value} | {_cell(', '.join(c.requires))} | {_cell(', '.join(c.provides))} | {_cell(c.summary)} |")
        for c in members:
            if not c.named_only:
                out += [""] + _contract_section(c)
    return "\n".join(out) + "\n"


def _contract_section(c: Primitive) -> list[str]:
    out = [
        f"### {c.name}",
        "",
        f"{c.summary}",
        "",
        f"Version {c.version}, layer `{c.layer.value}`, maturity `{c.maturity.value}`; runtime kinds {_names(c.kinds)}.",
        f"Requires {_names(c.requires)}; provides {_names(c.provides)}.",
        "",
    ]
    if c.inputs or c.outputs:
        out += ["| Port | Direction | Type | What |", "| --- | --- | --- | --- |"]
        out += [f"| `{p.name}` | in | `{_cell(p.type)}` | {_cell(p.doc)} |" for p in c.inputs]
        out += [f"| `{p.name}` | out | `{_cell(p.type)}` | {_cell(p.doc)} |" for p in c.outputs]
        out.append("")
    if c.state:
        out += ["| State | Kind | Store | What |", "| --- | --- | --- | --- |"]
        out += [f"| `{s.name}` | {s.kind.value} | {s.store or ''} | {_cell(s.doc)} |" for s in c.state]
        out.append("")
    if c.policies:
        out += ["| Policy | Type | Default | What |", "| --- | --- | --- | --- |"]
        for p in c.policies:
            default = "required" if p.required else ("none" if p.default is None else f"`{_plain(p.default)!r}`")
            choices = f" One of {', '.join(f'`{x}`' for x in p.choices)}." if p.choices else ""
            out.append(f"| `{p.name}` | {p.type_name} | {default} | {_cell(p.doc)}{'.' if p.doc and not p.doc.endswith('.') else ''}{choices} |")
        out.append("")
    out += ["| Failure | What it does | Proved by |", "| --- | --- | --- |"]
    for failure, said in c.coverage():
        if isinstance(said, Handled):
            out.append(f"| {failure.value} | {_cell(said.how)} | {', '.join(f'`{t}`' for t in said.tests) or 'no test yet'} |")
        elif isinstance(said, OutsideProfile):
            out.append(f"| {failure.value} | outside the profile: {_cell(said.why)} | |")
        else:
            out.append(f"| {failure.value} | not stated | |")
    if c.queries:
        out += ["", f"Query kinds: {_names(c.queries)}."]
    return out


__all__ = ["REGENERATE", "contract_data", "render_markdown"]
