"""A primitive's contract: what it is, needs, provides, keeps, takes and promises, defined once.

:meth:`Primitive.define` checks the contract as a whole (a name, a version from 1, an
installer exactly when it is more than named, all six failures spoken to from
``fault_tested`` on); :meth:`Primitive.install` lowers it into a graph
(``manyfold.primitives.install``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manyfold.primitives.enums import Failure, Family, Layer, Maturity
from manyfold.primitives.errors import PrimitiveError
from manyfold.primitives.parts import Coverage, Handled, OutsideProfile, Policy, Port, State

if TYPE_CHECKING:
    from manyfold.graph import Graph
    from manyfold.manifest.model import Manifest, PrimitiveRecord
    from manyfold.primitives.findings import Finding
    from manyfold.primitives.install import Installed

Installer = Callable[..., "Installed"]
"""``(ctx: InstallContext, **policies) -> Installed``."""
Validator = Callable[["Manifest", "PrimitiveRecord"], "list[Finding]"]
"""``(manifest, record) -> [Finding]``: a contract's own check of one installed instance."""

_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def _enum(cls, value, what: str, name: str):
    try:
        return cls(value)
    except ValueError:
        raise PrimitiveError(f"primitive {name}: {what} must be one of {', '.join(m.value for m in cls)}, got {value!r}") from None


@dataclass(frozen=True)
class Primitive:
    """A primitive's contract. Build one with :meth:`define`; every field is public data (the
    catalog's docs and the failure-coverage test read them)."""

    name: str
    version: int
    family: Family
    layer: Layer
    summary: str
    requires: tuple[str, ...] = ()
    """What it is built from (other primitives or runtime capabilities), by name."""
    provides: tuple[str, ...] = ()
    """What it gives the graph, by name (``Bounded``, ``Replayable``, ``Ack`` ...)."""
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    state: tuple[State, ...] = ()
    policies: tuple[Policy, ...] = ()
    failures: Mapping[Failure, Coverage] = field(default_factory=dict)
    maturity: Maturity = Maturity.NAMED
    installer: Installer | None = field(default=None, compare=False, repr=False)
    validators: tuple[Validator, ...] = field(default=(), compare=False, repr=False)
    queries: tuple[str, ...] = ()
    """Query kinds that answer about an installed instance (``health``, ``view`` ...)."""
    kinds: tuple[str, ...] = ()
    """The runtime node kinds its installer builds (``resistor``, ``durable_queue`` ...)."""

    @classmethod
    def define(
        cls,
        *,
        name: str,
        version: int,
        family: Family | str,
        layer: Layer | str,
        summary: str,
        requires: Sequence[str] = (),
        provides: Sequence[str] = (),
        inputs: Sequence[Port] = (),
        outputs: Sequence[Port] = (),
        state: Sequence[State] = (),
        policies: Sequence[Policy] = (),
        failures: Mapping[Failure | str, Coverage] | None = None,
        maturity: Maturity | str = Maturity.NAMED,
        installer: Installer | None = None,
        validators: Sequence[Validator] = (),
        queries: Sequence[str] = (),
        kinds: Sequence[str] = (),
    ) -> "Primitive":
        """A checked contract; :class:`PrimitiveError` says in one sentence what is wrong."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise PrimitiveError(f"a primitive's name is a CamelCase word (DurableQueue), got {name!r}")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise PrimitiveError(f"primitive {name}: version must be an integer from 1, got {version!r}")
        if not summary or not isinstance(summary, str):
            raise PrimitiveError(f"primitive {name}: give a one-sentence summary")
        family = _enum(Family, family, "family", name)
        layer = _enum(Layer, layer, "layer", name)
        maturity = _enum(Maturity, maturity, "maturity", name)
        coverage: dict[Failure, Coverage] = {}
        for failure, said in (failures or {}).items():
            failure = _enum(Failure, failure, "a failure", name)
            if not isinstance(said, (Handled, OutsideProfile)):
                raise PrimitiveError(f"primitive {name}: failure {failure.value} must be handled(...) or outside_profile(...), got {said!r}")
            coverage[failure] = said
        for group, items in (("ports", (*inputs, *outputs)), ("state", state), ("policies", policies)):
            names = [i.name for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise PrimitiveError(f"primitive {name}: {group} name {', '.join(dup)} twice")
        ports = {p.name for p in (*inputs, *outputs)}
        clash = sorted(ports & {p.name for p in policies})
        if clash:
            raise PrimitiveError(f"primitive {name}: {', '.join(clash)} is both a port and a policy")
        if maturity == Maturity.NAMED and installer is not None:
            raise PrimitiveError(f"primitive {name} has an installer, so it is at least installable (maturity=Maturity.INSTALLABLE)")
        if maturity > Maturity.NAMED and installer is None:
            raise PrimitiveError(f"primitive {name} is {maturity.value} but has no installer; without one it is named only")
        if maturity >= Maturity.FAULT_TESTED:
            silent = [f.value for f in Failure if f not in coverage]
            if silent:
                raise PrimitiveError(f"primitive {name} is {maturity.value} but says nothing about {', '.join(silent)}: handle each failure or declare it outside the profile")
            untested = [f.value for f, said in coverage.items() if isinstance(said, Handled) and not said.tests]
            if untested:
                raise PrimitiveError(f"primitive {name} is {maturity.value} but handles {', '.join(untested)} without naming a test")
        return cls(
            name=name, version=version, family=family, layer=layer, summary=summary, requires=tuple(requires),
            provides=tuple(provides), inputs=tuple(inputs), outputs=tuple(outputs), state=tuple(state),
            policies=tuple(policies), failures=coverage, maturity=maturity, installer=installer,
            validators=tuple(validators), queries=tuple(queries), kinds=tuple(kinds),
        )

    def __hash__(self) -> int:  # failures is a dict: hash by identity of the contract's name and version
        return hash((self.name, self.version))

    # ---------------------------------------------------------------- reading

    @property
    def named_only(self) -> bool:
        return self.installer is None

    def coverage(self) -> list[tuple[Failure, Coverage | None]]:
        """What the contract says about each of the six failures, in order (None: nothing)."""
        return [(f, self.failures.get(f)) for f in Failure]

    def policy(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

    def port(self, name: str) -> Port | None:
        return next((p for p in (*self.inputs, *self.outputs) if p.name == name), None)

    def durable_stores(self) -> list[str]:
        """The store kinds its durable state needs (one per durable state entry)."""
        return [s.store for s in self.state if s.store]

    # ---------------------------------------------------------------- installing

    def install(self, graph: "Graph", name: str, **kwargs: Any) -> "Installed":
        """Install an instance called ``name`` into ``graph``. Keyword arguments named after a
        port bind that port to a route (``source=temp``); the others are policies, checked
        against the contract. Returns the :class:`Installed` instance, whose ports are routes."""
        from manyfold.primitives.install import install

        return install(self, graph, name, **kwargs)


__all__ = ["Installer", "Primitive", "Validator"]
