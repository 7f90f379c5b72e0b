from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr

from valueflow.errors import BackendError, ConfigError, DataError, UnknownNameError
from valueflow.judges import LLMRankingJudge, RankOutcome, SimulatedTextJudge
from valueflow.llm import LLMClient, ScriptedBackend
from valueflow.theories import get_registry
from valueflow.vidb import (
    NEUTRAL_ANCHOR_TEXTS,
    AcceptanceRule,
    BuildConfig,
    PanelCategorizer,
    VIDBStore,
    build_vidb,
)

VALUE = "schwartz:benevolence"


def corpus(n: int, seed: int = 0, low: float = -10, high: float = 10):
    rng = np.random.default_rng(seed)
    texts = [f"Statement {i} about helping or harming people." for i in range(n)]
    truth = rng.uniform(low, high, n)
    table = dict(zip(texts, truth, strict=True))
    table.update({t: 0.0 for t in NEUTRAL_ANCHOR_TEXTS})
    return texts, truth, table


def test_recovers_latent_intensities_with_neutral_at_zero():
    texts, truth, table = corpus(240)
    res = build_vidb(texts, [VALUE], [SimulatedTextJudge(table, beta=0.5, seed=1)])
    out = res.items.set_index("text").loc[texts]
    rho = spearmanr(out["intensity"], truth).statistic
    assert rho >= 0.9
    # The neutral anchors fix the sign: clearly supporting/opposing texts land on their side.
    clear = np.abs(truth) > 3
    assert np.mean(np.sign(out["intensity"].to_numpy()[clear]) == np.sign(truth[clear])) >= 0.95
    assert out["intensity"].between(-10, 10).all()
    rep = res.reports[0]
    assert rep.calibration["anchor"] == "neutral_texts" and rep.n_neutral == 6
    assert rep.n_components == 1 and rep.n_failed == 0
    # Every item took part in at least r windows; anchors are not in the output.
    assert (res.diagnostics["n_windows"] >= 6).all()
    assert not set(NEUTRAL_ANCHOR_TEXTS) & set(res.items["text"])
    assert (out["direction"] == np.where(out["intensity"] >= 1, "supports",
                                         np.where(out["intensity"] <= -1, "opposes", "neutral"))).all()


def test_references_put_items_on_the_reference_scale():
    # An asymmetric value: texts from -4 to +8. Quantile scaling would stretch to ±10;
    # references with known intensities keep the scale.
    texts, truth, table = corpus(200, seed=3, low=-4, high=8)
    refs = [(f"Reference text {y}", float(y)) for y in (-4, -2, 0, 2, 4, 6, 8)]
    table.update(dict(refs))
    judge = SimulatedTextJudge(table, beta=0.6, seed=2)
    res = build_vidb(texts, [VALUE], [judge], references=refs)
    out = res.items.set_index("text").loc[texts]
    assert res.reports[0].calibration["method"] == "reference"
    assert np.mean(np.abs(out["intensity"] - truth)) < 1.5
    plain = build_vidb(texts, [VALUE], [SimulatedTextJudge(table, beta=0.6, seed=2)])
    assert plain.items["intensity"].min() < -8  # the quantile map stretches the thin side


def test_disagreeing_judge_items_are_flagged():
    texts, truth, table = corpus(200, seed=5)
    inverted = set(range(0, 200, 8))
    table_bad = {t: (-y if i in inverted else y) for i, (t, y) in enumerate(zip(texts, truth, strict=True))}
    table_bad.update({t: 0.0 for t in NEUTRAL_ANCHOR_TEXTS})
    judges = [SimulatedTextJudge(table, beta=0.6, seed=1, name="a"),
              SimulatedTextJudge(table, beta=0.6, seed=2, name="b"),
              SimulatedTextJudge(table_bad, beta=0.6, seed=3, name="odd")]
    res = build_vidb(texts, [VALUE], judges)
    flags = res.items.set_index("text").loc[texts, "flags"].fillna("")
    flagged = np.array(["judges_disagree" in f for f in flags])
    strong = np.array([i in inverted and abs(truth[i]) > 6 for i in range(200)])
    assert flagged[strong].mean() >= 0.9
    assert np.isin(np.flatnonzero(flagged), list(inverted)).mean() >= 0.8
    assert {"u_a", "u_b", "u_odd"} <= set(res.diagnostics.columns)
    assert res.items["judges"].iloc[0] == "a,b,odd"


