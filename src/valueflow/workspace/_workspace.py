"""The workspace: one embedded DuckDB file that holds everything a project produces.

VIDB items, judge calls (the LLM cache), generations, scores and run specs all live in one
file so that a project is one artefact to copy, query and share. DuckDB allows one writing
process per file; a second writer gets :class:`WorkspaceLockedError` instead of corruption.
Every write goes through :meth:`Workspace.transaction`, so a crash leaves either all or none
of a batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from valueflow._version import __version__
from valueflow.errors import WorkspaceError, WorkspaceLockedError
from valueflow.workspace._migrations import Migration, migrations_for, register_migrations

__all__ = ["ENV_VAR", "Workspace", "default_workspace_path", "open_workspace"]

ENV_VAR = "VALUEFLOW_WORKSPACE"
DEFAULT_RELATIVE = Path(".valueflow") / "workspace.duckdb"

register_migrations(
    "core",
    [
        Migration(
            1,
            """
            CREATE TABLE IF NOT EXISTS runs (
                run_id VARCHAR PRIMARY KEY,
                kind VARCHAR NOT NULL,
                spec JSON NOT NULL,
                package_version VARCHAR,
                git_commit VARCHAR,
                status VARCHAR NOT NULL DEFAULT 'running',
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )
            """,
            "run specs: what was run, with which settings and code version",
        )
    ],
)


def default_workspace_path() -> Path:
    """The workspace path: ``$VALUEFLOW_WORKSPACE`` or ``./.valueflow/workspace.duckdb``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.cwd() / DEFAULT_RELATIVE


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class Workspace:
    """A handle on a workspace database file.

    Args:
        path: The DuckDB file; created (with its folder) if missing. ``":memory:"`` gives a
            throw-away in-memory workspace (for tests and dry runs).
        read_only: Open without write access; several readers may share a file.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False):
        import duckdb

        self.path = str(path) if path is not None else str(default_workspace_path())
        self.read_only = read_only
        if self.path != ":memory:":
            p = Path(self.path)
            if read_only and not p.exists():
                raise WorkspaceError(
                    f"workspace {self.path} does not exist",
                    hint="run a command that writes to it first, or pass --workspace PATH",
                )
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                raise WorkspaceLockedError(
                    f"workspace {self.path} is being written by another process",
                    hint="wait for that run to finish, or use another workspace with "
                    f"--workspace / ${ENV_VAR}",
                ) from exc
            raise WorkspaceError(f"cannot open workspace {self.path}: {msg}") from exc
        except duckdb.Error as exc:
            raise WorkspaceError(
                f"cannot open workspace {self.path}: {exc}",
                hint="is this a ValueFlow workspace (a DuckDB file)?",
            ) from exc
        self._lock = threading.RLock()
        self._ensured: set[str] = set()
        if not read_only:
            self._con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " component VARCHAR, version INTEGER, description VARCHAR,"
                " applied_at TIMESTAMP, PRIMARY KEY (component, version))"
            )
        self.ensure_schema("core")

    # -- connection -------------------------------------------------------------------
    @property
    def connection(self) -> Any:
        """The underlying DuckDB connection (use :meth:`cursor` from other threads)."""
        return self._con

    def cursor(self) -> Any:
        """A new cursor on the same database, safe to use from another thread."""
        return self._con.cursor()

    def execute(self, sql: str, params: Any = None) -> Any:
        """Run one statement on the main connection (serialised by a lock)."""
        with self._lock:
            return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def query_df(self, sql: str, params: Any = None) -> Any:
        """Run a query and return a pandas DataFrame."""
        with self._lock:
            rel = self._con.execute(sql, params) if params is not None else self._con.execute(sql)
            return rel.df()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """All-or-nothing block: commits on success, rolls back on any exception."""
        if self.read_only:
            raise WorkspaceError(f"workspace {self.path} is open read-only")
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")

    # -- schema -----------------------------------------------------------------------
    def schema_version(self, component: str) -> int:
        """The highest applied migration of ``component`` (0 when none)."""
        try:
            row = self.execute(
                "SELECT max(version) FROM schema_migrations WHERE component = ?", [component]
            ).fetchone()
        except Exception:  # read-only workspace without the table
            return 0
        return int(row[0]) if row and row[0] is not None else 0

    def ensure_schema(self, component: str) -> None:
        """Apply the pending migrations of ``component`` in one transaction."""
        if component in self._ensured:
            return
        migrations = migrations_for(component)
        if not migrations:
            raise WorkspaceError(f"no schema is registered for component {component!r}")
        current = self.schema_version(component)
        latest = migrations[-1].version
        if current > latest:
            raise WorkspaceError(
                f"workspace {self.path} has {component} schema v{current}, newer than this "
                f"ValueFlow ({__version__}) knows (v{latest})",
                hint="upgrade valueflow",
            )
        if current < latest:
            if self.read_only:
                raise WorkspaceError(
                    f"workspace {self.path} needs a {component} schema migration "
                    f"(v{current} -> v{latest}) but is open read-only"
                )
            with self.transaction() as con:
                for m in migrations[current:]:
                    for stmt in (s.strip() for s in m.sql.split(";")):
                        if stmt:
                            con.execute(stmt)
                    con.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                        [component, m.version, m.description, _now()],
                    )
        self._ensured.add(component)

    # -- runs -------------------------------------------------------------------------
    def start_run(self, kind: str, spec: dict[str, Any], run_id: str | None = None) -> str:
        """Record (or resume) a run and its full spec; returns the run id.

        Giving the same ``run_id`` again marks the run as running again (a resumed run)
        and keeps its original spec.
        """
        rid = run_id or f"{kind}-{uuid.uuid4().hex[:12]}"
        now = _now()
        with self.transaction() as con:
            exists = con.execute("SELECT 1 FROM runs WHERE run_id = ?", [rid]).fetchone()
            if exists:
                con.execute(
                    "UPDATE runs SET status = 'running', updated_at = ? WHERE run_id = ?",
                    [now, rid],
                )
            else:
                con.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                    [rid, kind, json.dumps(spec, default=str, sort_keys=True), __version__,
                     _git_commit(), now, now],
                )
        return rid

    def finish_run(self, run_id: str, status: str = "done") -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?",
                [status, _now(), run_id],
            )

    def runs(self, kind: str | None = None) -> Any:
        """Recorded runs as a DataFrame, newest first."""
        if kind is None:
            return self.query_df("SELECT * FROM runs ORDER BY created_at DESC")
        return self.query_df("SELECT * FROM runs WHERE kind = ? ORDER BY created_at DESC", [kind])

    # -- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({self.path!r}, read_only={self.read_only})"


def open_workspace(path: str | os.PathLike[str] | None = None, *, read_only: bool = False
                   ) -> Workspace:
    """Open the workspace at ``path`` (default: :func:`default_workspace_path`)."""
    return Workspace(path, read_only=read_only)
