"""Links that carry framed bytes, and seeded fault injection around them."""

from manyfold.links.faults import FaultConfig, FaultCounts, FaultInjector

__all__ = ["FaultConfig", "FaultCounts", "FaultInjector"]