def test_split_assignment_and_adaptive_round():
    texts, truth, table = corpus(60, seed=7)
    judges = [SimulatedTextJudge(table, beta=0.5, seed=i, name=f"j{i}") for i in range(2)]
    res = build_vidb(texts, [VALUE], judges, config=BuildConfig(assign="split", adaptive=1.0))
    rep = res.reports[0]
    # Split: each window ranked once; adaptive adds about n/k windows.
    assert rep.n_rankings == rep.n_windows
    assert rep.n_windows > BuildConfig().r * 66 / 4
    assert spearmanr(res.items.set_index("text").loc[texts, "intensity"], truth).statistic > 0.85


class FlakyJudge:
    """Fails every third window; answers others by the truth."""

    def __init__(self, table, name="flaky", fail_all=False):
        self.table, self.name, self.fail_all, self.calls = table, name, fail_all, 0

    async def rank(self, value, texts):
        self.calls += 1
        if self.fail_all or self.calls % 3 == 0:
            return RankOutcome.failure("no answer")
        return RankOutcome(tuple(int(i) for i in np.argsort([-self.table[t] for t in texts])))


def test_any_protocol_judge_works_and_failures_are_counted():
    texts, _truth, table = corpus(50, seed=2)
    res = build_vidb(texts, [VALUE], [FlakyJudge(table)])
    rep = res.reports[0]
    assert rep.n_failed > 0 and rep.n_rankings + rep.n_failed == rep.n_windows
    assert rep.failure_examples == ["no answer"] * 3
    with pytest.raises(BackendError, match=r"every window .* failed"):
        build_vidb(texts, [VALUE], [FlakyJudge(table, fail_all=True)])


def _llm_judge(table, workspace, name="rank-script"):
    def fn(req):
        body = req.messages[-1]["content"]
        shown = re.findall(r"^\[(\d+)\] (.*)$", body, flags=re.M)
        order = sorted(shown, key=lambda s: -table[s[1]])
        return json.dumps({"ranking": [int(i) for i, _ in order]})

    backend = ScriptedBackend(name, fn=fn)
    return backend, LLMRankingJudge(LLMClient(backend, workspace=workspace))


def test_rerun_sends_no_new_llm_calls_and_stores_items(tmp_workspace):
    texts, truth, table = corpus(30, seed=4)
    b1, j1 = _llm_judge(table, tmp_workspace)
    first = build_vidb(texts, [VALUE], [j1], workspace=tmp_workspace)
    assert len(b1.requests) == first.reports[0].n_windows > 0
    b2, j2 = _llm_judge(table, tmp_workspace)
    again = build_vidb(texts, [VALUE], [j2], workspace=tmp_workspace)
    assert b2.requests == []
    pd.testing.assert_frame_equal(first.items.drop(columns="provenance"),
                                  again.items.drop(columns="provenance"))
    stored = VIDBStore(tmp_workspace).to_frame([VALUE])
    assert len(stored) == 30  # the rerun replaced, not duplicated
    assert spearmanr(stored.set_index("text").loc[texts, "intensity"], truth).statistic > 0.9
    runs = tmp_workspace.runs("vidb-build")
    assert len(runs) == 2 and set(runs["status"]) == {"done"}


