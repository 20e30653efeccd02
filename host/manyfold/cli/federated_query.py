"""``manyfold query --cluster PLAN_OR_ADDRESS WHAT [ARG...]``: ask every runtime node one question
(``manyfold.federation``; ``--cluster zenoh:ENDPOINT`` asks every node present in a Zenoh
deployment, through its admin queryable), print the merged answer as tables (every node that did not answer
listed as unknown, every refusal with its sentence), or one JSON object with ``--json``
(``kind``, ``answered``, ``unknown``, ``refused``, ``nodes``, ``merged``).

Arguments by WHAT: ``lineage ROUTE[@SEQ] [NODE]`` (without SEQ: the route's newest envelope on
the node holding it); ``taints [ROUTE]``; ``device PARTITION [WHAT [ROUTE]]`` (WHAT: topology,
flow, taints, latest, counters; default topology). Exit code: 0 when at least one node answered
the question, 1 when none did (every node refused or is unknown), 2 for a usage error (also
when every node rejected the request itself, e.g. a route the manifest does not have).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from manyfold.cli.errors import EXIT_FAILED, EXIT_OK, CliError

CLUSTER_WHATS = ("topology", "routes", "flow", "watermarks", "taints", "links", "counters", "lineage", "device", "health")


def _route_and_seq(text: str) -> tuple[str, int | None]:
    route, at, seq = text.rpartition("@")
    if at and seq.isdigit():
        return route, int(seq)
    return text, None


def cmd_cluster_query(args: argparse.Namespace) -> int:
    from manyfold.cluster.errors import ClusterError
    from manyfold.federation.plan_facts import plan_facts
    from manyfold.federation.targets import is_zenoh, release, targets_from

    what, extra = args.what, list(args.route)
    if what not in CLUSTER_WHATS:
        raise CliError(f"with --cluster, WHAT is one of {', '.join(CLUSTER_WHATS)}; got {what!r}")
    try:
        targets = targets_from(args.cluster, zenoh_prefix=getattr(args, "zenoh_prefix", None), timeout_s=args.timeout)
        facts = plan_facts(args.cluster)
    except ClusterError as error:
        raise CliError(str(error)) from None
    try:
        return _ask(args, what, extra, targets, facts)
    finally:
        release(targets)


def _ask(args: argparse.Namespace, what: str, extra: list[str], targets, facts) -> int:
    from manyfold.federation.answers import DEVICE_WHATS
    from manyfold.federation.cluster_answer import ask_cluster
    from manyfold.federation.lineage import LineageWalkError, walk_lineage
    from manyfold.federation.targets import is_zenoh

    if is_zenoh(args.cluster) and not targets:
        raise CliError(f"--cluster {args.cluster}: the Zenoh router lists no Manyfold node (none holds a presence token under its prefix)")
    if what == "lineage":
        if not extra or len(extra) > 2:
            raise CliError("lineage needs ROUTE[@SEQ] and optionally the NODE holding it")
        route, seq = _route_and_seq(extra[0])
        node = extra[1] if len(extra) > 1 else None
        if seq is not None and node is None:
            raise CliError(f"lineage {extra[0]}: name the node holding it (lineage ROUTE@SEQ NODE), or give the route alone for its newest envelope")
        try:
            walk = walk_lineage(targets, route, node=node, seq=seq, principal=args.principal, timeout_s=args.timeout, facts=facts)
        except LineageWalkError as error:
            raise CliError(str(error)) from None
        return _print_lineage(args, targets, walk)
    route = partition = device_what = None
    if what == "device":
        if not extra or len(extra) > 3:
            raise CliError("device needs PARTITION, and optionally WHAT (" + ", ".join(DEVICE_WHATS) + ") and ROUTE")
        partition, device_what = extra[0], extra[1] if len(extra) > 1 else "topology"
        route = extra[2] if len(extra) > 2 else None
        if device_what not in DEVICE_WHATS:
            raise CliError(f"device {partition} {device_what}: WHAT is one of {', '.join(DEVICE_WHATS)}")
    elif what == "taints":
        if len(extra) > 1:
            raise CliError("taints takes at most one ROUTE")
        route = extra[0] if extra else None
    elif extra:
        raise CliError(f"{what} takes no argument (got {' '.join(extra)})")
    answer = ask_cluster(targets, what, principal=args.principal, route=route, partition=partition, what=device_what,
                         timeout_s=args.timeout, facts=facts)  # fmt: skip
    if answer.rejected_by_all is not None:
        raise CliError(answer.rejected_by_all)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, sort_keys=False, default=str))
    else:
        from manyfold.cli import render

        render_cluster_answer(render.console(), answer)
    return EXIT_OK if answer.any_answer else EXIT_FAILED


def _print_lineage(args, targets, walk) -> int:
    asked = {t.name for t in targets}
    unknown = [u for u in walk.unanswered if u.name in asked and u.name not in walk.answered]
    if args.json:
        nodes = {n: {"steps": sum(1 for s in walk.steps if s.node == n)} for n in walk.answered if n not in (walk.refused or {})}
        print(json.dumps({"kind": "lineage", "answered": list(walk.answered), "unknown": [u.to_dict() for u in unknown],
                          "refused": walk.refused or {}, "nodes": nodes, "merged": walk.to_dict()}, indent=2, default=str))  # fmt: skip
    else:
        from manyfold.cli import render

        render_lineage(render.console(), walk)
    return EXIT_OK if walk.steps else EXIT_FAILED


# --- rendering -----------------------------------------------------------------------------------


def render_who(console, answer) -> None:
    """Who answered, who refused (with the sentence), and who is unknown (with the reason)."""
    from manyfold.cli.render import table

    rows = table("nodes", ("node", "reply", "why"), priority=("node",))
    for n in answer.answered:
        if n not in answer.refused:
            rows.add_row(n, "answered", "-")
    for n, sentence in answer.refused.items():
        rows.add_row(n, "refused", sentence)
    for u in answer.unknown:  # cells are plain text: the row's style marks it
        rows.add_row(u.name, "unknown", u.reason, style="bold red")
    console.print(f"[bold]{answer.kind}[/]: {len(answer.nodes)} answered, {len(answer.refused)} refused, {len(answer.unknown)} unknown")
    console.print(rows)


def render_cluster_answer(console, answer) -> None:
    """The merged answer of ``answer.kind`` as tables, under who answered."""
    from manyfold.cli.render import table

    render_who(console, answer)
    m: Any = answer.merged
    kind = answer.kind
    if m is None:
        return
    if kind == "topology":
        console.print(table("partitions: the node hosting each (answered) and the plan's", ("partition", "device", "node", "planned"),
                            ((p.partition, "yes" if p.device else "-", p.hosts, p.planned) for p in m.partitions)))  # fmt: skip
        console.print(table("routes and the nodes holding them", ("route", "owner", "producer", "nodes"),
                            ((r.route, r.owner, r.producer, r.nodes) for r in m.routes), priority=("route",)))  # fmt: skip
        if m.primitives:
            console.print(table("primitive instances and the nodes holding their parts", ("instance", "contract", "parts", "nodes"),
                                ((h.primitive.instance, f"{h.primitive.contract} v{h.primitive.version}", _parts(h.primitive), h.nodes)
                                 for h in m.primitives), priority=("parts",)))  # fmt: skip
        ids = set(m.manifest_ids.values())
        console.print(f"manifest: {', '.join(sorted(str(i)[:16] for i in ids)) or '-'}" + (" (the nodes disagree)" if len(ids) > 1 else ""))
    elif kind == "routes":
        console.print(table("routes", ("route", "nodes", "latest on", "seq", "taints", "value"),
                            ((r.route, r.nodes, r.latest_node, r.latest.seq if r.latest else None, r.latest.taints if r.latest else None,
                              _short(r.latest.value) if r.latest else None) for r in m), priority=("route",), optional=("value",)))  # fmt: skip
    elif kind == "flow":
        console.print(table("under pressure (every node's full flow: --json)", ("node", "kind", "name", "depth", "capacity", "dropped"),
                            ((p.node, p.kind, p.name, p.depth, p.capacity, p.dropped) for p in m), priority=("name",)))  # fmt: skip
    elif kind == "watermarks":
        console.print(table("watermarks", ("node", "operator", "kind", "watermark_us", "late", "forced"),
                            ((w.node, w.watermark.node, w.watermark.kind, w.watermark.watermark_us, w.watermark.late, w.watermark.forced) for w in m.watermarks)))  # fmt: skip
        console.print(table("control epochs", ("node", "epoch"), m.epochs.items()))
    elif kind == "taints":
        console.print(table("taints present, by route", ("route", "taints", "seen on", "added at", "repaired at"),
                            ((t.route, t.taints, t.nodes, [f"{a.origin.taint.value} by {a.origin.kind} {a.origin.name} ({a.node})" for a in t.added],
                              [f"{a.origin.taint.value} by {a.origin.name} ({a.node})" for a in t.repaired]) for t in m),
                            priority=("route",)))  # fmt: skip
    elif kind == "links":
        console.print(table("links from both ends", ("link", "transport", "end", "state", "requested", "provided", "missing (tainted)", "events rx", "dropped"),
                            ((k.name, k.transport, e.node, e.link.state, e.link.requested, e.link.provided, e.link.missing, e.link.events_rx, e.link.dropped)
                             for k in m for e in k.ends)))  # fmt: skip
    elif kind == "counters":
        names = list(m.totals)
        rows = [(n, *(getattr(c, k) for k in names)) for n, c in m.by_node.items()] + [("total", *m.totals.values())]
        console.print(table("counters", ("node", *names), rows))
    elif kind == "device":
        console.print(table(f"device {m.partition}: {m.what}", ("field", "value"), ((k, _short(v)) for k, v in m.answer.items())))
    elif kind == "health":
        console.print(table("primitive instances: the worst state across the nodes, and why", ("instance", "contract", "state", "nodes", "why"),
                            ((i.instance, f"{i.contract} v{i.version}", i.state.value, i.nodes, list(i.why) or "-") for i in m),
                            priority=("why",)))  # fmt: skip
        if not m:
            console.print("no primitive instance has a part on the nodes that answered")


def render_health(console, instances) -> None:
    """A local ``health`` answer: each instance's state and why, then each part's."""
    from manyfold.cli.render import table

    if not instances:
        console.print("no primitive instance is installed in this graph")
        return
    console.print(table("primitive instances", ("instance", "contract", "state", "why"),
                        ((i.instance, f"{i.contract} v{i.version}", i.state.value, list(i.why) or "-") for i in instances), priority=("why",)))  # fmt: skip
    console.print(table("parts", ("instance", "node", "state", "why"),
                        ((i.instance, p.node, p.state.value, list(p.why) or "-") for i in instances for p in i.parts), priority=("why",)))  # fmt: skip


def _parts(p) -> list[str]:
    """A primitive instance's parts as people read them."""
    return [f"node {n}" for n in p.nodes] + [f"route {r}" for r in p.routes] + [f"store {s.name} ({s.kind}, sync {s.sync})" for s in p.stores]


