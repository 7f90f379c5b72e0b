"""Exceptions raised by ValueFlow.

Every error a user can trigger with bad input is a :class:`ValueFlowError`: its message
says what was wrong and what would be right. The CLI prints such errors as one line
(plus the hint) and exits with status 2, never with a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BackendError",
    "ConfigError",
    "DataError",
    "UnknownNameError",
    "ValueFlowError",
    "WorkspaceError",
    "WorkspaceLockedError",
    "close_matches",
]


class ValueFlowError(Exception):
    """Base class for every error ValueFlow raises on purpose.

    Args:
        message: What was wrong.
        hint: What would be right, or how to fix it (optional).
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHint: {hint}")


class ConfigError(ValueFlowError):
    """A setting, option or configuration file is invalid."""


class DataError(ValueFlowError):
    """Input data (a file, a column, a row) is malformed."""


class UnknownNameError(ValueFlowError, KeyError):
    """A name (value, theory, backend, ...) is not known; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return Exception.__str__(self)


class WorkspaceError(ValueFlowError):
    """The workspace database cannot be opened, migrated or written."""


class WorkspaceLockedError(WorkspaceError):
    """Another process holds the workspace for writing."""


class BackendError(ValueFlowError):
    """An LLM backend failed after its retries, or cannot be built."""


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``name`` (case-insensitive)."""
    cands = list(candidates)
    lowered = {c.lower(): c for c in cands}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]
