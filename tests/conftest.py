from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests are deterministic by default (a run that passed passes again on CI);
# HYPOTHESIS_PROFILE=explore draws fresh examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def run_main(*args: str) -> int:
    """Run the ``valueflow`` entry point in-process; its exit status (0 when it returns)."""
    from valueflow.cli._main import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def tmp_workspace(tmp_path, monkeypatch):
    """A fresh workspace file under tmp_path, also set as the CLI default."""
    from valueflow.workspace import open_workspace

    path = tmp_path / "ws.duckdb"
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(path))
    ws = open_workspace(path)
    yield ws
    ws.close()


@pytest.fixture(autouse=True)
def _isolated_defaults(tmp_path_factory, monkeypatch):
    """Keep tests out of the user's file cache (fitted local scorers) and away from any
    workspace in the current directory."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("VALUEFLOW_CACHE_DIR", str(base / "vf-cache"))
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(base / "no-workspace" / "ws.duckdb"))