def render_lineage(console, walk) -> None:
    """The walk: the path of nodes, the envelopes by node and route, and the device reached."""
    from rich.markup import escape

    from manyfold.cli.render import table

    for name, sentence in (walk.refused or {}).items():
        console.print(f"[bold]refused[/] {escape(name)}: {escape(sentence)}")
    if not walk.node:  # no node answered the walk's first question
        console.print(f"Lineage of {walk.route}: no node answered ({len(walk.refused or {})} refused, {len(walk.unanswered)} unknown)")
        for u in walk.unanswered:
            console.print(f"[bold red]unknown[/] {escape(u.name)}: {escape(u.reason)}")
        return
    console.print(f"Lineage of {walk.route}@{walk.seq} (held by {walk.node}): " + " -> ".join(walk.path))
    by: dict[tuple[str, str, str | None], list] = {}
    for s in walk.steps:
        by.setdefault((s.node, s.route, s.device), []).append(s)
    console.print(table("envelopes, node by node (on a device: the device behind that node)", ("node", "route", "on", "envelopes", "seqs", "taints"),
                        ((node, route, f"device {device}" if device else "node", len(steps), _seqs([s.seq for s in steps]),
                          sorted({t for s in steps for t in s.taints})) for (node, route, device), steps in by.items()), priority=("node", "route")))  # fmt: skip
    for d in walk.devices:
        if d.answer is None:
            console.print(f"Device {d.partition} behind {d.node}: reached by the lineage ({', '.join(d.routes)}); no device answer: {d.refusal}")
            continue
        facts = d.answer.facts
        event = d.answer.answer.get("event") or {}
        taints = event.get("taint_names") or event.get("taints") or []
        taints = ", ".join(map(str, taints)) if isinstance(taints, list) else str(taints)
        console.print(f"Device {d.partition} behind {d.node}: {facts.get('board', '?')} on {facts.get('port', '?')}; "
                      f"latest of {d.routes[-1]}: seq {event.get('seq', '-')}, taints {taints or '-'}")  # fmt: skip
    for u in walk.unanswered:
        console.print(f"[bold red]unknown[/] {escape(u.name)}: {escape(u.reason)}")
    if walk.truncated:
        console.print(f"(stopped after {walk.questions} questions; more ancestors are held elsewhere)")


def _seqs(seqs: list[int]) -> str:
    seqs = sorted(seqs)
    return f"{seqs[0]}" if len(seqs) == 1 else f"{seqs[0]}..{seqs[-1]}"


def _short(value: object, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


__all__ = ["CLUSTER_WHATS", "cmd_cluster_query", "render_cluster_answer", "render_health", "render_lineage", "render_who"]
