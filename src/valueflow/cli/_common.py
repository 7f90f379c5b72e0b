"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["echo_json", "json_option", "open_cli_workspace"]


def json_option(f: F) -> F:
    """``--json``: print machine-readable JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)  # type: ignore[return-value]


def _finite(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def echo_json(obj: Any) -> None:
    """Write ``obj`` as indented, strictly valid JSON to stdout (NaN becomes null)."""
    sys.stdout.write(json.dumps(_finite(obj), indent=2, default=str, ensure_ascii=False,
                                allow_nan=False) + "\n")


def open_cli_workspace(read_only: bool = False) -> Any:
    """Open the workspace chosen by ``--workspace`` / ``$VALUEFLOW_WORKSPACE``."""
    from valueflow.workspace import open_workspace

    return open_workspace(read_only=read_only)
