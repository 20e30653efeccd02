"""The edge profile's tooling: plan a manifest onto runtime nodes, run a node, start them all.

One module per job:

- ``plan``: the plan file (``manyfold.plan.v1``): typed, read with every field checked, written
  deterministically with its reasons as comments;
- ``nodes_file``: the nodes file ``manyfold plan --nodes`` reads;
- ``place``: the placement rules that turn a manifest (and a nodes file) into a plan;
- ``node``: ``manyfold node``, a runtime node in Python (``_native.Node`` on a graph with the
  partitions' Python functions, ``callables``), owning devices (``devices``);
- ``launch``: each node's command line (``manyfold-node`` or ``manyfold node``);
- ``up``: every node its own OS process: start, wait for ready lines, report exits, stop;
- ``admin``: a client of a node's admin endpoint, answers as typed objects;
- ``ports``: free ports picked deterministically; ``address``: ``HOST:PORT`` and peer URLs;
- ``toml_text``: TOML in (``tomllib``) and out (a small writer that keeps comments);
- ``errors``: :class:`ClusterError`, one sentence naming what is wrong.
"""

from manyfold.cluster.errors import ClusterError

__all__ = ["ClusterError"]
