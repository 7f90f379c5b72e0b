"""The workspace opens only ValueFlow workspaces or new files, and reads beside a writer
(issue 16, item 7): each probe of the issue is a test."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from valueflow.cli import cli
from valueflow.errors import DataError, WorkspaceError
from valueflow.workspace import FORMAT_VERSION, MARKER_TABLE, open_workspace


def _tables(path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def _one_line_error(result, text: str) -> None:
    assert isinstance(result.exception, WorkspaceError), result.output
    assert text in result.exception.message and "\n" not in result.exception.message


def _foreign(path, *tables: str) -> None:
    con = duckdb.connect(str(path))
    for t in tables:
        con.execute(f"CREATE TABLE {t} (id INTEGER, name VARCHAR)")
        con.execute(f"INSERT INTO {t} VALUES (1, 'theirs')")
    con.close()


def test_another_programs_duckdb_file_is_refused_and_left_alone(tmp_path, monkeypatch):
    path = tmp_path / "theirs.duckdb"
    _foreign(path, "customers", "orders")
    before = path.read_bytes()
    with pytest.raises(WorkspaceError, match=r"not a ValueFlow workspace.*customers, orders"):
        open_workspace(path)
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(path))
    for args in (["workspace", "info"], ["workspace", "runs"], ["cache", "stats"],
                 ["vidb", "stats"], ["vidb", "import", "--seed"]):
        _one_line_error(CliRunner().invoke(cli, args), "not a ValueFlow workspace")
    assert _tables(path) == {"customers", "orders"}
    assert path.read_bytes() == before


def test_a_file_with_its_own_runs_table_is_refused_before_scoring(tmp_path, monkeypatch):
    path = tmp_path / "other.duckdb"
    _foreign(path, "runs")
    inp = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a kind act"]}).to_csv(inp, index=False)
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(path))
    r = CliRunner().invoke(cli, ["score", str(inp), "--value", "benevolence", "--vidb", "seed"])
    _one_line_error(r, "not a ValueFlow workspace")
    assert _tables(path) == {"runs"}  # no half-created tables


def test_sqlite_and_other_files_are_refused_before_duckdb_reads_them(tmp_path):
    lite = tmp_path / "notes.sqlite"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE notes (t TEXT)")
    con.commit()
    con.close()
    with pytest.raises(WorkspaceError, match="is an SQLite database"):
        open_workspace(lite)
    text = tmp_path / "notes.duckdb"
    text.write_text("just some text, long enough to have a header of sixteen bytes\n")
    with pytest.raises(WorkspaceError, match="not a DuckDB database file"):
        open_workspace(text)
    assert text.read_text().startswith("just some text")


def test_damaged_workspaces_give_one_line(tmp_path):
    path = tmp_path / "ws.duckdb"
    with open_workspace(path) as ws:
        ws.start_run("score", {"k": 1})
        ws.execute("CREATE TABLE filler AS SELECT range AS i, repeat('x', 200) AS s "
                   "FROM range(20000)")
    data = path.read_bytes()
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(data[: len(data) // 2])
    r = CliRunner().invoke(cli, ["--workspace", str(cut), "workspace", "info"])
    _one_line_error(r, "is damaged")
    tiny = tmp_path / "tiny.duckdb"
    tiny.write_bytes(data[:5000])
    with pytest.raises(WorkspaceError, match="damaged: the file is cut short"):
        open_workspace(tiny)


def test_duckdb_may_not_install_or_load_extensions(tmp_path):
    with open_workspace(tmp_path / "ws.duckdb") as ws:
        rows = ws.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('autoinstall_known_extensions', 'autoload_known_extensions')").fetchall()
    assert dict(rows) == {"autoinstall_known_extensions": "false",
                          "autoload_known_extensions": "false"}


def test_new_empty_marked_and_older_workspaces_open(tmp_path):
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    with open_workspace(empty) as ws:
        assert ws.execute(f"SELECT format_version FROM {MARKER_TABLE}").fetchall() == [
            (FORMAT_VERSION,)]
    blank_db = tmp_path / "blank.duckdb"
    duckdb.connect(str(blank_db)).close()  # a DuckDB file with no tables: new
    open_workspace(blank_db).close()
    assert MARKER_TABLE in _tables(blank_db)

    old = tmp_path / "old.duckdb"  # written before the marker existed
    with open_workspace(old) as ws:
        ws.start_run("score", {"k": 2})
        ws.execute(f"DROP TABLE {MARKER_TABLE}")
    assert MARKER_TABLE not in _tables(old)
    with open_workspace(old, read_only=True) as ws:  # readable as it is
        assert len(ws.runs()) == 1
    with open_workspace(old) as ws:  # marked when next written
        assert len(ws.runs()) == 1
    assert MARKER_TABLE in _tables(old)

    with open_workspace(old) as ws:
        ws.execute(f"UPDATE {MARKER_TABLE} SET format_version = {FORMAT_VERSION + 1}")
    with pytest.raises(WorkspaceError, match="newer than this ValueFlow"):
        open_workspace(old)


def test_read_only_commands_do_not_create_or_change_a_workspace(tmp_path, monkeypatch):
    path = tmp_path / "none" / "ws.duckdb"
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(path))
    r = CliRunner().invoke(cli, ["workspace", "info"])
    assert isinstance(r.exception, WorkspaceError) and "does not exist" in str(r.exception)
    r = CliRunner().invoke(cli, ["vidb", "stats"])
    assert isinstance(r.exception, DataError) and "has no items" in str(r.exception)
    assert not path.parent.exists()


WRITER = """
import sys, time
from valueflow.workspace import open_workspace
from valueflow.vidb import VIDBStore
from valueflow.llm import LLMCache
ws = open_workspace(sys.argv[1])
VIDBStore(ws).import_seed()
LLMCache(ws)
ws.start_run("score", {"k": 3})
ws.execute("CHECKPOINT")
ws.start_run("score", {"k": 4})  # after the checkpoint: not in the snapshot
print("open", flush=True)
time.sleep(60)
"""


def test_read_only_commands_work_beside_a_running_writer(tmp_path, monkeypatch):
    path = tmp_path / "ws.duckdb"
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(path))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        run = CliRunner().invoke
        r = run(cli, ["workspace", "info", "--json"])
        assert r.exit_code == 0, r.output
        info = json.loads(r.output[r.output.index("{"):])
        assert info["snapshot"] is True and info["tables"]["vidb_items"] > 1000
        assert "another process is writing" in r.output
        r = run(cli, ["workspace", "runs", "--json"])
        assert r.exit_code == 0, r.output
        assert len(json.loads(r.output[r.output.index("["):])) >= 1
        r = run(cli, ["cache", "stats", "--json"])
        assert r.exit_code == 0, r.output
        r = run(cli, ["vidb", "stats", "--value", "benevolence"])
        assert r.exit_code == 0, r.output
        r = run(cli, ["vidb", "export", str(tmp_path / "out.csv"), "--value", "benevolence"])
        assert r.exit_code == 0, r.output
        assert len(pd.read_csv(tmp_path / "out.csv")) > 10
        assert "last checkpoint" in r.output
        # a writer beside a writer is still refused, with one line
        r = run(cli, ["vidb", "import", "--seed"])
        _one_line_error(r, "being written by another process")
    finally:
        proc.kill()
        proc.wait()
    assert not list(tmp_path.glob("valueflow-snapshot-*"))
