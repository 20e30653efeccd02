"""What a primitive's static checks report about a manifest."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(str, enum.Enum):
    """Whether a finding makes the manifest invalid."""

    ERROR = "error"
    """The manifest is wrong: ``manyfold validate`` fails."""
    WARNING = "warning"
    """Worth knowing, not wrong (a contract this catalog does not know, say)."""


@dataclass(frozen=True)
class Finding:
    """One problem found in a manifest's primitive instance: the check's name, the instance,
    one sentence, and how bad it is."""

    check: str
    """A short stable name: ``unknown_contract``, ``missing_policy``, ``missing_store`` ..."""
    instance: str
    message: str
    severity: Severity = Severity.ERROR

    @property
    def subject(self) -> str:
        return f"primitive {self.instance}"

    def __str__(self) -> str:
        mark = "" if self.severity == Severity.ERROR else " (warning)"
        return f"[{self.check}] {self.subject}: {self.message}{mark}"


__all__ = ["Finding", "Severity"]
