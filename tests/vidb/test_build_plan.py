"""The build's pure steps: plans, the cost estimate, and one value's result from its answers."""

from __future__ import annotations

import copy
import inspect
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr

from valueflow.errors import ConfigError, DataError
from valueflow.judges import LLMRankingJudge, SimulatedTextJudge
from valueflow.llm import LLMClient, ScriptedBackend
from valueflow.theories import resolve_value
from valueflow.vidb import (
    NEUTRAL_ANCHOR_TEXTS,
    BuildConfig,
    build_vidb,
    build_vidb_async,
    estimate_build_cost,
)
from valueflow.vidb._build_fit import Answers, finish_value
from valueflow.vidb._build_plan import plan_value

VALUE = "schwartz:benevolence"


def corpus(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    texts = [f"Statement {i} about helping or harming people, at some length." for i in range(n)]
    table = dict(zip(texts, rng.uniform(-10, 10, n), strict=True))
    table.update({t: 0.0 for t in NEUTRAL_ANCHOR_TEXTS})
    return texts, table


def test_build_vidb_has_the_signature_of_build_vidb_async():
    sync = inspect.signature(build_vidb)
    assert sync.parameters == inspect.signature(build_vidb_async).parameters
    assert "config" in sync.parameters and sync.parameters["config"].annotation != "Any"


@pytest.mark.parametrize("assign", ["all", "split"])
def test_estimate_counts_the_windows_and_calls_the_build_makes(assign):
    texts, table = corpus(50, seed=1)
    refs = [("A reference text of known intensity.", 4.0)]
    table[refs[0][0]] = 4.0
    judges = [SimulatedTextJudge(table, beta=0.5, seed=i, name=f"j{i}") for i in range(3)]
    cfg = BuildConfig(assign=assign, k=5, r=3, seed=4)
    rep = build_vidb(texts, [VALUE], judges, config=cfg, references=refs).reports[0]
    (cost,) = estimate_build_cost(texts, [VALUE], config=cfg, n_judges=3, simulated=[0, 1, 2],
                                  references=refs)
    assert cost.exact and cost.n_windows == rep.n_windows
    assert (cost.n_texts, cost.n_neutral, cost.n_reference) == (50, 6, 1)
    assert cost.judge_calls == rep.n_rankings + rep.n_failed
    assert cost.judge_calls == rep.n_windows * (3 if assign == "all" else 1)
    assert cost.llm_calls == 0 and cost.prompt_tokens == 0  # simulated judges cost nothing
    (one_llm,) = estimate_build_cost(texts, [VALUE], config=cfg, n_judges=3, simulated=[0, 1],
                                     references=refs)
    expected = rep.n_windows if assign == "all" else len(range(2, rep.n_windows, 3))
    assert one_llm.llm_calls == expected and one_llm.prompt_tokens > 0


def test_estimate_counts_the_adaptive_round_the_build_adds():
    texts, table = corpus(60, seed=7)
    cfg = BuildConfig(adaptive=1.0)
    rep = build_vidb(texts, [VALUE], [SimulatedTextJudge(table, beta=0.5)], config=cfg).reports[0]
    (cost,) = estimate_build_cost(texts, [VALUE], config=cfg)
    assert cost.n_adaptive_windows == 17  # ceil(1.0 * 66 items / 4)
    assert rep.n_windows == cost.n_windows + cost.n_adaptive_windows
    assert cost.judge_calls == rep.n_windows and not cost.exact


def test_prompt_tokens_agree_with_the_llm_clients_own_estimate():
    texts, _ = corpus(40, seed=2)
    value = resolve_value(VALUE)
    cfg = BuildConfig(k=4, r=2)
    plan = plan_value(value, texts, cfg, 1, neutral=NEUTRAL_ANCHOR_TEXTS[:6])
    judge = LLMRankingJudge(LLMClient(ScriptedBackend("x", fn=lambda req: "[1, 2, 3, 4]")))
    windows = [[plan.all_texts[i] for i in w] for w in plan.windows]
    exact = judge.client.estimate(judge.requests(value, windows))
    (cost,) = estimate_build_cost(texts, [VALUE], config=cfg)
    assert cost.llm_calls == exact.calls == len(windows)
    assert cost.prompt_tokens == pytest.approx(exact.prompt_tokens, rel=0.01)


def test_estimate_with_a_panel_is_an_upper_bound_and_refuses_what_the_build_refuses():
    texts, _ = corpus(30)
    (plain,) = estimate_build_cost(texts, [VALUE])
    (panel,) = estimate_build_cost(texts, [VALUE], n_panel=3,
                                   config=BuildConfig(n_panel_neutral=4))
    assert not panel.exact and panel.n_neutral == 6 + 4 and panel.n_windows >= plain.n_windows
    assert panel.panel_calls_per_level == 30 * 3 and plain.panel_calls_per_level == 0
    with pytest.raises(DataError, match="empty or non-text"):
        estimate_build_cost([*texts, " "], [VALUE])
    with pytest.raises(DataError, match="at least 2 distinct texts"):
        estimate_build_cost(["One.", "one. "], [VALUE])
    with pytest.raises(ConfigError, match="at least one judge"):
        estimate_build_cost(texts, [VALUE], n_judges=0)
    with pytest.raises(ConfigError, match=r"indices in 0\.\.1"):
        estimate_build_cost(texts, [VALUE], n_judges=2, simulated=[2])


def test_one_value_is_finished_from_its_plan_and_answers_without_changing_them():
    texts, table = corpus(30, seed=3)
    value = resolve_value(VALUE)
    cfg = BuildConfig()
    plan = plan_value(value, texts, cfg, 1, neutral=NEUTRAL_ANCHOR_TEXTS[:6], n_excluded=2)
    truth = np.array([table[t] for t in plan.all_texts])
    # A perfect judge: every window in the order of the latent intensities.
    rankings = [tuple(int(i) for i in w[np.argsort(-truth[w])]) for w in plan.windows]
    answers = Answers(rankings, [0] * len(rankings), list(range(len(rankings))))
    before = (copy.deepcopy(plan.texts), plan.windows.copy(), copy.deepcopy(answers))
    out = finish_value(plan, answers, ["perfect"], cfg)
    assert (plan.texts, answers) == (before[0], before[2])
    assert np.array_equal(plan.windows, before[1])
    rep = out.report
    assert (rep.value, rep.n_texts, rep.n_excluded, rep.n_neutral) == (VALUE, 30, 2, 6)
    assert rep.n_windows == rep.n_rankings == len(plan.windows) and rep.n_failed == 0
    assert list(out.items["text"]) == texts and not rep.at_chance
    assert spearmanr(out.items["intensity"], truth[:30]).statistic > 0.95
    again = finish_value(plan, answers, ["perfect"], cfg)
    pd.testing.assert_frame_equal(out.items, again.items)
    assert again.report == rep


def test_answers_keep_failures_and_map_window_positions_to_items():
    from valueflow.judges import RankOutcome

    windows = np.array([[4, 7, 1], [2, 0, 3]])
    a = Answers.of(windows, [0, 1], [RankOutcome((2, 0, 1)), RankOutcome.failure("bad")], 1)
    assert a.rankings == [(1, 4, 7)] and a.judge == [1] and a.window == [0]
    assert (a.n_failed, a.failures) == (1, ["bad"])
    both = a + Answers.of(windows, [1], [RankOutcome((0, 1, 2))], 0)
    assert both.rankings == [(1, 4, 7), (2, 0, 3)] and both.window == [0, 1]


def test_cli_dry_run_reports_the_estimate(tmp_path, tmp_workspace):
    from valueflow.cli import cli

    texts, _ = corpus(40, seed=9)
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    tmp_workspace.close()
    r = CliRunner().invoke(cli, ["vidb", "build", str(tmp_path / "in.csv"), "--value",
                                 "benevolence", "--judge", "sim", "--judge", "openai/m",
                                 "--k", "5", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)["plan"]
    (cost,) = estimate_build_cost(texts, [VALUE], config=BuildConfig(k=5), n_judges=2,
                                  simulated=[0])
    assert row["windows"] == cost.n_windows and row["judge_calls"] == 2 * cost.n_windows
    assert row["llm_calls"] == cost.n_windows and row["prompt_tokens"] == cost.prompt_tokens
    r = CliRunner().invoke(cli, ["vidb", "build", str(tmp_path / "in.csv"), "--value",
                                 "benevolence", "--judge", "openai/m", "--dry-run"])
    assert r.exit_code == 0, r.output
    (k4,) = estimate_build_cost(texts, [VALUE])
    assert f"{k4.n_windows} windows of 4, {k4.judge_calls} judge calls" in r.output
    assert f"about {k4.prompt_tokens:,} prompt tokens" in r.output
