"""Scores in the workspace: one table, keyed by run (component ``evaluate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from valueflow.workspace import Migration, register_migrations

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.workspace import Workspace

__all__ = ["COMPONENT", "load_scores", "save_scores"]

COMPONENT = "evaluate"

register_migrations(
    COMPONENT,
    [
        Migration(
            1,
            """
            CREATE TABLE IF NOT EXISTS eval_scores (
                run_id VARCHAR NOT NULL,
                row_index INTEGER NOT NULL,
                text VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                intensity DOUBLE,
                low DOUBLE,
                high DOUBLE,
                n_windows INTEGER,
                n_failures INTEGER,
                judge VARCHAR,
                beta DOUBLE,
                method VARCHAR,
                vidb VARCHAR,
                PRIMARY KEY (run_id, row_index)
            );
            CREATE INDEX IF NOT EXISTS eval_scores_value ON eval_scores (value)
            """,
            "scores of texts against values, keyed by run",
        )
    ],
)

_COLUMNS = ["text", "value", "intensity", "low", "high", "n_windows", "n_failures", "judge",
            "beta", "method", "vidb"]


def save_scores(workspace: Workspace, run_id: str, scores: pd.DataFrame) -> int:
    """Store a score table under ``run_id`` (replacing a previous attempt of the same run)."""
    workspace.ensure_schema(COMPONENT)
    frame = scores[_COLUMNS].copy()
    frame.insert(0, "row_index", range(len(frame)))
    frame.insert(0, "run_id", run_id)
    with workspace.transaction() as con:
        con.execute("DELETE FROM eval_scores WHERE run_id = ?", [run_id])
        con.register("incoming_scores", frame)
        try:
            con.execute("INSERT INTO eval_scores SELECT * FROM incoming_scores")
        finally:
            con.unregister("incoming_scores")
    return len(frame)


def load_scores(workspace: Workspace, run_id: str | None = None) -> pd.DataFrame:
    """Stored scores of one run, or of every run (with a ``run_id`` column)."""
    workspace.ensure_schema(COMPONENT)
    if run_id is None:
        return workspace.query_df("SELECT * FROM eval_scores ORDER BY run_id, row_index")
    return workspace.query_df(
        "SELECT * FROM eval_scores WHERE run_id = ? ORDER BY row_index", [run_id])
