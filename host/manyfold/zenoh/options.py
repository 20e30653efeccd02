"""How a node reaches Zenoh, typed: the mode, the router endpoints it connects to, the endpoints
it listens on, and the key prefix; and the key-safety rule for names that become key chunks.

Text only at the boundaries: :meth:`ZenohOptions.flags` (``--zenoh-*`` of ``manyfold-node`` and
``manyfold node``), :meth:`ZenohOptions.native_kwargs` (``_native.Node``), and the plan's
``[zenoh]`` table (:meth:`ZenohOptions.from_table`, :meth:`ZenohOptions.toml_lines`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from manyfold.cluster.errors import ClusterError

DEFAULT_PREFIX = "manyfold"
DEFAULT_ROUTER = "tcp/127.0.0.1:7447"
"""Zenoh's usual router port on this host: the plan's default when nothing names a router."""
KEY_UNSAFE = "/*$?#"
"""Characters a name must not hold when it becomes a chunk of a Zenoh key (docs/edge.md)."""
_ENDPOINT = re.compile(r"^[a-z][a-z0-9-]*/\S+$")


class ZenohMode(str, enum.Enum):
    """``client``: every message goes through the router (the tested mode, what the plan
    defaults to). ``peer``: the router is a rendezvous; peers then talk directly, so delivery
    goes on when the router dies."""

    CLIENT = "client"
    PEER = "peer"


def key_unsafe(name: str) -> str | None:
    """The first character of ``name`` a Zenoh key chunk cannot hold, or None."""
    return next((c for c in name if c in KEY_UNSAFE), None)


def check_key_safe(name: str, what: str) -> None:
    """Refuses ``name`` (``what`` says whose: "link ab", "node edge-a") when it cannot be a
    Zenoh key chunk."""
    bad = key_unsafe(name)
    if bad is not None or not name:
        raise ClusterError(f"{what} runs on Zenoh, where its name {name!r} is part of a key, so it must not contain / * $ ? # (it has {bad!r})")


def check_endpoint(text: str, what: str) -> str:
    """``text`` when it looks like a Zenoh endpoint (``tcp/HOST:PORT``), else one sentence."""
    if not _ENDPOINT.match(text):
        raise ClusterError(f"{what} {text!r} is not a Zenoh endpoint like tcp/127.0.0.1:7447")
    return text


_PREFIX_CHUNK = re.compile(r"^[A-Za-z0-9_-]+$")


def check_prefix(prefix: str, what: str = "the Zenoh prefix") -> str:
    """A key prefix: chunks of letters, digits, ``_`` and ``-`` joined by single ``/`` (the
    runtime's rule, ``node::zenoh::prefix_safe``)."""
    if not prefix or not all(_PREFIX_CHUNK.match(c) for c in prefix.split("/")):
        raise ClusterError(f"{what} {prefix!r} must be key chunks of letters, digits, _ or - joined by /, e.g. manyfold or site1/manyfold")
    return prefix


@dataclass(frozen=True)
class ZenohOptions:
    """A node's Zenoh session: ``mode``, the endpoints it ``connect``\\ s to (routers in client
    mode; rendezvous in peer mode), the endpoints it ``listen``\\ s on (peer mode), and the key
    ``prefix`` that separates deployments sharing a router."""

    mode: ZenohMode = ZenohMode.CLIENT
    connect: tuple[str, ...] = ()
    listen: tuple[str, ...] = ()
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        for e in self.connect:
            check_endpoint(e, "Zenoh connect endpoint")
        for e in self.listen:
            check_endpoint(e, "Zenoh listen endpoint")
        check_prefix(self.prefix)
        if self.mode is ZenohMode.CLIENT and not self.connect:
            raise ClusterError("a Zenoh client needs a router to connect to: give --zenoh-connect ENDPOINT (e.g. tcp/127.0.0.1:7447)")
        if self.mode is ZenohMode.PEER and not self.connect and not self.listen:
            raise ClusterError("a Zenoh peer needs an endpoint to meet others at (multicast scouting is off): give --zenoh-connect or --zenoh-listen")

    @staticmethod
    def client(*connect: str, prefix: str = DEFAULT_PREFIX) -> "ZenohOptions":
        return ZenohOptions(ZenohMode.CLIENT, tuple(connect), (), prefix)

    @staticmethod
    def peer(*connect: str, listen: tuple[str, ...] = (), prefix: str = DEFAULT_PREFIX) -> "ZenohOptions":
        return ZenohOptions(ZenohMode.PEER, tuple(connect), tuple(listen), prefix)

    @staticmethod
    def from_flags(connect: list[str] | tuple[str, ...], listen: list[str] | tuple[str, ...] = (), mode: str | None = None,
                   prefix: str | None = None) -> "ZenohOptions | None":  # fmt: skip
        """The ``--zenoh-*`` flags, or None when none was given."""
        if not connect and not listen and mode is None and prefix is None:
            return None
        try:
            parsed = ZenohMode(mode or ZenohMode.CLIENT.value)
        except ValueError:
            raise ClusterError(f"--zenoh-mode must be client or peer, got {mode!r}") from None
        return ZenohOptions(parsed, tuple(connect), tuple(listen), prefix or DEFAULT_PREFIX)

    def flags(self) -> list[str]:
        """The ``--zenoh-*`` flags of ``manyfold-node`` and ``manyfold node``."""
        out: list[str] = []
        for e in self.connect:
            out += ["--zenoh-connect", e]
        for e in self.listen:
            out += ["--zenoh-listen", e]
        return out + ["--zenoh-mode", self.mode.value, "--zenoh-prefix", self.prefix]

    def native_kwargs(self) -> dict:
        """The keyword arguments of ``_native.Node``."""
        return {"zenoh_connect": list(self.connect), "zenoh_listen": list(self.listen), "zenoh_mode": self.mode.value,
                "zenoh_prefix": self.prefix}  # fmt: skip

    @staticmethod
    def from_table(table, where: str) -> "ZenohOptions":
        """The plan's or nodes file's ``[zenoh]`` table (a :class:`~manyfold.cluster.toml_text.Table`)."""
        known = {"mode", "connect", "listen", "prefix"}
        unknown = sorted(set(table.data) - known)
        if unknown:
            raise ClusterError(f"{where}: [zenoh] has no key {unknown[0]!r} (it has {', '.join(sorted(known))})")
        mode = table.choice("mode", ZenohMode, ZenohMode.CLIENT)
        try:
            return ZenohOptions(mode, table.texts("connect", ()), table.texts("listen", ()), table.text("prefix", DEFAULT_PREFIX))
        except ClusterError as error:
            raise ClusterError(f"{where}: [zenoh]: {error}") from None

    def toml_lines(self) -> list[str]:
        """The ``[zenoh]`` table as TOML lines."""
        from manyfold.cluster import toml_text

        out = ["[zenoh]", toml_text.line("mode", self.mode.value, "client: through the router; peer: the router is a rendezvous"),
               toml_text.line("connect", list(self.connect), "the Zenoh router(s)")]  # fmt: skip
        if self.listen:
            out.append(toml_text.line("listen", list(self.listen)))
        out.append(toml_text.line("prefix", self.prefix, "every key starts with it"))
        return out


__all__ = ["DEFAULT_PREFIX", "DEFAULT_ROUTER", "KEY_UNSAFE", "ZenohMode", "ZenohOptions", "check_endpoint", "check_key_safe",
           "check_prefix", "key_unsafe"]  # fmt: skip