def test_categorisation_keeps_texts_about_the_value():
    mft = get_registry().theory("mft")
    care = mft.node("care_harm")
    texts = [f"Someone helps a hurt animal, case {i}." for i in range(12)] + \
            [f"The weather report, item {i}." for i in range(5)]

    def fn(req):
        body = req.messages[-1]["content"]
        if "weather" in body.split('"""')[1]:
            return '{"choice": 0, "direction": "neutral"}'
        names = [ln.split("] ", 1)[1].split(":")[0] for ln in body.splitlines()
                 if ln.startswith("[") and not ln.startswith("[0]")]
        pick = names.index("Care/Harm") + 1 if "Care/Harm" in names else 1
        return json.dumps({"choice": pick, "direction": "supports"})

    panel = PanelCategorizer([LLMClient(ScriptedBackend(f"p{i}", fn=fn)) for i in range(3)],
                             AcceptanceRule(2, None))
    table = {t: float(i % 7) - 3 for i, t in enumerate(texts)}
    table.update({t: 0.0 for t in NEUTRAL_ANCHOR_TEXTS})
    table.update({t: 0.0 for t in texts[12:]})  # the weather items are neutral
    res = build_vidb(texts, [care.id],
                     [SimulatedTextJudge(table, beta=1.0)], categorizer=panel,
                     config=BuildConfig(n_panel_neutral=3))
    assert sorted(res.items["text"]) == sorted(texts[:12])
    assert res.reports[0].n_excluded == 5
    # Three of the five texts the panel found about nothing in MFT join the six built-in
    # neutral anchors.
    assert res.reports[0].n_neutral == 6 + 3
    diag = res.diagnostics
    assert diag["category_path"].str.startswith(care.id).all()
    assert (diag["category_direction"] == "supports").all()
    # The panel said "supports", so clearly opposing intensities are flagged.
    opp = res.items["intensity"] <= -1
    assert opp.any()
    assert res.items.loc[opp, "flags"].str.contains("direction_conflict").all()


def test_bad_inputs():
    texts, _, table = corpus(10)
    judge = SimulatedTextJudge(table)
    with pytest.raises(DataError, match="empty or non-text"):
        build_vidb([*texts, "   "], [VALUE], [judge])
    with pytest.raises(DataError, match="at least 2 distinct texts"):
        build_vidb(["Only one.", "only  ONE."], [VALUE], [judge])
    with pytest.raises(ConfigError, match="at least one judge"):
        build_vidb(texts, [VALUE], [])
    with pytest.raises(ConfigError, match="distinct names"):
        build_vidb(texts, [VALUE], [judge, SimulatedTextJudge(table)])
    with pytest.raises(UnknownNameError, match=r"benevolense|did you mean"):
        build_vidb(texts, ["benevolense"], [judge])
    with pytest.raises(ConfigError, match="name the value"):
        build_vidb(texts, [], [judge])
    with pytest.raises(DataError, match="lacks 1 text"):
        build_vidb([*texts, "A text the truth table lacks."], [VALUE], [judge])


# -- CLI ---------------------------------------------------------------------------------

def _files(tmp_path, n=40):
    texts, truth, _ = corpus(n, seed=9)
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    pd.DataFrame({"text": texts, "intensity": truth}).to_csv(tmp_path / "truth.csv", index=False)
    return texts, truth


