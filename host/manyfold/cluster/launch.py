"""How each planned node is started: the command line of the contract (docs/edge.md), for the
``manyfold-node`` binary or ``manyfold node``.

A ``native`` node runs ``manyfold-node`` when the binary is found (``MANYFOLD_NODE``, then
``PATH``, then a checkout's ``target/release`` or ``target/debug``); else ``manyfold node``
runs it, and the :class:`LaunchCommand` says so. A ``python`` node always runs ``manyfold node``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from manyfold.cluster.address import Address
from manyfold.cluster.errors import ClusterError
from manyfold.cluster.plan import Plan, PlannedNode, Runtime

BINARY = "manyfold-node"


@dataclass(frozen=True)
class LaunchCommand:
    """What runs one node: its argv, which program, and why (for the progress display)."""

    argv: tuple[str, ...]
    program: str
    """``manyfold-node`` or ``manyfold node``."""
    note: str = ""


def find_native() -> Path | None:
    """The ``manyfold-node`` binary, or None."""
    explicit = os.environ.get("MANYFOLD_NODE")
    if explicit:
        path = Path(explicit)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    on_path = shutil.which(BINARY)
    if on_path:
        return Path(on_path)
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "Cargo.toml").is_file():
        for profile in ("release", "debug"):
            candidate = checkout / "target" / profile / BINARY
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


def _dialable(address: Address) -> bool:
    return address.port != 0 and address.host not in ("0.0.0.0", "::", "")


def python_node_argv() -> tuple[str, ...]:
    """``manyfold node`` with this interpreter (the one the plan was started from)."""
    return (sys.executable, "-m", "manyfold", "node")


@dataclass(frozen=True)
class Launcher:
    """Builds each node's command line for a plan read from ``plan_dir``."""

    plan: Plan
    plan_dir: Path
    native: Path | None = None
    """The ``manyfold-node`` binary (None: not found)."""
    store_root: Path | None = None
    """Each node's store directory is ``<store_root>/<node name>`` (default: the plan's directory)."""

    def manifest_path(self) -> Path:
        return self.plan_dir / self.plan.manifest

    def flags(self, node: PlannedNode) -> list[str]:
        """The contract's flags for ``node`` (the same for both programs but ``--device``)."""
        out = ["--manifest", str(self.manifest_path()), "--node", node.name, "--node-id", str(node.id)]
        for p in node.partitions:
            out += ["--partition", p]
        out += ["--listen", str(node.listen), "--admin", str(node.admin)]
        for link in self.plan.links_of(node.name):
            if link.dialer == node.name and link.listener is not None:
                peer = self.plan.node(link.listener)
                out += ["--link", f"{link.name}={link.transport.value}://{peer.listen}"]
            if link.key_file is not None:
                key = self.plan_dir / link.key_file
                if not key.is_file():
                    raise ClusterError(f"link {link.name}: key file {key} does not exist")
                out += ["--key", f"{link.name}={key}"]
        for peer in self.peers(node):
            out += ["--peer", str(peer)]
        if self.plan.zenoh is not None:  # every node joins: presence and the query plane, not only its links
            out += self.plan.zenoh.flags()
        out += ["--store", str((self.store_root or self.plan_dir) / node.name)]
        return out

    def peers(self, node: PlannedNode) -> tuple[Address, ...]:
        """Every other planned node's admin endpoint (discovery's configured peers), so that a
        cluster found from one address lists all. None for a node bound to a wildcard address
        (it would need ``--advertise``), and never a wildcard peer (nobody can dial it)."""
        if not _dialable(node.admin) or not _dialable(node.listen):
            return ()
        return tuple(n.admin for n in self.plan.nodes if n.name != node.name and _dialable(n.admin))

    def command(self, node: PlannedNode) -> LaunchCommand:
        flags = self.flags(node)
        if node.runtime is Runtime.NATIVE and self.native is not None and node.app is None and not node.devices:
            return LaunchCommand((str(self.native), *flags), BINARY)
        for d in node.devices:
            flags += ["--device", f"{d.partition}={d.port}"]
        if node.app is not None:
            flags += ["--app", node.app]
        note = ""
        if node.runtime is Runtime.NATIVE and (node.app is not None or node.devices):
            note = "it runs an app or owns a device, which only manyfold node can"
        elif node.runtime is Runtime.NATIVE:
            note = f"{BINARY} not found, so it runs in Python; build it with: cargo build --release -p manyfold-runtime --bin {BINARY}"
        return LaunchCommand((*python_node_argv(), *flags), "manyfold node", note)


__all__ = ["BINARY", "LaunchCommand", "Launcher", "find_native", "python_node_argv"]
