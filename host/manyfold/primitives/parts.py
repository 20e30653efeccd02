"""The pieces a contract declares: ports, state, policies, and what it does about each failure."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from manyfold.primitives.enums import StateKind
from manyfold.primitives.errors import PrimitiveError


@dataclass(frozen=True)
class Port:
    """A named input or output of a primitive, the type it carries (as text: ``float``,
    ``T``, ``Delivery[T]``) and what flows there. An installed instance exposes each port as a
    route."""

    name: str
    type: str
    doc: str = ""


@dataclass(frozen=True)
class State:
    """A piece of state a primitive keeps, where it lives, and (durable state) the kind of
    store that holds it (``EventLog``, ``SnapshotStore``, ``CheckpointStore``, ``Keyspace``)."""

    name: str
    kind: StateKind
    store: str | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", StateKind(self.kind))
        except ValueError:
            raise PrimitiveError(f"state {self.name}: kind must be one of {', '.join(k.value for k in StateKind)}, got {self.kind!r}") from None
        if self.kind == StateKind.DURABLE and not self.store:
            raise PrimitiveError(f"state {self.name} is durable: name the kind of store that keeps it (store='EventLog', ...)")


_MISSING: Any = object()


@dataclass(frozen=True)
class Policy:
    """A knob an installer takes: its name, Python type (``int``, ``float``, ``str``, ``bool``
    or a str-valued Enum), whether it must be given, its default, the values it takes, and a
    sentence."""

    name: str
    type: type
    required: bool = False
    default: Any = None
    choices: tuple = ()
    doc: str = ""
    record: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)
    """How a value appears in the manifest when it is not plain data (a schema as its label)."""

    def __post_init__(self) -> None:
        if self.required and self.default is not None:
            raise PrimitiveError(f"policy {self.name} is required, so it cannot have a default")
        if isinstance(self.type, type) and issubclass(self.type, enum.Enum) and not self.choices:
            object.__setattr__(self, "choices", tuple(m.value for m in self.type))

    @property
    def type_name(self) -> str:
        return getattr(self.type, "__name__", str(self.type))

    def check(self, value: Any, where: str) -> Any:
        """``value`` as this policy records it (an enum as its value), or PrimitiveError."""
        kind = self.type
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            try:
                value = kind(value).value
            except ValueError:
                raise PrimitiveError(f"{where}: policy {self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}") from None
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif kind is tuple and isinstance(value, (list, tuple)):
            value = tuple(value)
        elif kind is object:
            pass
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PrimitiveError(f"{where}: policy {self.name} must be {self.type_name}, got {type(value).__name__} {value!r}")
        if self.choices and value not in self.choices:
            raise PrimitiveError(f"{where}: policy {self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        return value


@dataclass(frozen=True)
class Handled:
    """A failure the primitive handles: how, in a sentence, and the tests that prove it
    (``tests/path.py::test_name``)."""

    how: str
    tests: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutsideProfile:
    """A failure the primitive does not handle, and why that is acceptable where it runs."""

    why: str


Coverage = Handled | OutsideProfile


def handled(how: str, *, tests: tuple[str, ...] | list[str] = ()) -> Handled:
    """A failure the primitive handles (``how``), proved by ``tests``."""
    return Handled(how, tuple(tests))


def outside_profile(why: str) -> OutsideProfile:
    """A failure declared outside the primitive's profile, and why."""
    return OutsideProfile(why)


__all__ = ["Coverage", "Handled", "OutsideProfile", "Policy", "Port", "State", "handled", "outside_profile"]
