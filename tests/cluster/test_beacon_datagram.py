"""The beacon datagram as `manyfold nodes` reads it (manyfold.discovery.beacon, through the
node's own Rust parser in the extension): the layout the nodes send is read back, anything else
is None (never an exception), and the listening options are checked in one sentence."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError
from manyfold.discovery.beacon import BEACON_BYTES_MAX, BEACON_GROUP, BEACON_PORT, Beacon, BeaconOptions

# Examples are cheap but the machine may be busy (CI runs nodes beside): no wall-clock checks.
FUZZ = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

GOOD = {"magic": "manyfold-beacon", "v": 1, "node": "ingest", "id": 1, "incarnation": 7, "manifest_id": "ab" * 32,
        "admin": "127.0.0.1:47401", "listen": "127.0.0.1:47301"}  # fmt: skip


def test_a_node_beacon_is_read_into_a_typed_beacon():
    """The fields of the layout in docs/node.md become a Beacon with Address objects."""
    b = Beacon.parse(json.dumps(GOOD).encode())
    assert b == Beacon("ingest", 1, 7, "ab" * 32, Address("127.0.0.1", 47401), Address("127.0.0.1", 47301))
    assert Beacon.parse(json.dumps({**GOOD, "listen": None}).encode()).listen is None


@pytest.mark.parametrize(("field", "bad"), [
    ("magic", "zenoh"), ("v", 2), ("v", True), ("node", ""), ("node", "x" * 33), ("id", 70000), ("id", "1"), ("incarnation", -1),
    ("manifest_id", "xyz"), ("admin", "0.0.0.0:1"), ("admin", "127.0.0.1:0"), ("admin", "239.255.109.102:7477"),
    ("admin", "localhost:1"), ("admin", None),
])  # fmt: skip
def test_a_beacon_with_a_wrong_field_is_not_taken(field, bad):
    """Each field is checked: a wrong one makes the datagram no beacon."""
    assert Beacon.parse(json.dumps({**GOOD, field: bad}).encode()) is None


def test_a_datagram_over_the_bound_is_not_taken():
    """At most 512 bytes, even when the JSON inside is a valid beacon."""
    padded = json.dumps(GOOD).encode()[:-1] + b" " * BEACON_BYTES_MAX + b"}"
    assert Beacon.parse(padded) is None


@FUZZ
@given(st.binary(max_size=600))
def test_garbage_is_never_an_exception(data):
    """Any bytes: a Beacon or None."""
    b = Beacon.parse(data)
    assert b is None or isinstance(b, Beacon)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(GOOD)), st.none() | st.booleans() | st.integers() | st.text(max_size=40)))
def test_odd_json_values_are_never_an_exception(changes):
    """Any field replaced by any JSON scalar: a Beacon or None."""
    b = Beacon.parse(json.dumps({**GOOD, **changes}).encode())
    assert b is None or isinstance(b, Beacon)


def test_listening_options_are_checked_in_one_sentence():
    """The defaults are Manyfold's group; a group that is not multicast or an interface that is
    not an IPv4 address is a ClusterError naming the flag."""
    assert BeaconOptions.parse(None, None) == BeaconOptions(BEACON_GROUP, BEACON_PORT, "0.0.0.0")
    assert BeaconOptions.parse("239.255.109.103:7478", "127.0.0.1") == BeaconOptions("239.255.109.103", 7478, "127.0.0.1")
    with pytest.raises(ClusterError, match="--beacon-group 10.0.0.1:7477 is not an IPv4 multicast"):
        BeaconOptions.parse("10.0.0.1:7477", None)
    with pytest.raises(ClusterError, match="--beacon-interface eth0 is not an IPv4 address"):
        BeaconOptions.parse(None, "eth0")
