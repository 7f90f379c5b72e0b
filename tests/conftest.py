from __future__ import annotations

import pytest


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
def _isolated_file_cache(tmp_path_factory, monkeypatch):
    """Fitted local scorers are cached on disk: keep tests out of the user's cache."""
    monkeypatch.setenv("VALUEFLOW_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "vf-cache"))
