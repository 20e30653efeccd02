"""The local graph runtime: typed routes, schemas, envelopes, operators, mailboxes and a
deterministic scheduler, with the hot path in Rust.

Start with :class:`Graph`; ``docs/graph.md`` walks through it.
"""

from manyfold.graph.errors import (
    BackpressureError,
    ClockModeError,
    GraphError,
    GuardError,
    JoinRejectedError,
    ManifestError,
    NotOwnerError,
    OperatorConfigError,
    OperatorError,
    RejectedError,
    RouteError,
    SchemaCheckError,
    SchemaMismatchError,
    StoreError,
    TimeError,
    UnsafeCycleError,
)
from manyfold.graph.graph import (
    CAPACITY_MAX,
    Aggregate,
    Counter,
    EdgeStats,
    Envelope,
    EnvelopeId,
    ExpiredPublish,
    GatedPublish,
    Graph,
    Idempotency,
    JoinClass,
    Link,
    LinkCapabilities,
    Partition,
    Layer,
    Mailbox,
    MailboxStats,
    Node,
    NodeStats,
    Overflow,
    Plane,
    Producer,
    PublishReceipt,
    Route,
    RunReport,
    SchedulerStats,
    Subscription,
    SyntheticSource,
    TimeSource,
    Variant,
    WriteBinding,
)
from manyfold.graph.taints import Taint, TaintDomain, taints_from_bits, taints_of
from manyfold.graph.schema import (
    BOOL,
    BYTES,
    FLOAT,
    INT,
    TEXT,
    Pair,
    Schema,
    SchemaDefinitionError,
    WindowResult,
    schema,
)
from manyfold.graph.schema import Delivery
from manyfold.graph.graph import QueueNode

__all__ = [
    "BOOL", "BYTES", "CAPACITY_MAX", "FLOAT", "INT", "TEXT",
    "Aggregate", "BackpressureError", "ClockModeError", "Counter", "Envelope", "EnvelopeId", "Graph",
    "GraphError", "GuardError", "JoinClass", "JoinRejectedError", "Layer", "Mailbox", "Node",
    "NotOwnerError", "OperatorConfigError", "OperatorError", "Overflow", "Pair", "Plane", "Producer",
    "PublishReceipt", "RejectedError", "Route", "RouteError", "RunReport", "Schema",
    "SchemaCheckError", "SchemaDefinitionError", "SchemaMismatchError", "StoreError", "Subscription", "TimeError", "TimeSource",
    "UnsafeCycleError", "Variant", "WindowResult", "schema",
    "Idempotency", "Link", "LinkCapabilities", "ManifestError", "Partition", "SyntheticSource", "Taint", "TaintDomain", "WriteBinding", "taints_from_bits", "taints_of",
    "Delivery", "QueueNode",
    "EdgeStats", "ExpiredPublish", "GatedPublish", "MailboxStats", "NodeStats", "SchedulerStats",
]
