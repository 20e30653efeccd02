"""Operations: running a system. Device writes and taint repair run; the rest are named (route
audit and lineage are built into every graph rather than installed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from manyfold.graph.graph import Idempotency
from manyfold.graph.taints import Taint
from manyfold.primitives import (
    Failure, Family, Finding, InstallContext, Installed, Layer, Maturity, Policy, Port, Primitive, State, StateKind, handled,
)

if TYPE_CHECKING:
    from manyfold.manifest.model import Manifest, PrimitiveRecord


def _schema_label(value) -> str:
    from manyfold.graph.schema import as_schema

    schema = as_schema(value)
    return f"{schema.name}@{schema.version}"


def _write_binding(ctx: InstallContext, *, owner: str, family: str, stream: str, schema, **policies) -> Installed:
    binding = ctx.graph.write_binding(owner, family, stream, schema, name=ctx.name(), **policies)
    ctx.add_node(binding.node)
    for route in (binding.request, binding.reported, binding.ack):
        ctx.add_route(route)
    return Installed({
        "request": binding.request, "reported": binding.reported, "ack": binding.ack,
        "desired": binding.desired, "effective": binding.effective,
    })


def retry_needs_idempotency(manifest: "Manifest", record: "PrimitiveRecord") -> list[Finding]:
    """A write binding that retries must say where a repeat is safe."""
    retries = record.policies.get("retry_max") or 0
    if isinstance(retries, int) and retries > 0 and record.policies.get("idempotency", "unknown") == "unknown":
        return [Finding("unsafe_wiring", record.instance, f"retries {retries} times with an unknown idempotency boundary; set idempotency to absolute_value or request_id")]
    return []


WriteBinding = Primitive.define(
    name="WriteBinding", version=1, family=Family.OPERATIONS, layer=Layer.LOCAL,
    summary="Keeps a device setting coherent: requests become desired values, the device reports and acknowledges, retries only within a declared idempotency boundary.",
    requires=("RetryPolicy", "IdempotencyPolicy", "Ack", "Timeout"), provides=("DesiredState", "ObservedState", "Ack"),
    inputs=(
        Port("request", "T", "what writers ask for"),
        Port("reported", "T", "what the device says it applied"),
        Port("ack", "int", "the device's acknowledgements"),
    ),
    outputs=(Port("desired", "T", "the value the device should hold"), Port("effective", "T", "the value in effect")),
    state=(State("pending", StateKind.VOLATILE, doc="the write in flight and its retries"), State("device", StateKind.EXTERNAL, doc="the setting on the device")),
    policies=(
        Policy("owner", str, required=True, doc="the device (route owner)"),
        Policy("family", str, required=True, doc="the routes' family"),
        Policy("stream", str, required=True, doc="the setting's stream name"),
        Policy("schema", object, required=True, record=_schema_label, doc="what the setting carries (a schema or Python type)"),
        Policy("retry_max", int, default=0, doc="retries of an unacknowledged write"),
        Policy("retry_interval_us", int, default=0, doc="time between retries"),
        Policy("idempotency", Idempotency, default="unknown", doc="where a repeated write is safe"),
    ),
    failures={
        Failure.RETRY: handled(
            "retries only with a declared idempotency boundary; a binding that retries without one is refused",
            tests=("tests/manifest/test_validate.py::test_retry_without_idempotency",),
        ),
    },
    maturity=Maturity.EXECUTABLE, kinds=("write_binding",), installer=_write_binding,
    validators=(retry_needs_idempotency,),
)


def _repair(ctx: InstallContext, *, clears, proof: str, adds=()) -> Installed:
    source = ctx.input("source")
    node = ctx.graph.repair(source, clears=clears, proof=proof, adds=adds, output=ctx.bound("output"), name=ctx.name())
    ctx.add_node(node)
    return Installed({"source": source, "output": node.output})


def _taints(value) -> tuple:
    return tuple(Taint(t).value for t in value)


Repair = Primitive.define(
    name="Repair", version=1, family=Family.OPERATIONS, layer=Layer.LOCAL,
    summary="Clears taints a node can prove no longer hold, with the proof shown in queries; absorbing taints cannot be cleared.",
    requires=("Taint", "Proof"), provides=("TaintRepair",),
    inputs=(Port("source", "T", "tainted values"),), outputs=(Port("output", "T", "the same values, repaired"),),
    policies=(
        Policy("clears", tuple, required=True, record=_taints, doc="the taints it clears"),
        Policy("proof", str, required=True, doc="why they no longer hold"),
        Policy("adds", tuple, default=(), record=_taints, doc="taints describing the repair"),
    ),
    maturity=Maturity.EXECUTABLE, kinds=("repair",), installer=_repair,
)

RouteAudit = Primitive.define(
    name="RouteAudit", version=1, family=Family.OPERATIONS, layer=Layer.CAPABILITY,
    summary="Records every publish, delivery, drop and refusal on a route (built into routes: route(..., audit=True)).",
    requires=("Timestamp", "PrincipalId"), provides=("Observable",),
)

LineageQuery = Primitive.define(
    name="LineageQuery", version=1, family=Family.OPERATIONS, layer=Layer.CAPABILITY,
    summary="Answers where a value came from, ancestor by ancestor, while they are retained (built into graphs: manyfold.query.lineage).",
    requires=("CausalityId", "Envelope"), provides=("Observable",),
)

RolloutController = Primitive.define(
    name="RolloutController", version=1, family=Family.OPERATIONS, layer=Layer.APPLICATION,
    summary="Moves a fleet from one manifest to the next in steps, watching health and stopping on regressions.",
    requires=("Reconciler", "HealthStatus", "MetricSample"), provides=("Rollout",),
)

KillSwitch = Primitive.define(
    name="KillSwitch", version=1, family=Family.OPERATIONS, layer=Layer.APPLICATION,
    summary="An authorised flag that stops a flow everywhere at once.",
    requires=("FeatureFlag", "AuthPolicy"), provides=("Stop",),
)

Reconciler = Primitive.define(
    name="Reconciler", version=1, family=Family.OPERATIONS, layer=Layer.APPLICATION,
    summary="Compares desired and observed state and retries the actions that close the gap.",
    requires=("DesiredState", "ObservedState", "RetryLoop", "EventLog"), provides=("Convergent",),
)
