"""The catalog's index: every contract by name, looked up by name or family.

A family module registers its contracts by being imported from ``manyfold.catalog``: every
module-level :class:`~manyfold.primitives.Primitive` in it joins the catalog (two contracts
with one name are refused).
"""

from __future__ import annotations

from types import ModuleType

from manyfold.primitives import Family, Primitive, PrimitiveError

_CONTRACTS: dict[str, Primitive] = {}


def register(*contracts: Primitive) -> None:
    """Add contracts to the catalog (the same object twice is harmless; two with one name are not)."""
    for contract in contracts:
        if not isinstance(contract, Primitive):
            raise PrimitiveError(f"only primitive contracts join the catalog, got {type(contract).__name__}")
        known = _CONTRACTS.get(contract.name)
        if known is not None and known is not contract:
            raise PrimitiveError(f"the catalog already has a contract called {contract.name}")
        _CONTRACTS[contract.name] = contract


def register_module(module: ModuleType) -> None:
    """Register every module-level contract of ``module``, in name order."""
    found = [v for v in vars(module).values() if isinstance(v, Primitive)]
    register(*sorted(found, key=lambda c: c.name))


def all_contracts() -> list[Primitive]:
    """Every contract, by family (in :class:`Family` order) then name."""
    order = {f: i for i, f in enumerate(Family)}
    return sorted(_CONTRACTS.values(), key=lambda c: (order[c.family], c.name))


def get(name: str) -> Primitive:
    """The contract called ``name``; PrimitiveError naming the near misses when there is none."""
    try:
        return _CONTRACTS[name]
    except KeyError:
        import difflib

        near = difflib.get_close_matches(name, list(_CONTRACTS), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise PrimitiveError(f"the catalog has no primitive called {name!r}{hint}") from None


def find(name: str) -> Primitive | None:
    """The contract called ``name``, or None."""
    return _CONTRACTS.get(name)


def family(f: Family | str) -> list[Primitive]:
    """The contracts of one family, by name."""
    try:
        f = Family(f)
    except ValueError:
        raise PrimitiveError(f"family must be one of {', '.join(x.value for x in Family)}, got {f!r}") from None
    return [c for c in all_contracts() if c.family == f]


__all__ = ["all_contracts", "family", "find", "get", "register", "register_module"]
