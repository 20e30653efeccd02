"""The catalog: every primitive contract that ships with manyfold, one module per family.

Each family module's contracts join the catalog when it is imported here; ``docs/catalog.md``
is rendered from them (:func:`manyfold.catalog.docs.render_markdown`), and ``manyfold
catalog`` prints them.

>>> from manyfold import catalog
>>> catalog.get("Resistor").maturity.value
'executable'
>>> catalog.get("Lease").named_only
True
>>> [c.name for c in catalog.family("replication")][:2]
['AntiEntropyRepair', 'ReplicaSet']
"""

from manyfold.catalog import coordination, flow, handoff, operations, partitioning, replication, state
from manyfold.catalog.registry import all_contracts, family, find, get, register, register_module

for _module in (flow, handoff, state, coordination, partitioning, replication, operations):
    register_module(_module)

all = all_contracts  # noqa: A001 - catalog.all() is the contract's name for it

__all__ = ["all", "all_contracts", "family", "find", "get", "register", "register_module"]
