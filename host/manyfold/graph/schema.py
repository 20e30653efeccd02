"""Typed, versioned schemas built from dataclasses.

A :class:`Schema` names the type of a route's payloads. Build one from a dataclass with
:func:`schema` (a decorator) or :meth:`Schema.of`, or use the scalar schemas ``FLOAT``, ``INT``,
``BOOL``, ``TEXT`` and ``BYTES``. Field types may be ``int``, ``float``, ``bool``, ``str``,
``bytes``, ``list[T]``, ``Optional[T]`` (``T | None``) and nested dataclasses.

The schema hash is SHA-256 over the canonical CBOR of the descriptor
``[name, version, type]`` (see ``docs/graph.md``), computed by the Rust core, so it is the same
in every process and on every machine; two routes can be connected only when their hashes match.

>>> from dataclasses import dataclass
>>> @schema(version=2)
... @dataclass(frozen=True)
... class Reading:
...     zone: str
...     celsius: float
>>> Reading.__manyfold_schema__.label
'Reading@2'
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Optional, Union

from manyfold._native import schema_hash as _native_schema_hash

Descriptor = Any
"""A schema type as nested tuples: ``("float",)``, ``("list", T)``, ``("optional", T)``,
``("record", name, ((field, T), ...), cls)``. Used only at the boundary with the extension."""

_SCALARS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "text", bytes: "bytes"}
_PYTHON_NAMES = {"bool": "bool", "int": "int", "float": "float", "text": "str", "bytes": "bytes"}


class SchemaDefinitionError(TypeError):
    """A dataclass cannot be turned into a schema (an unsupported field type, say)."""


@dataclass(frozen=True)
class Schema:
    """A named, versioned payload type and its hash."""

    name: str
    version: int
    descriptor: Descriptor
    python_type: type | None = None
    """The Python class values of this schema are (a dataclass, or the scalar type)."""

    @functools.cached_property
    def hash(self) -> bytes:
        """SHA-256 of the canonical descriptor (32 bytes), computed once by the Rust core."""
        return _native_schema_hash(self.name, self.version, self.descriptor)

    @functools.cached_property
    def hash_hex(self) -> str:
        return self.hash.hex()

    @property
    def label(self) -> str:
        """``name@version``, as people refer to a schema."""
        return f"{self.name}@{self.version}"

    def type_name(self) -> str:
        """The payload type as Python spelling, for messages: ``float``, ``Reading``, ``list[int]``."""
        return _type_name(self.descriptor)

    def __repr__(self) -> str:
        return f"Schema({self.label}, {self.type_name()}, hash={self.hash_hex[:16]})"

    @staticmethod
    def of(cls: type, *, version: int = 1, name: str | None = None) -> "Schema":
        """The schema of a dataclass (or a scalar type such as ``float``)."""
        if cls in _SCALARS:
            return Schema(name or _SCALARS[cls], version, (_SCALARS[cls],), cls)
        existing = getattr(cls, "__manyfold_schema__", None)
        if existing is not None and name is None and version == existing.version:
            return existing
        if not dataclasses.is_dataclass(cls):
            raise SchemaDefinitionError(f"{cls!r} is not a dataclass or a scalar type (int, float, bool, str, bytes)")
        return Schema(name or cls.__name__, version, _record_descriptor(cls), cls)


def _type_name(d: Descriptor) -> str:
    tag = d[0]
    if tag in _PYTHON_NAMES:
        return _PYTHON_NAMES[tag]
    if tag == "list":
        return f"list[{_type_name(d[1])}]"
    if tag == "optional":
        return f"Optional[{_type_name(d[1])}]"
    return d[1]


def _record_descriptor(cls: type, _seen: tuple[type, ...] = ()) -> Descriptor:
    if cls in _seen:
        raise SchemaDefinitionError(f"dataclass {cls.__name__} refers to itself; recursive schemas are not supported")
    try:
        hints = typing.get_type_hints(cls)
    except Exception as error:  # unresolvable forward references
        raise SchemaDefinitionError(f"cannot read the field types of {cls.__name__}: {error}") from None
    fields = []
    for field in dataclasses.fields(cls):
        fields.append((field.name, _field_descriptor(hints[field.name], f"{cls.__name__}.{field.name}", _seen + (cls,))))
    return ("record", cls.__name__, tuple(fields), cls)


def _field_descriptor(hint: Any, where: str, seen: tuple[type, ...]) -> Descriptor:
    if hint in _SCALARS:
        return (_SCALARS[hint],)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return ("optional", _field_descriptor(inner, where, seen))
    if origin is list and len(args) == 1:
        return ("list", _field_descriptor(args[0], where, seen))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _record_descriptor(hint, seen)
    raise SchemaDefinitionError(
        f"{where} has type {hint!r}; supported: int, float, bool, str, bytes, list[T], Optional[T] and dataclasses"
    )


def schema(cls: type | None = None, *, version: int = 1, name: str | None = None):
    """Class decorator: attach a :class:`Schema` to a dataclass as ``__manyfold_schema__``."""

    def attach(target: type) -> type:
        if not dataclasses.is_dataclass(target):
            raise SchemaDefinitionError(f"@schema goes on a dataclass (put it above @dataclass); {target.__name__} is not one")
        target.__manyfold_schema__ = Schema(name or target.__name__, version, _record_descriptor(target), target)
        return target

    return attach(cls) if cls is not None else attach


def as_schema(value: "Schema | type") -> Schema:
    """Accept a Schema, a decorated dataclass, a plain dataclass, or a scalar type."""
    if isinstance(value, Schema):
        return value
    if isinstance(value, type):
        return getattr(value, "__manyfold_schema__", None) or Schema.of(value)
    raise SchemaDefinitionError(f"expected a Schema, a dataclass or a scalar type, got {value!r}")


FLOAT = Schema.of(float)
INT = Schema.of(int)
BOOL = Schema.of(bool)
TEXT = Schema.of(str)
BYTES = Schema.of(bytes)


@dataclass(frozen=True)
class WindowResult:
    """What a keyed or time window emits: the key, the window's bounds, and its aggregate.

    For time windows ``[start_us, end_us)`` is the window (end exclusive). For count windows
    ``start_us`` and ``end_us`` are the event times of the first and last value (inclusive).
    """

    key: Any
    start_us: int
    end_us: int
    count: int
    value: Optional[float]
    forced: bool
    """True when the window was closed before its watermark to bound memory."""


def window_result_schema(key: Schema | None) -> Schema:
    """The schema of WindowResult for a key type (``None`` for unkeyed windows)."""
    key_descriptor = ("optional", key.descriptor) if key is not None else ("optional", ("int",))
    fields = (
        ("key", key_descriptor),
        ("start_us", ("int",)),
        ("end_us", ("int",)),
        ("count", ("int",)),
        ("value", ("optional", ("float",))),
        ("forced", ("bool",)),
    )
    return Schema("WindowResult", 1, ("record", "WindowResult", fields, WindowResult), WindowResult)


@dataclass(frozen=True)
class Pair:
    """What a join emits: one left value and one right value."""

    left: Any
    right: Any


def pair_schema(left: Schema, right: Schema) -> Schema:
    """The schema of Pair for two input schemas."""
    fields = (("left", left.descriptor), ("right", right.descriptor))
    return Schema(f"Pair[{left.name},{right.name}]", 1, ("record", "Pair", fields, Pair), Pair)


@dataclass(frozen=True)
class Delivery:
    """What a DurableQueue delivers: the message's id (ack it with this), which delivery
    attempt this is (1 the first time), and the message."""

    id: int
    attempt: int
    body: Any


def delivery_schema(body: Schema) -> Schema:
    """The schema of Delivery for a message schema."""
    fields = (("id", ("int",)), ("attempt", ("int",)), ("body", body.descriptor))
    return Schema(f"Delivery[{body.name}]", 1, ("record", "Delivery", fields, Delivery), Delivery)


def field_schema(of: Schema, field: str) -> Schema:
    """The schema of one field of a record schema (for keys)."""
    if of.descriptor[0] != "record":
        raise SchemaDefinitionError(f"{of.label} is not a record, so it has no field {field!r}")
    for name, d in of.descriptor[2]:
        if name == field:
            if d[0] == "optional":
                d = d[1]
            if d[0] in _PYTHON_NAMES:
                return Schema(d[0], 1, d, None)
            return Schema(_type_name(d), 1, d, None)
    names = ", ".join(name for name, _ in of.descriptor[2])
    raise SchemaDefinitionError(f"{of.label} has no field {field!r} (fields: {names})")
