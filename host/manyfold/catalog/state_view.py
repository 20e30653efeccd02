"""MaterializedView: keyed latest state of a record stream, durable, rebuilt from snapshot + log
tail on restart (the ``materialized_view`` operator, docs/durability.md)."""

from __future__ import annotations

from typing import Any

from manyfold.primitives import Failure, Family, InstallContext, Installed, Layer, Maturity, Policy, Port, Primitive, State, StateKind
from manyfold.primitives import handled, outside_profile

_TESTS = "tests/durable/test_view_restart.py::"


def _install(ctx: InstallContext, **policies: Any) -> Installed:
    source = ctx.input("source")
    store = policies.get("store") or ctx.name()
    node = ctx.graph.materialized_view(
        source, key=policies["key"], snapshot_every=policies["snapshot_every"], sync=policies["sync"], store=store,
        output=ctx.bound("changes"), name=ctx.name(),
    )  # fmt: skip
    ctx.add_node(node)
    # One store file (<store dir>/<store>.sqlite) holds both: the log and the snapshots.
    ctx.add_store(f"{store}.updates", "EventLog", policies["sync"])
    ctx.add_store(f"{store}.view", "SnapshotStore", policies["sync"])
    return Installed({"source": source, "changes": node.output})


MaterializedView = Primitive.define(
    name="MaterializedView", version=1, family=Family.STATE, layer=Layer.DURABLE,
    summary="The latest record of each key of a stream, kept durable and rebuilt from its last snapshot plus the log after it when the graph restarts.",
    requires=("EventLog", "SnapshotStore"), provides=("Read", "Replayable", "Keyed"),
    inputs=(Port("source", "T", "records with a key field"),),
    outputs=(Port("changes", "T", "each record once it is committed and applied"),),
    state=(
        State("updates", StateKind.DURABLE, store="EventLog", doc="every record applied since the last snapshot, committed before it is applied"),
        State("view", StateKind.DURABLE, store="SnapshotStore", doc="the whole keyed state every snapshot_every updates"),
    ),
    policies=(
        Policy("key", str, required=True, doc="the record field naming the key (int, text, bytes or bool)"),
        Policy("snapshot_every", int, default=1000, doc="updates between snapshots (the log replayed on restart is at most this long)"),
        Policy("sync", str, default="full", choices=("full", "normal"), doc="full: an update survives power loss; normal: it survives kill -9"),
        Policy("store", str, doc="the store file's name in the graph's store directory (default: the instance name)"),
    ),
    failures={
        Failure.CRASH: handled(
            "rebuilt from the latest snapshot plus the log after it: every committed update survives kill -9; a torn or lost store file is reported in its health",
            tests=(
                _TESTS + "test_kill9_of_a_python_writer_loses_no_committed_update",
                _TESTS + "test_a_node_killed_with_sigkill_answers_its_rebuilt_view_over_the_query_plane",
                _TESTS + "test_a_lost_store_file_is_reported_in_the_view",
            ),
        ),
        Failure.DUPLICATE: handled(
            "a record delivered twice replaces its key's row with the same record: the view's state is idempotent",
            tests=(_TESTS + "test_a_duplicate_record_leaves_the_same_row",),
        ),
        Failure.RETRY: outside_profile("the view applies what its input route delivers; retrying a publish is its producer's (a retried record is a duplicate, handled above)"),
        Failure.TIMEOUT: outside_profile("the view has no deadline: each update is committed, then applied, within the publish that delivers it"),
        Failure.STALE_OWNER: outside_profile("one node owns the view's store directory; no other writer exists to go stale"),
        Failure.PARTITION: outside_profile("a view lives on one node; a partition cuts its input route, and the link's taints say so"),
    },
    maturity=Maturity.FAULT_TESTED, installer=_install, queries=("view", "health"), kinds=("materialized_view",),
)
