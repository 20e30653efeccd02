"""Ask the whole system: federated queries over every runtime node's admin endpoint.

Layout:

- :mod:`targets`: which nodes to ask, from a plan file or one node's admin address;
- :mod:`fanout`: ask every target the same question in parallel, each within a timeout, and
  say which answered and which are ``unknown`` (never silently omitted);
- :mod:`plan_facts`: what the plan says (partition and device owners, device routes);
- :mod:`answers`: a node's answer to each kind as typed objects (the local query plane's where
  they exist);
- :mod:`merge`: one cluster-wide answer per kind;
- :mod:`cluster_answer`: :func:`ask_cluster` and its :class:`ClusterAnswer`;
- :mod:`lineage`: :func:`walk_lineage`, an output's lineage across nodes and onto a device.
"""

from manyfold.federation.cluster_answer import ClusterAnswer, NodeAnswer, Unknown, ask_cluster
from manyfold.federation.fanout import NodeReply, fan_out
from manyfold.federation.lineage import CrossLineage, walk_lineage
from manyfold.federation.targets import Target, targets_from

__all__ = ["ClusterAnswer", "CrossLineage", "NodeAnswer", "NodeReply", "Target", "Unknown", "ask_cluster", "fan_out", "targets_from", "walk_lineage"]
