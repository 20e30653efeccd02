"""Manyfold on Zenoh (docs/edge.md "Scaling out with Zenoh"), typed: how a node joins a Zenoh
deployment (:class:`ZenohOptions`, :class:`ZenohMode`), the keys it uses and a node's presence
parsed from its liveliness token (:class:`NodePresence`), a client that lists the nodes and asks
their admin queryables (:class:`ZenohClient`), and a router (:class:`ZenohRouter` in process,
:class:`RouterProcess` as ``manyfold zenoh-router``). The Zenoh code itself is the Rust runtime's
(``_native``); :func:`available` says whether this build carries it."""

from manyfold.zenoh.keys import NodePresence, PresenceKeyError, admin_key, mid16, presence_selector
from manyfold.zenoh.native import NO_ZENOH, ZenohUnavailable, available
from manyfold.zenoh.options import DEFAULT_PREFIX, DEFAULT_ROUTER, ZenohMode, ZenohOptions, check_key_safe

__all__ = [
    "DEFAULT_PREFIX", "DEFAULT_ROUTER", "NO_ZENOH", "NodePresence", "PresenceKeyError", "ZenohMode", "ZenohOptions",
    "ZenohUnavailable", "admin_key", "available", "check_key_safe", "mid16", "presence_selector",
]  # fmt: skip


def __getattr__(name: str):
    """The client and router load lazily (they import the admin client and subprocess)."""
    if name in ("ZenohClient", "ZenohAdmin"):
        from manyfold.zenoh import client

        return getattr(client, name)
    if name in ("ZenohRouter", "RouterProcess", "free_loopback_endpoint"):
        from manyfold.zenoh import router

        return getattr(router, name)
    raise AttributeError(name)
