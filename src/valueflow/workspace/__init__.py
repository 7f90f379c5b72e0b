"""The embedded workspace database (DuckDB) and its versioned schema."""

from valueflow.workspace._migrations import Migration, register_migrations
from valueflow.workspace._workspace import (
    ENV_VAR,
    FORMAT_VERSION,
    MARKER_TABLE,
    Workspace,
    default_workspace_path,
    open_workspace,
)

__all__ = [
    "ENV_VAR",
    "FORMAT_VERSION",
    "MARKER_TABLE",
    "Migration",
    "Workspace",
    "default_workspace_path",
    "open_workspace",
    "register_migrations",
]
