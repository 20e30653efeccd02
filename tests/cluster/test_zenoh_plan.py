"""Plans with links on zenoh: no dialer, a [zenoh] table read and written, the --zenoh-* flags on
every node, key-unsafe names refused in one sentence (no router needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clusterkit import split_graph, write_manifest

from manyfold.cluster.address import PeerUrl, Transport
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.launch import Launcher
from manyfold.cluster.nodes_file import NodesFile
from manyfold.cluster.place import make_plan
from manyfold.cluster.plan import Plan
from manyfold.zenoh import NodePresence, PresenceKeyError, ZenohMode, ZenohOptions

ZENOH_BOTH = ("zenoh", "zenoh")


def zenoh_plan(tmp_path: Path, nodes_toml: str = "base_port = 43100\n", transports=ZENOH_BOTH, graph=None) -> Plan:
    m, path = write_manifest(tmp_path, graph or split_graph(device=False, transports=transports))
    (tmp_path / "nodes.toml").write_text(nodes_toml)
    return make_plan(m, manifest_path=path, plan_path=tmp_path / "plan.toml", nodes=NodesFile.read(tmp_path / "nodes.toml"))


def test_zenoh_links_have_no_dialer_and_a_default_router(tmp_path):
    """Links on zenoh are planned without a dialer; the plan gets a [zenoh] table (a client of the
    usual router port), says so, and reads back to the same plan from the same bytes."""
    plan = zenoh_plan(tmp_path)
    assert [(k.name, k.dialer, k.transport) for k in plan.links] == [("ab", None, Transport.ZENOH), ("bh", None, Transport.ZENOH)]
    assert plan.zenoh == ZenohOptions.client("tcp/127.0.0.1:7447")
    text = plan.to_toml()
    assert "dialer" not in text and "[zenoh]" in text
    assert "links ab, bh run on zenoh: every node is a Zenoh client of tcp/127.0.0.1:7447" in text
    assert "through the Zenoh router, control says hello (control sorts first)" in text
    plan.write(tmp_path / "plan.toml")
    assert Plan.read(tmp_path / "plan.toml") == plan


def test_nodes_file_zenoh_table_reaches_every_node(tmp_path):
    """The nodes file's [zenoh] (peer mode, a prefix) goes into the plan, and launch gives every
    node the --zenoh-* flags; a zenoh link is never dialed (--link only for the udp link)."""
    nodes = 'base_port = 43120\n[zenoh]\nmode = "peer"\nconnect = ["tcp/10.0.0.1:7447"]\nprefix = "site1/manyfold"\n'
    plan = zenoh_plan(tmp_path, nodes, transports=("udp", "zenoh"))
    assert plan.zenoh == ZenohOptions(ZenohMode.PEER, ("tcp/10.0.0.1:7447",), (), "site1/manyfold")
    launcher = Launcher(plan, tmp_path)
    for node in plan.nodes:
        flags = launcher.flags(node)
        zenoh = [(f, flags[i + 1]) for i, f in enumerate(flags) if f.startswith("--zenoh-")]
        assert zenoh == [("--zenoh-connect", "tcp/10.0.0.1:7447"), ("--zenoh-mode", "peer"), ("--zenoh-prefix", "site1/manyfold")], node.name
        links = [flags[i + 1] for i, f in enumerate(flags) if f == "--link"]
        assert all(not link.startswith("bh=") for link in links)
    assert [PeerUrl.parse(flags[i + 1].split("=", 1)[1]).transport for flags in map(launcher.flags, plan.nodes)
            for i, f in enumerate(flags) if f == "--link"] == [Transport.UDP]  # fmt: skip


def test_udp_and_tcp_plans_have_no_zenoh_table(tmp_path):
    """A plan without links on zenoh writes no [zenoh] table and no --zenoh-* flags (unchanged)."""
    plan = zenoh_plan(tmp_path, transports=("udp", "tcp"))
    assert plan.zenoh is None and "[zenoh]" not in plan.to_toml()
    assert not any(f.startswith("--zenoh") for n in plan.nodes for f in Launcher(plan, tmp_path).flags(n))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t[: t.index("\n[zenoh]\n")], "link ab runs on zenoh, so the plan needs a [zenoh] table"),
        (lambda t: t.replace('transport = "zenoh"', 'dialer = "control"\ntransport = "zenoh"', 1),
         "link ab: a link on zenoh has no dialer (both ends meet at the Zenoh router); remove dialer"),
        (lambda t: t.replace('mode = "client"', 'mode = "router"'), "[zenoh]: mode must be one of 'client', 'peer', got 'router'"),
        (lambda t: t.replace('connect = ["tcp/127.0.0.1:7447"]', 'connect = ["127.0.0.1:7447"]'),
         "Zenoh connect endpoint '127.0.0.1:7447' is not a Zenoh endpoint like tcp/127.0.0.1:7447"),
        (lambda t: t.replace('connect = ["tcp/127.0.0.1:7447"]', "connect = []"), "a Zenoh client needs a router to connect to"),
        (lambda t: t.replace('prefix = "manyfold"', 'prefix = "many*fold"'), "the Zenoh prefix 'many*fold' must be key chunks of letters, digits, _ or - joined by /"),
        (lambda t: t.replace('name = "host"', 'name = "ho#st"').replace('"control", "host"', '"control", "ho#st"'),
         "node ho#st runs on Zenoh, where its name 'ho#st' is part of a key, so it must not contain / * $ ? # (it has '#')"),
    ],
)
def test_edited_zenoh_plans_are_checked(tmp_path, edit, message):
    """A hand-edited plan's zenoh parts are checked when read, each fault one sentence."""
    (tmp_path / "plan.toml").write_text(edit(zenoh_plan(tmp_path).to_toml()))
    with pytest.raises(ClusterError) as error:
        Plan.read(tmp_path / "plan.toml")
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("bad", ["a/b", "a*b", "a$b", "a?b", "a#b"])
def test_key_unsafe_link_names_are_refused_by_the_planner(tmp_path, bad):
    """The planner refuses a link on zenoh whose name holds / * $ ? # (it becomes a key chunk),
    in one sentence naming it; the same name on udp is fine."""
    from manyfold import manifest

    def graph(transport: str):
        return manifest.compile(split_graph(device=False, transports=(transport, "tcp"), ab=bad))

    m = graph("zenoh")
    (tmp_path / "m.json").write_text(m.to_json())
    with pytest.raises(ClusterError) as error:
        make_plan(m, manifest_path=tmp_path / "m.json", plan_path=tmp_path / "plan.toml", nodes=NodesFile(base_port=43140))
    assert str(error.value) == f"link {bad} runs on Zenoh, where its name {bad!r} is part of a key, so it must not contain / * $ ? # (it has {bad[1]!r})"
    udp = graph("udp")
    assert make_plan(udp, manifest_path=tmp_path / "m.json", plan_path=tmp_path / "plan.toml", nodes=NodesFile(base_port=43140)).zenoh is None


