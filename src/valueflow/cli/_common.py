"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["echo_json", "json_option", "open_cli_workspace"]


def json_option(f: F) -> F:
    """``--json``: print machine-readable JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)  # type: ignore[return-value]


def echo_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")


def open_cli_workspace(read_only: bool = False) -> Any:
    """Open the workspace chosen by ``--workspace`` / ``$VALUEFLOW_WORKSPACE``."""
    from valueflow.workspace import open_workspace

    return open_workspace(read_only=read_only)