def test_cli_build_with_simulated_judges(tmp_path, tmp_workspace):
    from valueflow.cli import cli

    texts, truth = _files(tmp_path)
    tmp_workspace.close()
    r = CliRunner().invoke(cli, [
        "vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence", "--judge", "sim",
        "--judge", "sim", "--sim-truth", str(tmp_path / "truth.csv"), "--out",
        str(tmp_path / "out.csv"), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["n_items"] == 40 and info["values"][0]["value"] == VALUE
    out = pd.read_csv(tmp_path / "out.csv").set_index("text").loc[texts]
    assert spearmanr(out["intensity"], truth).statistic > 0.85
    r = CliRunner().invoke(cli, ["vidb", "export", str(tmp_path / "exp.csv")])
    assert r.exit_code == 0 and len(pd.read_csv(tmp_path / "exp.csv")) == 40


def _fails(result, text: str) -> bool:
    """A CLI error: a ValueFlowError (printed as one line, exit 2, by the entry point)."""
    from valueflow.errors import ValueFlowError

    return isinstance(result.exception, ValueFlowError) and text in str(result.exception)


def test_cli_dry_run_and_errors(tmp_path, tmp_workspace):
    from valueflow.cli import cli

    _files(tmp_path)
    run = CliRunner().invoke
    r = run(cli, ["vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence",
                  "--judge", "openai/some-model", "--dry-run"])
    assert r.exit_code == 0 and "windows of 4" in r.output and "nothing was called" in r.output
    r = run(cli, ["vidb", "build", str(tmp_path / "in.csv"), "--judge", "sim",
                  "--sim-truth", str(tmp_path / "truth.csv")])
    assert _fails(r, "no value column")
    r = run(cli, ["vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence",
                  "--judge", "sim"])
    assert _fails(r, "--sim-truth")
    r = run(cli, ["vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence",
                  "--judge", "sim", "--sim-truth", str(tmp_path / "truth.csv"), "--k", "1"])
    assert _fails(r, "--k")
    r = run(cli, ["vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence",
                  "--judge", "sim", "--sim-truth", str(tmp_path / "truth.csv"), "--categorize"])
    assert _fails(r, "panel")
    pd.DataFrame({"text": ["x"], "intensity": [1.0]}).to_csv(tmp_path / "t2.csv", index=False)
    r = run(cli, ["vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence",
                  "--judge", "sim", "--sim-truth", str(tmp_path / "t2.csv")])
    assert _fails(r, "lacks 40 text")


def test_values_are_built_concurrently_within_one_limit_per_judge():
    """A judge without rank_many: windows of all values share its limit, and a second
    value's windows are in flight before the first value is done."""
    import asyncio

    texts, _, table = corpus(40, seed=5)
    sim = SimulatedTextJudge(table, beta=1.0, seed=2)
    from collections import Counter

    state = {"now": 0, "peak": 0, "overlap": False}
    active: Counter[str] = Counter()

    class SlowJudge:
        name = "slow"

        def check_texts(self, ts):
            sim.check_texts(ts)

        async def rank(self, value, window):
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            active[value.id] += 1
            state["overlap"] |= sum(1 for n in active.values() if n > 0) > 1
            await asyncio.sleep(0.001)
            active[value.id] -= 1
            state["now"] -= 1
            return await sim.rank(value, window)

    values = ["schwartz:benevolence", "mft:care_harm", "ross:fidelity"]
    res = build_vidb(texts, values, [SlowJudge()], config=BuildConfig(concurrency=5))
    assert set(res.items["value"]) == set(values) and len(res.items) == 3 * 40
    assert state["peak"] == 5  # the limit holds over all values together
    assert state["overlap"]  # windows of two values in flight at once


def test_disagreement_z_is_adjusted_for_the_number_of_judge_pairs():
    from scipy.stats import norm

    from valueflow.vidb._build_flags import judge_disagreement

    rng = np.random.default_rng(0)
    n = 20_000
    truth = rng.normal(0, 1, n)

    def judges(j):
        return [(truth + rng.normal(0, 0.1, n), np.full(n, 0.1), np.ones(n, bool))
                for _ in range(j)]

    # Agreeing judges: the false-flag rate stays at the one-pair rate however many judges
    # (unadjusted, seven judges' 21 pairs would flag about 15 times as many).
    expected = 2 * norm.sf(3.0)
    for j in (2, 3, 7):
        rate = np.mean(judge_disagreement(truth, judges(j)) > 3.0)
        assert abs(rate - expected) < 0.0015, (j, rate)
    # A huge disagreement stays huge (no underflow).
    far = [(truth, np.full(n, 0.1), np.ones(n, bool)) for _ in range(6)]
    far.append((truth + 50.0 * (np.arange(n) == 0), np.full(n, 0.1), np.ones(n, bool)))
    z = judge_disagreement(truth, far)
    assert z[0] > 100 and np.isfinite(z).all()


def test_cli_build_against_a_server_fleet_with_a_concurrency_cap(tmp_path, tmp_workspace):
    """--base-url (twice: a fleet) and --max-concurrency reach the LLM judge; the server
    answers with a valid ranking (the window order), and the build completes."""
    from valueflow.cli import cli
    from valueflow.llm.testing import FakeOpenAIServer

    _files(tmp_path)
    tmp_workspace.close()

    def respond(body):
        k = body["response_format"]["json_schema"]["schema"]["properties"]["ranking"][
            "maxItems"] if "response_format" in body else 4
        return json.dumps({"ranking": list(range(1, k + 1))})

    with FakeOpenAIServer(latency=0.01, respond=respond) as a, \
            FakeOpenAIServer(latency=0.01, respond=respond) as b:
        r = CliRunner().invoke(cli, [
            "vidb", "build", str(tmp_path / "in.csv"), "--value", "benevolence", "--judge",
            "openai/judge", "--base-url", a.url, "--base-url", b.url, "--max-concurrency", "3",
            "--no-progress", "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["n_items"] == 40
        assert a.completed > 0 and b.completed > 0  # both servers of the fleet were used
        assert max(a.max_in_flight, b.max_in_flight) <= 3  # the cap holds
