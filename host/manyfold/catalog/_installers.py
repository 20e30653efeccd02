"""Installers shared by the catalog's contracts over existing graph operators: one node built by
a Graph method, its input bound from the ``source`` port, its output exposed as ``output``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manyfold.primitives import InstallContext, Installed, Port


def single_node(method: str, *, adapt: Callable[[dict], dict] | None = None) -> Callable[..., Installed]:
    """An installer calling ``graph.<method>(source, **policies, output=, name=)``; ``adapt``
    turns the policies into the method's keyword arguments when they differ."""

    def install(ctx: InstallContext, **policies: Any) -> Installed:
        source = ctx.input("source")
        kwargs = adapt(dict(policies)) if adapt else dict(policies)
        node = getattr(ctx.graph, method)(source, output=ctx.bound("output"), name=ctx.name(), **kwargs)
        ctx.add_node(node)
        return Installed({"source": source, "output": node.output})

    install.__name__ = f"install_{method}"
    return install


def stream_ports(kind: str = "T", out: str | None = None) -> dict:
    """``inputs`` and ``outputs`` for a one-in, one-out operator."""
    return {
        "inputs": (Port("source", kind, "the values to shape"),),
        "outputs": (Port("output", out or kind, "what passes"),),
    }


__all__ = ["single_node", "stream_ports"]
