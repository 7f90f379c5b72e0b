"""Workspace tables of the steering component: generations, scores and run membership.

* ``steer_generations``: one successful answer per key. The key hashes everything that
  changes the answer (model label, backend identity, messages, generation settings, sample
  index), so a rerun of any config skips answers that exist.
* ``steer_scores``: one intensity per (answer, value, judge).
* ``steer_run_items``: which answers belong to which run (runs may share answers).

Failed generations are not stored: the next run retries them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from valueflow.workspace import Migration, Workspace, register_migrations

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COMPONENT", "GenerationRow", "SteerStore"]

COMPONENT = "steer"

register_migrations(
    COMPONENT,
    [
        Migration(
            1,
            """
            CREATE TABLE IF NOT EXISTS steer_generations (
                gen_key VARCHAR PRIMARY KEY,
                model VARCHAR NOT NULL,
                regime VARCHAR NOT NULL,
                condition VARCHAR NOT NULL,
                style VARCHAR,
                targets VARCHAR NOT NULL,
                query_id VARCHAR NOT NULL,
                query_set VARCHAR,
                category VARCHAR,
                query VARCHAR NOT NULL,
                sample INTEGER NOT NULL,
                messages VARCHAR NOT NULL,
                response VARCHAR NOT NULL,
                refusal BOOLEAN NOT NULL,
                finish_reason VARCHAR,
                created_at TIMESTAMP NOT NULL
            );
            CREATE TABLE IF NOT EXISTS steer_run_items (
                run_id VARCHAR NOT NULL,
                gen_key VARCHAR NOT NULL,
                PRIMARY KEY (run_id, gen_key)
            );
            CREATE TABLE IF NOT EXISTS steer_scores (
                gen_key VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                judge VARCHAR NOT NULL,
                intensity DOUBLE,
                low DOUBLE,
                high DOUBLE,
                n_windows INTEGER,
                n_failures INTEGER,
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (gen_key, value, judge)
            )
            """,
            "steering generations, their scores, and run membership",
        ),
        Migration(
            2,
            """
            CREATE TABLE IF NOT EXISTS steer_calibrations (
                cal_key VARCHAR PRIMARY KEY,
                model VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                regime VARCHAR NOT NULL,
                judge VARCHAR NOT NULL,
                vector VARCHAR,
                curve VARCHAR NOT NULL,
                points VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL
            );
            CREATE TABLE IF NOT EXISTS steer_target_candidates (
                run_id VARCHAR NOT NULL,
                query_id VARCHAR NOT NULL,
                candidate INTEGER NOT NULL,
                round INTEGER NOT NULL,
                gen_key VARCHAR NOT NULL,
                settings VARCHAR NOT NULL,
                PRIMARY KEY (run_id, query_id, candidate)
            );
            CREATE TABLE IF NOT EXISTS steer_perplexity (
                gen_key VARCHAR PRIMARY KEY,
                perplexity DOUBLE NOT NULL
            )
            """,
            "calibration curves, closed-loop candidates and fluency (perplexity) of answers",
        ),
    ],
)

GenerationRow = dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_GEN_COLS = ("gen_key", "model", "regime", "condition", "style", "targets", "query_id",
             "query_set", "category", "query", "sample", "messages", "response", "refusal",
             "finish_reason")


class SteerStore:
    """Reads and writes the steering tables of a workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        workspace.ensure_schema(COMPONENT)

    def existing_generations(self, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` already stored."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return set()
        found: set[str] = set()
        for i in range(0, len(keys), 2000):
            part = keys[i:i + 2000]
            rows = self.ws.execute(
                "SELECT gen_key FROM steer_generations WHERE list_contains(?, gen_key)",
                [part]).fetchall()
            found.update(r[0] for r in rows)
        return found

    def add_generations(self, rows: Sequence[GenerationRow], run_id: str) -> None:
        """Insert answers (ignoring keys that exist) and link them to ``run_id``."""
        if not rows:
            return
        now = _now()
        with self.ws.transaction() as con:
            con.executemany(
                f"INSERT OR IGNORE INTO steer_generations ({', '.join(_GEN_COLS)}, created_at) "
                f"VALUES ({', '.join('?' * (len(_GEN_COLS) + 1))})",
                [[r[c] for c in _GEN_COLS] + [now] for r in rows])
            con.executemany("INSERT OR IGNORE INTO steer_run_items VALUES (?, ?)",
                            [[run_id, r["gen_key"]] for r in rows])

    def link(self, keys: Iterable[str], run_id: str) -> None:
        """Mark existing answers as part of ``run_id``."""
        keys = list(keys)
        if keys:
            with self.ws.transaction() as con:
                con.executemany("INSERT OR IGNORE INTO steer_run_items VALUES (?, ?)",
                                [[run_id, k] for k in keys])

    def responses(self, keys: Iterable[str]) -> dict[str, str]:
        """gen_key → response text for stored answers."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, str] = {}
        for i in range(0, len(keys), 2000):
            rows = self.ws.execute(
                "SELECT gen_key, response FROM steer_generations WHERE list_contains(?, gen_key)",
                [keys[i:i + 2000]]).fetchall()
            out.update({k: v for k, v in rows})
        return out

    def existing_scores(self, judge: str) -> set[tuple[str, str]]:
        """(gen_key, value) pairs already scored by ``judge``."""
        rows = self.ws.execute("SELECT gen_key, value FROM steer_scores WHERE judge = ?",
                               [judge]).fetchall()
        return {(a, b) for a, b in rows}

    def add_scores(self, rows: Sequence[tuple[str, str, str, float, float, float, int, int]]
                   ) -> None:
        """Insert (gen_key, value, judge, intensity, low, high, n_windows, n_failures)."""
        if not rows:
            return
        now = _now()
        with self.ws.transaction() as con:
            con.executemany("INSERT OR IGNORE INTO steer_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [[*r, now] for r in rows])

    def run_generations(self, run_id: str) -> pd.DataFrame:
        """The answers of a run (one row each)."""
        return self.ws.query_df(
            "SELECT g.* FROM steer_run_items r JOIN steer_generations g USING (gen_key) "
            "WHERE r.run_id = ? ORDER BY g.model, g.regime, g.condition, g.query_id, g.sample",
            [run_id])

    # -- calibration and closed-loop targeting ----------------------------------------------
    def calibration(self, cal_key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(curve, points) of a stored calibration, or ``None``."""
        row = self.ws.execute("SELECT curve, points FROM steer_calibrations WHERE cal_key = ?",
                              [cal_key]).fetchone()
        return None if row is None else (json.loads(row[0]), json.loads(row[1]))

    def add_calibration(self, cal_key: str, *, model: str, value: str, regime: str,
                        judge: str, vector: str | None, curve: dict[str, Any],
                        points: dict[str, Any]) -> None:
        with self.ws.transaction() as con:
            con.execute("INSERT OR REPLACE INTO steer_calibrations VALUES (?, ?, ?, ?, ?, ?, ?, "
                        "?, ?)", [cal_key, model, value, regime, judge, vector,
                                  json.dumps(curve), json.dumps(points), _now()])

    def calibrations(self) -> pd.DataFrame:
        return self.ws.query_df("SELECT * FROM steer_calibrations ORDER BY created_at")

    def add_candidates(self, rows: Sequence[tuple[str, str, int, int, str, str]]) -> None:
        """Insert (run_id, query_id, candidate, round, gen_key, settings JSON)."""
        if rows:
            with self.ws.transaction() as con:
                con.executemany("INSERT OR REPLACE INTO steer_target_candidates VALUES "
                                "(?, ?, ?, ?, ?, ?)", [list(r) for r in rows])

    def candidates(self, run_id: str) -> pd.DataFrame:
        return self.ws.query_df(
            "SELECT c.*, g.query, g.response, g.refusal, p.perplexity "
            "FROM steer_target_candidates c JOIN steer_generations g USING (gen_key) "
            "LEFT JOIN steer_perplexity p USING (gen_key) WHERE c.run_id = ? "
            "ORDER BY c.query_id, c.candidate", [run_id])

    def perplexities(self, keys: Iterable[str]) -> dict[str, float]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, float] = {}
        for i in range(0, len(keys), 2000):
            rows = self.ws.execute("SELECT gen_key, perplexity FROM steer_perplexity WHERE "
                                   "list_contains(?, gen_key)", [keys[i:i + 2000]]).fetchall()
            out.update({k: float(v) for k, v in rows})
        return out

    def add_perplexities(self, items: dict[str, float]) -> None:
        if items:
            with self.ws.transaction() as con:
                con.executemany("INSERT OR IGNORE INTO steer_perplexity VALUES (?, ?)",
                                [[k, float(v)] for k, v in items.items()])

    def scores_for(self, keys: Iterable[str], judge: str) -> pd.DataFrame:
        """Stored scores of the answers ``keys`` by ``judge``."""
        return self.ws.query_df(
            "SELECT gen_key, value, intensity, low, high FROM steer_scores "
            "WHERE judge = ? AND list_contains(?, gen_key)", [judge, list(dict.fromkeys(keys))])

    def run_scores(self, run_id: str, judge: str) -> pd.DataFrame:
        """The scores of a run's answers by ``judge``."""
        return self.ws.query_df(
            "SELECT s.gen_key, s.value, s.intensity, s.low, s.high, s.n_windows, s.n_failures "
            "FROM steer_run_items r JOIN steer_scores s USING (gen_key) "
            "WHERE r.run_id = ? AND s.judge = ?", [run_id, judge])


def targets_of(targets_json: str) -> dict[str, int]:
    """The ``targets`` column parsed: value id → level."""
    return {str(k): int(v) for k, v in json.loads(targets_json).items()}
