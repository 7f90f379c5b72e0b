"""A build never loses curated items, and unreliable or simulated items are never anchors
unasked (issue 16, items 1 and 8): the probes of the issue are the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from valueflow.cli import cli
from valueflow.errors import DataError
from valueflow.judges import RankOutcome, SimulatedTextJudge
from valueflow.vidb import (
    NEUTRAL_ANCHOR_TEXTS,
    VIDBStore,
    build_vidb,
    load_vidb,
    usable_items,
)
from valueflow.vidb._build_flags import ranking_signal
from valueflow.workspace import Workspace

VALUE = "schwartz:benevolence"
CURATED = "I help my friend move"


def _texts(n: int = 12) -> list[str]:
    return [CURATED] + [f"Statement {i} about helping or harming people." for i in range(n - 1)]


def _truth(texts: list[str], seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    table = dict(zip(texts, rng.uniform(-10, 10, len(texts)), strict=True))
    table[CURATED] = -7.0  # the build would say something else than the curated 9.5
    table.update({t: 0.0 for t in NEUTRAL_ANCHOR_TEXTS})
    return table


def _files(tmp_path, texts):
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    truth = _truth(texts)
    pd.DataFrame({"text": list(truth), "intensity": list(truth.values())}).to_csv(
        tmp_path / "truth.csv", index=False)
    pd.DataFrame({"text": [CURATED], "value": ["benevolence"], "intensity": [9.5]}).to_csv(
        tmp_path / "curated.csv", index=False)


def _build_cmd(tmp_path, *extra):
    return ["vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence", "--judge",
            "sim", "--sim-truth", str(tmp_path / "truth.csv"), "--no-progress", *extra]


def _curated(ws_path) -> pd.DataFrame:
    with Workspace(ws_path, read_only=True) as ws:
        df = VIDBStore(ws).to_frame([VALUE])
    return df[df["text"] == CURATED]


# -- item 1: a build never replaces items of another source unasked ----------------------------

def test_build_refuses_to_replace_curated_items_before_judging(tmp_path, tmp_workspace):
    """The issue's repro: import at 9.5 with --source-name curated, then build a file that
    holds the same text."""
    texts = _texts()
    _files(tmp_path, texts)
    ws_path = tmp_workspace.path
    tmp_workspace.close()
    run = CliRunner().invoke
    r = run(cli, ["vidb", "import", str(tmp_path / "curated.csv"), "--source-name", "curated"])
    assert r.exit_code == 0, r.output

    r = run(cli, _build_cmd(tmp_path, "--dry-run"))
    assert r.exit_code == 0, r.output
    assert "1 text(s) are already in the VIDB from another source" in r.output

    r = run(cli, _build_cmd(tmp_path))
    assert isinstance(r.exception, DataError), r.output
    msg = str(r.exception)
    assert "1 item(s) to build are already in the VIDB from another source" in msg
    assert "'curated'" in msg and "--on-conflict" in msg and "\n" in msg  # message + hint
    assert len(msg.split("\n")[0]) < 300
    with Workspace(ws_path, read_only=True) as ws:
        assert len(ws.runs("vidb-build")) == 0  # refused before the run started
        assert VIDBStore(ws).count() == 1
    cur = _curated(ws_path)
    assert cur["intensity"].tolist() == [9.5] and cur["source"].tolist() == ["curated"]

    # skip: the curated item stays, the others are stored
    r = run(cli, _build_cmd(tmp_path, "--on-conflict", "skip"))
    assert r.exit_code == 0, r.output
    assert "1 item(s) were already in the VIDB from another source: left as stored" in r.output
    cur = _curated(ws_path)
    assert cur["intensity"].tolist() == [9.5] and cur["source"].tolist() == ["curated"]
    with Workspace(ws_path, read_only=True) as ws:
        assert VIDBStore(ws).count() == len(texts)

    # a rerun of the same build updates its own items without asking
    r = run(cli, _build_cmd(tmp_path, "--on-conflict", "skip"))
    assert r.exit_code == 0, r.output

    # keep: both are stored, the curated one untouched
    r = run(cli, _build_cmd(tmp_path, "--on-conflict", "keep"))
    assert r.exit_code == 0, r.output
    cur = _curated(ws_path)
    assert sorted(cur["source"]) == sorted(["curated", str(tmp_path / "in.csv")])
    assert 9.5 in cur["intensity"].tolist()

    # replace: only when asked
    r = run(cli, _build_cmd(tmp_path, "--on-conflict", "replace"))
    assert r.exit_code == 0, r.output
    cur = _curated(ws_path)
    assert "curated" not in set(cur["source"])


def test_library_build_refuses_conflicts_too(tmp_workspace):
    texts = _texts()
    frame = pd.DataFrame({"text": [CURATED], "value": [VALUE], "intensity": [9.5]})
    from valueflow.vidb import normalize_vidb_frame

    VIDBStore(tmp_workspace).add(normalize_vidb_frame(frame, source_name="t", source="curated"))
    judge = SimulatedTextJudge(_truth(texts), beta=0.5, seed=1)
    with pytest.raises(DataError, match="from another source"):
        build_vidb(texts, [VALUE], [judge], workspace=tmp_workspace, source="mine")
    res = build_vidb(texts, [VALUE], [judge], workspace=tmp_workspace, source="mine",
                     on_conflict="skip")
    assert res.items.attrs["stored"] == {"stored": len(texts) - 1, "conflicts": 1,
                                         "skipped": 1}


# -- item 8: simulation, unmeasured items, at-chance builds --------------------------------------

def test_simulated_builds_are_stored_as_simulation_and_left_out_of_anchors(tmp_path,
                                                                          tmp_workspace):
    texts = _texts(20)[1:]
    _files(tmp_path, texts)
    ws_path = tmp_workspace.path
    tmp_workspace.close()
    r = CliRunner().invoke(cli, _build_cmd(tmp_path))
    assert r.exit_code == 0, r.output
    assert "stored as simulation" in r.output
    with Workspace(ws_path, read_only=True) as ws:
        everything = load_vidb("workspace:all", workspace=ws)
        usable = load_vidb("workspace", workspace=ws)
    assert set(everything["source_kind"]) == {"simulation"} and len(everything) == 19
    assert usable.empty and usable.attrs["skipped"] == {"simulated item(s)": 19}

    # score --vidb auto: the seed, not the simulation; --vidb workspace says why it is empty
    pd.DataFrame({"text": ["I carry my neighbour's shopping."]}).to_csv(
        tmp_path / "score.csv", index=False)
    truth = tmp_path / "truth.csv"
    r = CliRunner().invoke(cli, ["score", str(tmp_path / "score.csv"), "--value",
                                 "benevolence", "--judge", "sim", "--sim-truth", str(truth),
                                 "--vidb", "workspace"])
    assert isinstance(r.exception, DataError)
    assert "left out: 19 simulated item(s)" in str(r.exception)
    assert "workspace:all" in str(r.exception)

    from valueflow.evaluate._anchors import anchor_pools, user_vidb_frame
    from valueflow.theories import resolve_value

    node = resolve_value(VALUE)
    with Workspace(ws_path, read_only=True) as ws:
        # auto: the simulation is no anchor and no refit data; the seed serves instead
        assert anchor_pools("auto", [node], workspace=ws)[VALUE].source == "seed"
        assert user_vidb_frame("auto", [node], workspace=ws) is None
        # named explicitly, they are used
        assert len(anchor_pools("workspace:all", [node], workspace=ws)[VALUE]) == 19
        assert len(user_vidb_frame("workspace:all", [node], workspace=ws)) == 19


def test_vidb_stats_counts_what_is_kept_apart(tmp_path, tmp_workspace):
    texts = _texts(20)[1:]
    _files(tmp_path, texts)
    tmp_workspace.close()
    assert CliRunner().invoke(cli, _build_cmd(tmp_path)).exit_code == 0
    r = CliRunner().invoke(cli, ["vidb", "stats", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["n_items"] == 19 and data["not_anchors"] == {"simulated item(s)": 19}


def test_anchor_pools_leave_out_unreliable_items_with_a_note(tmp_workspace):
    from valueflow.evaluate._anchors import anchor_pools
    from valueflow.theories import resolve_value
    from valueflow.vidb import normalize_vidb_frame

    rows = pd.DataFrame({
        "text": [f"anchor {i}" for i in range(8)], "value": [VALUE] * 8,
        "intensity": np.linspace(-8, 8, 8),
        "flags": [None, None, "low_confidence", "at_chance", None, "few_comparisons", None,
                  "at_chance,low_confidence"]})
    VIDBStore(tmp_workspace).add(normalize_vidb_frame(rows, source_name="t"))
    pools = anchor_pools("workspace", [resolve_value(VALUE)], workspace=tmp_workspace)
    pool = pools[VALUE]
    assert len(pool) == 5 and "anchor 2" not in pool.texts and "anchor 3" not in pool.texts
    assert "left out: 2 item(s) of a build at chance, 1 low-confidence item(s)" in pool.source
    assert "workspace:all" in pool.source
    keep, reasons = usable_items(VIDBStore(tmp_workspace).to_frame())
    assert int(keep.sum()) == 5 and sum(reasons.values()) == 3


class _PositionJudge:
    """Answers every window in the order shown: no information about the texts."""

    name = "position"

    async def rank(self, value, texts):
        return RankOutcome(tuple(range(len(texts))))


class _HalfGarbage:
    """Fails every window that holds one of the ``mute`` texts."""

    def __init__(self, table, mute):
        self.table, self.mute, self.name = table, set(mute), "half"

    async def rank(self, value, texts):
        if self.mute & set(texts):
            return RankOutcome.failure("unreadable answer")
        return RankOutcome(tuple(int(i) for i in np.argsort([-self.table[t] for t in texts])))


def test_builds_at_chance_are_flagged_and_kept_apart():
    texts = [f"Statement {i}" for i in range(40)]
    res = build_vidb(texts, [VALUE], [_PositionJudge()])
    rep = res.reports[0]
    assert rep.at_chance and rep.signal_p > 0.05
    assert res.items["flags"].str.contains("at_chance").all()
    keep, _reasons = usable_items(res.items)
    assert not keep.any()

    truth = _truth(texts)
    good = build_vidb(texts, [VALUE], [SimulatedTextJudge(truth, beta=0.5, seed=2)])
    assert not good.reports[0].at_chance and good.reports[0].signal_p < 1e-6
    assert not good.items["flags"].fillna("").str.contains("at_chance").any()


def test_ranking_signal_is_calibrated_under_random_orders():
    rng = np.random.default_rng(0)
    ps = []
    for _ in range(40):
        rankings = [tuple(rng.permutation(30)[:4]) for _ in range(60)]
        ps.append(ranking_signal(rankings, np.zeros(30)))
    assert all(p == 1.0 for p in ps)  # zero utilities: nothing beyond chance
    ordered = [tuple(sorted(rng.choice(30, 4, replace=False))) for _ in range(60)]
    assert ranking_signal(ordered, -np.arange(30) / 3.0) < 1e-6


def test_items_without_comparisons_are_not_stored(tmp_workspace):
    texts = [f"Statement {i}" for i in range(30)]
    truth = _truth(texts)
    mute = texts[:2]  # every window holding these fails
    res = build_vidb(texts, [VALUE], [_HalfGarbage(truth, mute)], workspace=tmp_workspace,
                     source="half")
    rep = res.reports[0]
    assert rep.n_unmeasured == 2 and rep.n_failed > 0
    assert not set(mute) & set(res.items["text"])
    assert len(res.items) == 28
    stored = VIDBStore(tmp_workspace).to_frame([VALUE])
    assert len(stored) == 28 and (stored["n_comparisons"] > 0).all()
    diag = res.diagnostics.set_index("item_id")
    assert (diag["n_comparisons"] == 0).sum() == 2  # still reported in the diagnostics


def test_migration_marks_old_items_with_their_source_kind(tmp_path):
    """A workspace written before source_kind: old sim builds become simulation."""
    path = tmp_path / "old.duckdb"
    with Workspace(path) as ws:
        VIDBStore(ws)
        ws.execute("DROP INDEX vidb_items_value")  # DuckDB drops no column under an index
        ws.execute("ALTER TABLE vidb_items DROP COLUMN source_kind")
        ws.execute("CREATE INDEX vidb_items_value ON vidb_items (value)")
        ws.execute("DELETE FROM schema_migrations WHERE component = 'vidb' AND version = 2")
        for i, (prov, judges, src) in enumerate([
                ("valueflow vidb build: ...", "sim(beta=0.5)", "in.csv"),
                ("valueflow vidb build: ...", "openai/m", "in.csv"),
                ("seed VIDB", None, "valueflow-seed"), ("imported from x", None, "x.csv")]):
            ws.execute("INSERT INTO vidb_items (item_id, value, theory, text, direction, "
                       "intensity, judges, source, provenance) VALUES (?, ?, 'schwartz', ?, "
                       "'neutral', 0, ?, ?, ?)", [f"id{i}", VALUE, f"t{i}", judges, src, prov])
    with Workspace(path, read_only=True) as ws:  # reading needs no migration
        assert VIDBStore(ws).to_frame()["source_kind"].isna().all()
    with Workspace(path) as ws:
        kinds = VIDBStore(ws).to_frame().set_index("text")["source_kind"].to_dict()
    assert kinds == {"t0": "simulation", "t1": "build", "t2": "seed", "t3": "import"}


# -- kill -9 during a build --------------------------------------------------------------------

def _respond(body):
    k = body["response_format"]["json_schema"]["schema"]["properties"]["ranking"][
        "maxItems"] if "response_format" in body else 4
    return json.dumps({"ranking": list(range(1, k + 1))})


def _build_proc(tmp_path, url):
    cmd = [sys.executable, "-c", "from valueflow.cli import main; main()", "vidb", "build",
           str(tmp_path / "in.csv"), "--value", "benevolence", "--judge", "openai/judge",
           "--base-url", url, "--max-concurrency", "2", "--no-progress", "--json"]
    env = {**os.environ, "VALUEFLOW_WORKSPACE": str(tmp_path / "ws.duckdb")}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_killed_build_resumes_without_asking_answered_windows_again(tmp_path):
    from valueflow.llm.testing import FakeOpenAIServer

    texts = [f"Statement {i} about helping." for i in range(40)]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    with FakeOpenAIServer(latency=0.02, respond=_respond) as server:
        proc = _build_proc(tmp_path, server.url)
        deadline = time.monotonic() + 120
        while server.completed < 12:
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the build never got going"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        assert proc.returncode == -signal.SIGKILL
        with Workspace(tmp_path / "ws.duckdb", read_only=True) as ws:
            assert VIDBStore(ws).count() == 0  # nothing half-stored
            assert ws.runs("vidb-build")["status"].tolist() == ["running"]
            answered = int(ws.execute("SELECT count(*) FROM llm_cache").fetchall()[0][0])
        received_before = sum(server.counts.values())
        assert answered > 0

        proc = _build_proc(tmp_path, server.url)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["n_items"] == 40
        sent_again = sum(server.counts.values()) - received_before
        total_windows = json.loads(out)["values"][0]["n_windows"]
        assert answered < total_windows  # the kill landed mid-build
        assert sent_again == total_windows - answered  # answered windows were not re-asked
    with Workspace(tmp_path / "ws.duckdb", read_only=True) as ws:
        assert VIDBStore(ws).count() == 40
        assert sorted(ws.runs("vidb-build")["status"]) == ["done", "running"]
