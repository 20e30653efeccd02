"""The query plane: the graph answers questions about itself with typed objects.

Each function takes a :class:`~manyfold.graph.Graph` and returns a frozen dataclass;
serialization (``to_dict()``, ``to_json()``, ``to_cbor()``) happens only at the boundary. The
same questions can be asked over the graph's own routes through a :class:`QueryService`.

- :func:`topology`: routes (owner, schema, producer, consumers), nodes, edges and their policies
- :func:`flow`: mailboxes and edges: depth, capacity, drops, and busy/blocked/idle per second
- :func:`watermarks`: per window, join and resequencer
- :func:`scheduler`: ready work, timers, gated and expired guards
- :func:`taints`: per route: taints, which nodes, mailboxes or links add them, which repair them
- :func:`lineage`: the inputs, payloads opened and control epochs behind an envelope
- :func:`payload_demand`: metadata events, opens, cache hits, bytes, and who caused each open
- :func:`route_audit`: who produced, consumed, wrote and opened what, in order
- :func:`health`: per installed primitive instance: healthy, degraded or blocked, and why
- :func:`expose`: who may ask a deployed (split) graph which kinds (the manifest's ``query``)

A device (a board, or the simulation) answers the same kinds of questions about its partition
over its link: ``manyfold.devices.queries`` asks them, and its answers are the typed
:class:`DeviceAnswer` objects of ``manyfold.query.device`` (:class:`DeviceTopology`,
:class:`DeviceFlow`, :class:`DeviceTaints`, ...).
"""

from manyfold.query.device import (
    DeviceAnswer,
    DeviceBoardReport,
    DeviceCounterReport,
    DeviceFacts,
    DeviceFlow,
    DeviceLatest,
    DeviceMailboxFlow,
    DeviceNode,
    DeviceRoute,
    DeviceRouteTaints,
    DeviceSource,
    DeviceTaints,
    DeviceTopology,
    RouteDirection,
)
from manyfold.query.exposure import DEVICE_KINDS, NODE_KINDS, expose, exposure_kind
from manyfold.query.model import (
    AuditRecord,
    EdgeFlow,
    EdgeInfo,
    ExpiredWork,
    Flow,
    GatedWork,
    HealthReport,
    HealthState,
    InstanceHealth,
    Lineage,
    LineageStep,
    MailboxFlow,
    NodeInfo,
    PartHealth,
    PayloadDemand,
    PayloadOpen,
    PrimitiveInfo,
    RouteAudit,
    RouteInfo,
    RouteTaints,
    SchedulerState,
    StoreInfo,
    TaintOrigin,
    Topology,
    Watermark,
)
from manyfold.query.queries import (
    flow,
    health,
    lineage,
    payload_demand,
    route_audit,
    scheduler,
    taints,
    topology,
    watermarks,
)
from manyfold.query.service import QueryRequest, QueryResponse, QueryService

__all__ = [
    "DeviceAnswer", "DeviceBoardReport", "DeviceCounterReport", "DeviceFacts", "DeviceFlow", "DeviceLatest",
    "DeviceMailboxFlow", "DeviceNode", "DeviceRoute", "DeviceRouteTaints", "DeviceSource", "DeviceTaints",
    "DeviceTopology", "RouteDirection",
    "AuditRecord", "EdgeFlow", "EdgeInfo", "ExpiredWork", "Flow", "GatedWork", "HealthReport", "HealthState",
    "InstanceHealth", "Lineage", "LineageStep", "PartHealth", "PrimitiveInfo", "StoreInfo",
    "MailboxFlow", "NodeInfo", "PayloadDemand", "PayloadOpen", "QueryRequest", "QueryResponse", "QueryService",
    "RouteAudit", "RouteInfo", "RouteTaints", "SchedulerState", "TaintOrigin", "Topology", "Watermark",
    "DEVICE_KINDS", "NODE_KINDS", "expose", "exposure_kind",
    "flow", "health", "lineage", "payload_demand", "route_audit", "scheduler", "taints", "topology", "watermarks",
]
