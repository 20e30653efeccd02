"""The Zenoh part of ``manyfold._native``, behind one check: a build without the zenoh feature
says so in one sentence instead of an AttributeError."""

from __future__ import annotations

import re
from types import ModuleType

from manyfold.cluster.errors import ClusterError

NO_ZENOH = "this build has no Zenoh transport; build manyfold-runtime with the zenoh feature"


class ZenohUnavailable(ClusterError):
    """The extension was built without Zenoh."""


_LOCATION = re.compile(r"\s+at /\S+?\.rs:\d+\.?")


def sentence(error: BaseException) -> str:
    """A binding's error as one sentence, without the Rust source location Zenoh appends."""
    return _LOCATION.sub("", str(error)).strip().rstrip(".!")


def available() -> bool:
    """Whether the extension carries Zenoh (``_native.ZENOH``)."""
    from manyfold import _native

    return bool(getattr(_native, "ZENOH", False))


def native() -> ModuleType:
    """``manyfold._native``, when it carries Zenoh."""
    from manyfold import _native

    if not getattr(_native, "ZENOH", False):
        raise ZenohUnavailable(NO_ZENOH)
    return _native


__all__ = ["NO_ZENOH", "ZenohUnavailable", "available", "native", "sentence"]
