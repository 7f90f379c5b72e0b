"""Exceptions raised by ValueFlow.

Every error a user can trigger with bad input is a :class:`ValueFlowError`: its message
says what was wrong and what would be right. The CLI prints such errors as one line
(plus the hint) and exits with status 2, never with a traceback.

A run that ends without a usable result for some rows raises :class:`IncompleteRunError`
(exit status 3, :data:`EXIT_PARTIAL`); one that stopped early or has no usable result at all
raises :class:`RunFailedError` (exit status 4, :data:`EXIT_FAILED`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "EXIT_FAILED",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "BackendError",
    "ConfigError",
    "DataError",
    "IncompleteRunError",
    "RunFailedError",
    "UnknownNameError",
    "ValueFlowError",
    "WorkspaceError",
    "WorkspaceLockedError",
    "close_matches",
]

EXIT_USAGE = 2
"""Exit status of a command refused for bad input (any :class:`ValueFlowError`)."""
EXIT_PARTIAL = 3
"""Exit status of a run that finished with no usable result for some of its rows."""
EXIT_FAILED = 4
"""Exit status of a run that stopped early, or finished with no usable result at all."""


class ValueFlowError(Exception):
    """Base class for every error ValueFlow raises on purpose.

    Args:
        message: What was wrong.
        hint: What would be right, or how to fix it (optional).
    """

    exit_code: int = EXIT_USAGE
    """The CLI's exit status for this error."""

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


class IncompleteRunError(ValueFlowError):
    """A run finished, but some rows have no usable result (recorded as ``partial``).

    Finished work is saved; running the same command again retries only what failed.

    Attributes:
        run_id: The run, as recorded in the workspace (``None`` without one).
    """

    exit_code = EXIT_PARTIAL
    status = "partial"

    def __init__(self, message: str, hint: str | None = None, *,
                 run_id: str | None = None) -> None:
        super().__init__(message, hint)
        self.run_id = run_id


class RunFailedError(IncompleteRunError):
    """A run stopped early (a backend that cannot be reached) or produced no usable result
    at all (recorded as ``failed``)."""

    exit_code = EXIT_FAILED
    status = "failed"


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``name`` (case-insensitive)."""
    cands = list(candidates)
    lowered = {c.lower(): c for c in cands}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]
