"""Links that carry framed bytes, and seeded fault injection around them."""

from manyfold.links.faults import FaultConfig, FaultCounts, FaultInjector
from manyfold.links.proxy import FaultProxy, ProxyCounts, ProxyRecording

__all__ = ["FaultConfig", "FaultCounts", "FaultInjector", "FaultProxy", "ProxyCounts", "ProxyRecording"]
