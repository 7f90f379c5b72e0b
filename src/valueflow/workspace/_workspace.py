"""The workspace: one embedded DuckDB file that holds everything a project produces.

VIDB items, judge calls (the LLM cache), generations, scores and run specs all live in one
file so that a project is one artefact to copy, query and share. DuckDB allows one writing
process per file; a second writer gets :class:`WorkspaceLockedError` instead of corruption.
Every write goes through :meth:`Workspace.transaction`, so a crash leaves either all or none
of a batch.

A workspace is marked as one by the table ``valueflow_workspace`` (its format version).
Only such a file, a new or empty file, or a workspace written before the marker existed
(it has ValueFlow's ``schema_migrations``) is opened; another program's DuckDB file, an
SQLite file or a damaged file is refused with one line, and DuckDB is never allowed to
install or load extensions. Read-only commands open the file read-only; while another
process writes it they read a snapshot (a copy of the file as of its last checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from valueflow._version import __version__
from valueflow.errors import WorkspaceError, WorkspaceLockedError
from valueflow.workspace._migrations import Migration, migrations_for, register_migrations

__all__ = ["ENV_VAR", "FORMAT_VERSION", "MARKER_TABLE", "Workspace", "default_workspace_path",
           "open_workspace"]

ENV_VAR = "VALUEFLOW_WORKSPACE"
DEFAULT_RELATIVE = Path(".valueflow") / "workspace.duckdb"

MARKER_TABLE = "valueflow_workspace"
"""The table that marks a DuckDB file as a ValueFlow workspace (one row: format version)."""
FORMAT_VERSION = 1
"""The workspace format this ValueFlow writes; a file with a higher one is refused."""

#: Never let DuckDB fetch or load extensions on its own (an SQLite or Parquet file handed to
#: it would otherwise make it try to download a reader).
DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False, "autoload_known_extensions": False}
_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file
_DUCKDB_MIN_SIZE = 3 * 4096  # a main header and two database headers

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
        self.path = str(path) if path is not None else str(default_workspace_path())
        self.read_only = read_only
        self.snapshot: str | None = None
        """With a read-only open beside a writer: the copy that is being read."""
        if self.path != ":memory:":
            p = Path(self.path)
            if read_only and not p.exists():
                raise WorkspaceError(
                    f"workspace {self.path} does not exist",
                    hint="run a command that writes to it first, or pass --workspace PATH",
                )
            if p.is_dir():
                raise WorkspaceError(f"workspace {self.path} is a folder, not a file",
                                     hint="pass --workspace FILE.duckdb")
            _check_file_kind(p)
            if p.is_file() and p.stat().st_size == 0:  # DuckDB will not open an empty file
                if read_only:
                    raise WorkspaceError(f"workspace {self.path} is empty",
                                         hint="run a command that writes to it first")
                p.unlink()
            if not read_only:
                p.parent.mkdir(parents=True, exist_ok=True)
        self._con = self._connect()
        self._lock = threading.RLock()
        self._ensured: set[str] = set()
        try:
            with self._damage_as_error():
                self._check_marker()
                self.ensure_schema("core")
        except BaseException:
            self.close()
            raise

    def _connect(self) -> Any:
        import duckdb

        def locked(exc: Exception) -> WorkspaceLockedError:
            return WorkspaceLockedError(
                f"workspace {self.path} is being written by another process",
                hint="wait for that run to finish, or use another workspace with "
                f"--workspace / ${ENV_VAR}",
            )

        try:
            return duckdb.connect(self.path, read_only=self.read_only, config=DUCKDB_CONFIG)
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" not in msg.lower():
                raise self._unreadable(msg) from exc
            if not self.read_only:
                raise locked(exc) from exc
            con = self._connect_snapshot()
            if con is None:
                raise locked(exc) from exc
            return con
        except duckdb.ConnectionException as exc:
            # This process already has the file open for writing (e.g. a library caller
            # holding a workspace): share that database; writes stay refused here.
            if self.read_only and "different configuration" in str(exc):
                return duckdb.connect(self.path, read_only=False, config=DUCKDB_CONFIG)
            raise self._unreadable(str(exc)) from exc
        except duckdb.Error as exc:
            raise self._unreadable(str(exc)) from exc

    def _unreadable(self, msg: str) -> WorkspaceError:
        first = msg.strip().splitlines()[0] if msg.strip() else "unknown error"
        return WorkspaceError(
            f"cannot open workspace {self.path}: it is damaged or not a ValueFlow workspace "
            f"({first[:200]})",
            hint="point --workspace at a ValueFlow workspace or a new file; restore a damaged "
            "one from a copy")

    def _connect_snapshot(self) -> Any:
        """A read-only connection to a copy of the file (another process is writing it):
        the state as of the writer's last checkpoint. None when no copy could be read."""
        import duckdb

        folder = tempfile.mkdtemp(prefix="valueflow-snapshot-")
        copy = str(Path(folder) / Path(self.path).name)
        for attempt in range(3):
            try:
                shutil.copyfile(self.path, copy)
                con = duckdb.connect(copy, read_only=True, config=DUCKDB_CONFIG)
                con.execute("SELECT count(*) FROM duckdb_tables()").fetchall()
            except (OSError, duckdb.Error):
                time.sleep(0.2 * (attempt + 1))  # a checkpoint was being written: retry
                continue
            self.snapshot = copy
            return con
        shutil.rmtree(folder, ignore_errors=True)
        return None

    def _tables(self) -> set[str]:
        rows = self._con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
        rows += self._con.execute(
            "SELECT view_name FROM duckdb_views() WHERE database_name = current_database() "
            "AND NOT internal").fetchall()
        return {str(r[0]) for r in rows}

    def _check_marker(self) -> None:
        """Open only ValueFlow workspaces (marked, or older unmarked ones) and new files."""
        tables = self._tables()
        if MARKER_TABLE in tables:
            row = self._con.execute(f"SELECT max(format_version) FROM {MARKER_TABLE}"
                                    ).fetchall()[0]
            version = int(row[0]) if row[0] is not None else 0
            if version > FORMAT_VERSION:
                raise WorkspaceError(
                    f"workspace {self.path} has format v{version}, newer than this ValueFlow "
                    f"({__version__}) knows (v{FORMAT_VERSION})", hint="upgrade valueflow")
            return
        legacy = False
        if "schema_migrations" in tables:
            with contextlib.suppress(Exception):
                legacy = bool(self._con.execute(
                    "SELECT count(*) FROM schema_migrations WHERE component = 'core'"
                ).fetchall()[0][0])
        if tables and not legacy:
            shown = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
            raise WorkspaceError(
                f"{self.path} is not a ValueFlow workspace: it is a DuckDB database of another "
                f"program (tables {shown})",
                hint="ValueFlow adds nothing to it; pass --workspace with a new file or a "
                "ValueFlow workspace")
        if self.read_only:
            if not tables:
                raise WorkspaceError(f"workspace {self.path} is empty",
                                     hint="run a command that writes to it first")
            return
        with self.transaction() as con:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (format_version INTEGER NOT NULL,"
                " created_at TIMESTAMP NOT NULL, package_version VARCHAR)")
            con.execute(f"INSERT INTO {MARKER_TABLE} VALUES (?, ?, ?)",
                        [FORMAT_VERSION, _now(), __version__])
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " component VARCHAR, version INTEGER, description VARCHAR,"
                " applied_at TIMESTAMP, PRIMARY KEY (component, version))"
            )

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
        with self._lock, self._damage_as_error():
            return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def query_df(self, sql: str, params: Any = None) -> Any:
        """Run a query and return a pandas DataFrame."""
        with self._lock, self._damage_as_error():
            rel = self._con.execute(sql, params) if params is not None else self._con.execute(sql)
            return rel.df()

    @contextlib.contextmanager
    def _damage_as_error(self) -> Iterator[None]:
        """A file that fails to read (damaged after it was opened) is one clear error."""
        import duckdb

        try:
            yield
        except duckdb.IOException as exc:
            raise WorkspaceError(
                f"cannot read workspace {self.path}: it is damaged "
                f"({str(exc).strip().splitlines()[0][:200]})",
                hint="restore it from a copy, or pass --workspace with a new file") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """All-or-nothing block: commits on success, rolls back on any exception."""
        if self.read_only:
            raise WorkspaceError(f"workspace {self.path} is open read-only")
        with self._lock, self._damage_as_error():
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                with contextlib.suppress(Exception):  # a damaged file may refuse this too
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
        if self.snapshot is not None:
            shutil.rmtree(Path(self.snapshot).parent, ignore_errors=True)
            self.snapshot = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({self.path!r}, read_only={self.read_only})"


def _check_file_kind(p: Path) -> None:
    """Refuse, before DuckDB sees it, a file that is not a DuckDB database (an SQLite file,
    text, a file cut short); an empty or missing file is a new workspace."""
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise WorkspaceError(f"cannot read workspace {p}: {exc.strerror or exc}") from exc
    if head.startswith(b"SQLite format 3"):
        raise WorkspaceError(f"{p} is an SQLite database, not a ValueFlow workspace",
                             hint="pass --workspace with a new file or a ValueFlow workspace")
    if head[8:12] != _DUCKDB_MAGIC:
        raise WorkspaceError(f"{p} is not a ValueFlow workspace (not a DuckDB database file)",
                             hint="pass --workspace with a new file or a ValueFlow workspace")
    if size < _DUCKDB_MIN_SIZE:
        raise WorkspaceError(f"workspace {p} is damaged: the file is cut short ({size} bytes)",
                             hint="restore it from a copy, or pass --workspace with a new file")


def open_workspace(path: str | os.PathLike[str] | None = None, *, read_only: bool = False
                   ) -> Workspace:
    """Open the workspace at ``path`` (default: :func:`default_workspace_path`)."""
    return Workspace(path, read_only=read_only)
