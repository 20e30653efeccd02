"""``manyfold monitor``: a live view of a running cluster, from the same admin answers the
federated queries use.

Layout (one job per module):

- :mod:`model`: the typed :class:`ClusterSnapshot` (nodes online / stale / gone, links with
  rates, taints, events) and its JSON form;
- :mod:`poll`: asks every node ``status`` and the ``taints`` query (``manyfold.federation.fan_out``)
  and turns the replies into the next snapshot (node states by lease, rates from counter deltas);
- :mod:`terminal`: the rich view (nodes, links, taints feed);
- :mod:`web`: the HTTP server (page, ``/snapshot.json``, ``/events`` server-sent events) and the
  bounded fan-out of snapshots to its clients; ``static/`` holds the page;
- :mod:`run`: the loop that polls every interval and hands each snapshot to the views.
"""

from manyfold.monitor.model import ClusterSnapshot, LinkView, MonitorEvent, NodeView, RouteTaintsView
from manyfold.monitor.poll import Poller

__all__ = ["ClusterSnapshot", "LinkView", "MonitorEvent", "NodeView", "Poller", "RouteTaintsView"]
