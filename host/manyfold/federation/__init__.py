"""Ask the whole system: federated queries over every runtime node's admin endpoint.

Layout:

- :mod:`targets`: which nodes to ask, from a plan file or one node's admin address;
- :mod:`fanout`: ask every target the same question in parallel, each within a timeout, and
  say which answered and which are ``unknown`` (never silently omitted).
"""

from manyfold.federation.fanout import NodeReply, fan_out
from manyfold.federation.targets import Target, targets_from

__all__ = ["NodeReply", "Target", "fan_out", "targets_from"]
