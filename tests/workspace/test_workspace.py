from __future__ import annotations

import json
import subprocess
import sys

import pytest

from valueflow.errors import WorkspaceError, WorkspaceLockedError
from valueflow.workspace import Migration, Workspace, open_workspace, register_migrations

register_migrations(
    "test_component",
    [
        Migration(1, "CREATE TABLE t_items (id INTEGER PRIMARY KEY, name VARCHAR)"),
        Migration(2, "ALTER TABLE t_items ADD COLUMN score DOUBLE"),
    ],
)


def test_migrations_apply_once_and_record_versions(tmp_path):
    path = tmp_path / "w.duckdb"
    with open_workspace(path) as ws:
        assert ws.schema_version("test_component") == 0
        ws.ensure_schema("test_component")
        assert ws.schema_version("test_component") == 2
        ws.execute("INSERT INTO t_items VALUES (1, 'a', 0.5)")
    with open_workspace(path) as ws:  # reopening does not re-run migrations
        ws.ensure_schema("test_component")
        assert ws.execute("SELECT count(*) FROM schema_migrations WHERE component='test_component'"
                          ).fetchone()[0] == 2
        assert ws.execute("SELECT score FROM t_items").fetchone()[0] == 0.5


def test_transaction_rolls_back_on_error(tmp_path):
    with open_workspace(tmp_path / "w.duckdb") as ws:
        ws.ensure_schema("test_component")
        with pytest.raises(RuntimeError), ws.transaction() as con:
            con.execute("INSERT INTO t_items VALUES (1, 'a', 1.0)")
            raise RuntimeError("boom")
        assert ws.execute("SELECT count(*) FROM t_items").fetchone()[0] == 0


def test_unknown_component_and_newer_schema_are_clear_errors(tmp_path):
    path = tmp_path / "w.duckdb"
    with open_workspace(path) as ws:
        with pytest.raises(WorkspaceError, match="no schema is registered"):
            ws.ensure_schema("nope")
        ws.execute("INSERT INTO schema_migrations VALUES ('core', 99, 'future', now())")
    with pytest.raises(WorkspaceError, match="newer than this"):
        open_workspace(path)


def test_second_writer_gets_a_clear_error(tmp_path):
    path = tmp_path / "w.duckdb"
    code = (
        "import sys, time; from valueflow.workspace import open_workspace;"
        "ws = open_workspace(sys.argv[1]); print('open', flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        with pytest.raises(WorkspaceLockedError, match="being written by another process"):
            Workspace(path)
    finally:
        proc.kill()
        proc.wait()
    Workspace(path).close()  # the lock goes with the process


def test_runs_record_spec_and_resume(tmp_path):
    with open_workspace(tmp_path / "w.duckdb") as ws:
        rid = ws.start_run("score", {"k": 6, "judge": "sim"})
        ws.finish_run(rid, "interrupted")
        assert ws.start_run("score", {"ignored": True}, run_id=rid) == rid
        runs = ws.runs("score")
        assert len(runs) == 1
        assert runs.iloc[0]["status"] == "running"
        assert json.loads(runs.iloc[0]["spec"]) == {"k": 6, "judge": "sim"}
        assert runs.iloc[0]["package_version"]


def test_read_only_missing_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="does not exist"):
        open_workspace(tmp_path / "missing.duckdb", read_only=True)


def test_default_path_from_env(tmp_path, monkeypatch):
    from valueflow.workspace import default_workspace_path

    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(tmp_path / "x.duckdb"))
    assert default_workspace_path() == tmp_path / "x.duckdb"
    monkeypatch.delenv("VALUEFLOW_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    assert default_workspace_path() == tmp_path / ".valueflow" / "workspace.duckdb"


def test_cli_workspace_info_and_runs(tmp_workspace):
    from click.testing import CliRunner

    from valueflow.cli import cli

    tmp_workspace.start_run("score", {"k": 3})
    tmp_workspace.close()
    res = CliRunner().invoke(cli, ["workspace", "info", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["schema"]["core"] == 1 and data["tables"]["runs"] == 1
    res = CliRunner().invoke(cli, ["workspace", "runs", "--json"])
    assert json.loads(res.output)[0]["spec"] == {"k": 3}
