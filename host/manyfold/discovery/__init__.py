"""Discovery: which runtime nodes exist and which devices sit behind them.

Layout:

- :mod:`beacon`: the multicast beacon's datagram (the same layout as the Rust node's,
  ``runtime_std/src/node/discovery.rs``) and a bounded listener;
- :mod:`model`: the typed listing (:class:`FoundNode`, :class:`Device`, :class:`Listing`);
- :mod:`find`: candidates from configured addresses, from each answering node's ``peers`` list
  (bounded rounds) and from beacons heard, then every candidate dialed (``status``) in parallel
  with :func:`manyfold.federation.fan_out`.
"""

from manyfold.discovery.beacon import BEACON_GROUP, BEACON_PORT, Beacon, BeaconOptions, listen
from manyfold.discovery.find import CANDIDATES_MAX, ROUNDS_MAX, Seed, discover, seeds_from
from manyfold.discovery.model import Device, Found, FoundNode, Listing, NodeState

__all__ = [
    "BEACON_GROUP", "BEACON_PORT", "CANDIDATES_MAX", "ROUNDS_MAX", "Beacon", "BeaconOptions", "Device", "Found", "FoundNode", "Listing",
    "NodeState", "Seed", "discover", "listen", "seeds_from",
]  # fmt: skip
