"""Typed answers back from their ``to_dict()``: :func:`from_dict` is the inverse of
:meth:`~manyfold.query.model.Serializable.to_dict` for the query plane's dataclasses, so that an
answer that crossed a process boundary as JSON (a runtime node's ``query`` answer) becomes the
same typed object a local query returns.

Types come from the dataclass's hints: routes by :meth:`Route.parse`, envelope ids from
``ROUTE@SEQ``, taints by name (sets of them from lists), named enums by value and coded (int)
enums by lowercase name, bytes from hex, nested dataclasses, tuples, optionals and dicts. A field
the dict lacks takes the dataclass's default; keys the dataclass does not know are ignored (a
newer node may say more). Anything else that does not fit is a :class:`AnswerShapeError` naming
the field."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, TypeVar

from manyfold.graph import EnvelopeId, Route
from manyfold.graph.errors import RouteError

T = TypeVar("T")


class AnswerShapeError(ValueError):
    """An answer's dict does not have the shape of the typed object asked for."""


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def from_dict(cls: type[T], data: Any, where: str = "answer") -> T:
    """``data`` (a ``to_dict()``, or JSON of one) as an instance of the dataclass ``cls``."""
    return _value(cls, data, where)


def _value(hint: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return data
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _value(arg, data, where)
            except AnswerShapeError as error:
                errors.append(str(error))
        raise AnswerShapeError(errors[0] if len(errors) == 1 else f"{where}: {data!r} fits none of {hint}")
    if data is None:
        raise AnswerShapeError(f"{where}: missing (null) where {getattr(hint, '__name__', hint)} was expected")
    if origin is tuple:
        if not isinstance(data, (list, tuple)):
            raise AnswerShapeError(f"{where}: expected a list, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if args and len(args) != len(data):
            raise AnswerShapeError(f"{where}: expected {len(args)} items, got {len(data)}")
        return tuple(_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data))) if args else tuple(data)
    if origin in (frozenset, set):
        if not isinstance(data, (list, tuple, set, frozenset)):
            raise AnswerShapeError(f"{where}: expected a list, got {type(data).__name__}")
        return origin(_value(args[0], v, where) for v in data) if args else origin(data)
    if origin is dict or hint is dict:
        if not isinstance(data, dict):
            raise AnswerShapeError(f"{where}: expected an object, got {type(data).__name__}")
        if not args:
            return dict(data)
        return {_value(args[0], k, where): _value(args[1], v, f"{where}.{k}") for k, v in data.items()}
    if origin is list:
        if not isinstance(data, (list, tuple)):
            raise AnswerShapeError(f"{where}: expected a list, got {type(data).__name__}")
        return [_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)] if args else list(data)
    if isinstance(hint, type):
        return _typed(hint, data, where)
    return data


def _typed(cls: type, data: Any, where: str) -> Any:
    if dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise AnswerShapeError(f"{where}: expected an object for {cls.__name__}, got {type(data).__name__}")
        hints = _hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.name in data:
                kwargs[f.name] = _value(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise AnswerShapeError(f"{where}: {cls.__name__} needs {f.name!r}, which the answer lacks")
        return cls(**kwargs)
    if cls is Route:
        if isinstance(data, Route):
            return data
        try:
            return Route.parse(str(data))
        except RouteError as error:
            raise AnswerShapeError(f"{where}: {error}") from None
    if cls is EnvelopeId:
        if isinstance(data, EnvelopeId):
            return data
        route, _, seq = str(data).rpartition("@")
        if not route or not seq.isdigit():
            raise AnswerShapeError(f"{where}: an envelope id is ROUTE@SEQ, got {data!r}")
        return EnvelopeId(_typed(Route, route, where), int(seq))
    if issubclass(cls, enum.IntEnum):
        if isinstance(data, int):
            return cls(data)
        try:
            return cls[str(data).upper()]
        except KeyError:
            raise AnswerShapeError(f"{where}: {data!r} is not a {cls.__name__}") from None
    if issubclass(cls, enum.Enum):
        try:
            return cls(data)
        except ValueError:
            raise AnswerShapeError(f"{where}: {data!r} is not a {cls.__name__}") from None
    if cls is bytes:
        if isinstance(data, bytes):
            return data
        try:
            return bytes.fromhex(str(data))
        except ValueError:
            raise AnswerShapeError(f"{where}: expected hex bytes, got {data!r}") from None
    if cls is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if cls in (int, str, bool, float):
        if not isinstance(data, cls) or (cls is int and isinstance(data, bool)):
            raise AnswerShapeError(f"{where}: expected {cls.__name__}, got {type(data).__name__} {data!r}")
        return data
    return data


__all__ = ["AnswerShapeError", "from_dict"]
