"""TOML at the edges: read a file into plain data (``tomllib``, or ``tomli`` before Python 3.11),
and write the few value kinds a plan holds (strings, integers, booleans, lists of strings,
inline tables of strings) as TOML text.

The writer is a few lines rather than ``tomli-w`` because a plan is meant to be reviewed: it
carries comments, which ``tomli-w`` cannot write (docs/dependencies.md).
"""

from __future__ import annotations

import enum
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from manyfold.cluster.errors import ClusterError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the package depends on tomli before 3.11
    import tomli as tomllib

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def read(path: Path, what: str) -> dict:
    """The TOML document in ``path`` (``what`` names it in errors: "plan", "nodes file")."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ClusterError(f"cannot read the {what} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ClusterError(f"the {what} {path} is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ClusterError(f"the {what} {path} is not valid TOML: {error}") from None


def key(name: str) -> str:
    """A key, bare when it can be, else quoted."""
    return name if _BARE_KEY.match(name) else string(name)


def string(text: str) -> str:
    """A basic string (JSON's escapes are TOML's for the characters that need one)."""
    return json.dumps(text, ensure_ascii=False)


def value(v: object) -> str:
    """A value: str, int, bool, a list of those, or a mapping of str to str (inline table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, Sequence):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def line(name: str, v: object, comment: str = "") -> str:
    """``name = value`` with an optional trailing comment."""
    text = f"{key(name)} = {value(v)}"
    return f"{text:<40} # {comment}" if comment else text


class Table:
    """Typed access to one parsed TOML table: each getter checks the type and says in a sentence,
    naming ``where``, what is missing or mistyped."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ClusterError(f"{where} must be a table")
        self.data, self.where = data, where

    def _get(self, key: str, kind: type, what: str, default: object = ...) -> object:
        if key not in self.data:
            if default is ...:
                raise ClusterError(f"{self.where} has no {key}")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ClusterError(f"{self.where}: {key} must be {what}, got {value!r}")
        return value

    def text(self, key: str, default: object = ...) -> str:
        return self._get(key, str, "a string", default)  # type: ignore[return-value]

    def integer(self, key: str, default: object = ...) -> int:
        return self._get(key, int, "an integer", default)  # type: ignore[return-value]

    def texts(self, key: str, default: object = ...) -> tuple[str, ...]:
        items = self._get(key, list, "a list of strings", default)
        if not all(isinstance(i, str) for i in items):  # type: ignore[union-attr]
            raise ClusterError(f"{self.where}: {key} must be a list of strings, got {items!r}")
        return tuple(items)  # type: ignore[arg-type]

    def mapping(self, key: str) -> dict[str, str]:
        table = self._get(key, dict, "a table of strings", {})
        if not all(isinstance(v, str) for v in table.values()):  # type: ignore[union-attr]
            raise ClusterError(f"{self.where}: {key} must be a table of strings, got {table!r}")
        return dict(table)  # type: ignore[arg-type]

    def tables(self, key: str) -> list:
        return self._get(key, list, "an array of tables ([[...]])", [])  # type: ignore[return-value]

    def choice(self, key: str, kind: type[enum.Enum], default: object = ...) -> enum.Enum:
        if key not in self.data and default is not ...:
            return default  # type: ignore[return-value]
        text = self.text(key)
        try:
            return kind(text)
        except ValueError:
            choices = ", ".join(repr(k.value) for k in kind)
            raise ClusterError(f"{self.where}: {key} must be one of {choices}, got {text!r}") from None


__all__ = ["Table", "key", "line", "read", "string", "value"]
