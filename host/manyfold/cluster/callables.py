"""The Python functions a node's partitions call, found by the names the manifest gives them.

A manifest refers to a function as ``module.qualname`` when it is importable (``map(fn)`` with
a module-level function), else as ``node.parameter`` (a lambda or a local function). A node
imports the first kind itself; the second kind needs ``--callables MODULE:ATTR``, a mapping
from names to functions (or a function returning one), as ``manifest.load(callables=...)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

from manyfold.cluster.errors import ClusterError
from manyfold.manifest.model import Manifest


def load_attr(spec: str, what: str) -> Any:
    """``MODULE:ATTR`` imported (``what`` names the flag in errors)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ClusterError(f"{what} {spec!r} is not MODULE:ATTR")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ClusterError(f"{what} {spec!r}: cannot import {module_name}: {error}") from None
    try:
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ClusterError(f"{what} {spec!r}: {module_name} has no {attr}") from None
    return obj


def _import_ref(ref: str) -> Callable | None:
    # A nested qualname (Class.method) has more dots: try each split from the right.
    parts = ref.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name, qualname = ".".join(parts[:cut]), parts[cut:]
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for part in qualname:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj if callable(obj) else None
    return None


def resolve(m: Manifest, partitions: Iterable[str], given: str | None = None) -> dict[str, Callable]:
    """The functions the nodes of ``partitions`` refer to: from ``given`` (``MODULE:ATTR``), else
    imported by name. A function found neither way is an error naming the node."""
    wanted = set(partitions)
    supplied: dict[str, Callable] = {}
    if given is not None:
        obj = load_attr(given, "--callables")
        obj = obj() if callable(obj) and not isinstance(obj, dict) else obj
        if not isinstance(obj, dict):
            raise ClusterError(f"--callables {given!r} must be a mapping of names to functions (or a function returning one)")
        supplied = dict(obj)
    out: dict[str, Callable] = {}
    for n in m.nodes:
        if n.partition not in wanted:
            continue
        for ref in n.function_refs():
            fn = supplied.get(ref) or _import_ref(ref)
            if fn is None:
                hint = "" if given else "; give it with --callables MODULE:ATTR (a mapping of names to functions)"
                raise ClusterError(f"node {n.name} (partition {n.partition}) calls {ref}, which cannot be imported{hint}")
            out[ref] = fn
    return out


__all__ = ["load_attr", "resolve"]