def test_presence_keys_parse_and_refuse_what_is_not_a_node():
    """A liveliness key P/<mid16>/node/<name>/<id>/<incarnation> is a node's presence (prefixes of
    several chunks too); anything else is refused with the key named."""
    p = NodePresence.parse("site1/manyfold/0123456789abcdef/node/edge-a/3/17")
    assert p == NodePresence("0123456789abcdef", "edge-a", 3, 17, "site1/manyfold")
    assert p.key == "site1/manyfold/0123456789abcdef/node/edge-a/3/17"
    assert p.admin_key == "site1/manyfold/0123456789abcdef/admin/edge-a"
    for key in ("manyfold/0123456789abcdef/admin/a", "manyfold/xyz/node/a/1/2", "manyfold/0123456789abcdef/node/a/one/2", "0123456789abcdef/node/a/1/2"):
        with pytest.raises(PresenceKeyError, match="liveliness key"):
            NodePresence.parse(key)


def test_node_zenoh_flags_are_checked_in_one_sentence(tmp_path):
    """manyfold node refuses a client without a router, and a bad endpoint, in one sentence (exit 2)."""
    _m, path = write_manifest(tmp_path, split_graph(device=False))
    base = [sys.executable, "-m", "manyfold", "node", "--manifest", str(path), "--node", "a", "--node-id", "1", "--partition", "control",
            "--listen", "127.0.0.1:0"]  # fmt: skip
    for extra, expected in (
        (["--zenoh-mode", "client"], "a Zenoh client needs a router to connect to: give --zenoh-connect ENDPOINT"),
        (["--zenoh-connect", "127.0.0.1:7447"], "Zenoh connect endpoint '127.0.0.1:7447' is not a Zenoh endpoint"),
        (["--zenoh-connect", "tcp/127.0.0.1:7447", "--zenoh-prefix", "a//b"], "the Zenoh prefix 'a//b' must be key chunks"),
    ):
        done = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
