"""Helpers for primitive tests: a graph with a float route and a record route, and the kwargs
that install each executable catalog contract into it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from manyfold.graph import FLOAT, INT, Graph, Route
from manyfold.graph.taints import Taint

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Reading:
    zone: str
    value: float


TEMP = "read.logical.sensor.env.temperature.event.v1"
HUMID = "read.logical.sensor.env.humidity.event.v1"
READING = "read.logical.sensor.env.reading.event.v1"
COPY = "read.logical.sensor.env.copy.event.v1"
DEMAND = "read.logical.sensor.env.demand.event.v1"


def graph() -> Graph:
    g = Graph()
    g.route(TEMP, FLOAT)
    g.route(HUMID, FLOAT)
    g.route(READING, Reading)
    g.route(COPY, FLOAT)
    g.route(DEMAND, INT)
    return g


def example_kwargs(name: str) -> dict:
    """Ports and policies that install the executable contract ``name`` into :func:`graph`."""
    t, r = Route.parse(TEMP), Route.parse(READING)
    return {
        "Capacitor": {"source": t, "demand": Route.parse(DEMAND), "capacity": 4},
        "Resistor": {"source": t, "min_interval_us": 1000},
        "RateLimiter": {"source": t, "max_events": 2, "interval_us": 1000},
        "Sample": {"source": t, "period_us": 1000},
        "Resequencer": {"source": t, "delay_us": 100},
        "CountWindow": {"source": r, "size": 2, "value": "value", "key": "zone"},
        "TimeWindow": {"source": r, "width_us": 1000, "value": "value", "key": "zone"},
        "Join": {"left": r, "right": r, "join_class": "local", "key": "zone"},
        "RepartitionJoin": {"left": r, "right": r, "key": "zone"},
        "Deadband": {"source": t, "band": 0.5},
        "Threshold": {"source": t, "mode": "above", "low": 30.0},
        "Scale": {"source": t, "scale": 2.0, "offset": 1.0},
        "Mailbox": {"source": t, "sink": Route.parse(COPY), "capacity": 8},
        "WriteBinding": {"owner": "heater", "family": "env", "stream": "setpoint", "schema": float, "retry_max": 2, "retry_interval_us": 1000, "idempotency": "absolute_value"},
        "Repair": {"source": t, "clears": [Taint.DELIVERY_DROPPED], "proof": "the link retransmits"},
    }[name]
