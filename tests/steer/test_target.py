"""Steering to a target: the monotone calibration math, target parsing, and the closed loop
against an OpenAI-compatible test server (prompt regime), including resume."""

from __future__ import annotations

import re

import numpy as np
import pytest

from valueflow.errors import ConfigError
from valueflow.steer import fit_dose_response, parse_targets, steer_to_target
from valueflow.steer._calibrate import isotonic, spearman


# -- calibration math ---------------------------------------------------------------------
def test_isotonic_pools_adjacent_violators_with_weights():
    np.testing.assert_allclose(isotonic([0, 2, 1, 3]), [0, 1.5, 1.5, 3])
    np.testing.assert_allclose(isotonic([0, 2, 1, 3], [1, 1, 3, 1]), [0, 1.25, 1.25, 3])
    np.testing.assert_allclose(isotonic([3, 1, 2, 0], increasing=False), [3, 1.5, 1.5, 0])
    y = np.random.default_rng(0).normal(size=40)
    assert np.all(np.diff(isotonic(y)) >= -1e-12)


def test_dose_response_fits_inverts_and_bands_a_noisy_monotone_sweep():
    rng = np.random.default_rng(1)
    x = np.repeat(np.linspace(-2, 2, 9), 12)
    y = 2.5 * x + rng.normal(0, 1.5, x.size)
    c = fit_dose_response(x, y, n_boot=200)
    assert c.increasing and c.spearman > 0.95
    assert np.all(np.diff(c.fitted) >= 0)
    assert np.all(c.low <= c.fitted + 1e-9) and np.all(c.fitted <= c.high + 1e-9)
    for t in (-3.0, 0.0, 2.0):
        s = c.invert(t)
        assert abs(float(c.predict(s)) - t) < 1e-6
        assert abs(s - t / 2.5) < 0.35
    assert c.invert(40) == 2.0 and not c.reachable(40, tolerance=1)
    down = fit_dose_response(x, -y, n_boot=50)
    assert not down.increasing and abs(float(down.predict(down.invert(3.0))) - 3.0) < 1e-6
    back = type(c).from_dict(c.as_dict())
    np.testing.assert_allclose(back.fitted, c.fitted)


def test_a_flat_stretch_inverts_to_its_middle_and_one_setting_is_refused():
    c = fit_dose_response([0, 1, 2, 3], [0.0, 1.0, 1.0, 2.0], n_boot=10)
    assert c.invert(1.0) == 1.5
    with pytest.raises(ConfigError, match="two or more settings"):
        fit_dose_response([1, 1, 1], [0, 1, 2])
    assert np.isnan(spearman([1, 2, 3], [5, 5, 5]))


def test_targets_are_parsed_and_bad_ones_refused_with_the_fix():
    assert parse_targets(["benevolence=+4", "power=-2"]) == {"schwartz:benevolence": 4.0,
                                                           "schwartz:power": -2.0}
    for bad, msg in [(["benevolence"], "VALUE=INTENSITY"), (["power=12"], r"\[-10, 10\]"),
                     (["power=high"], "not a number"), (["power=1", "power=2"], "two targets"),
                     ([], "no target")]:
        with pytest.raises(ConfigError, match=msg):
            parse_targets(bad)


# -- the closed loop against a server -----------------------------------------------------
_LEVEL_WORDS = {"strongly value": 2, "somewhat value": 1, "neutral about": 0,
                "mildly opposed": -1, "strongly oppose": -2,
                # persona prompts
                "comes before almost everything": 2, "person who cares about": 1,
                "no particular feelings": 0, "is wary of": -1, "no patience for": -2}


def _level_of(body) -> int | None:
    system = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
    for words, lv in _LEVEL_WORDS.items():
        if words in system:
            return lv
    return None


def respond(body) -> str:
    """The served model follows its level instruction; 'stubborn' questions lag one level."""
    user = body["messages"][-1]["content"]
    lv = _level_of(body)
    return f"LEVEL={lv} {'STUBBORN' if 'stubborn' in user else ''} answer to: {user[:30]}"


class LevelJudge:
    """A DirectScorer double: intensity 2.5 × the level the answer states (one level lower
    for stubborn answers; 0 for unsteered answers)."""

    name = "level-judge"

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call

    def score(self, texts, value):
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise KeyboardInterrupt
        out = []
        for t in texts:
            m = re.search(r"LEVEL=(-?\d)", t)
            x = 2.5 * int(m.group(1)) if m else 0.0
            x -= 2.5 if "STUBBORN" in t else 0.0
            out.append((x, x - 1, x + 1))
        return np.array(out)


@pytest.fixture
def server():
    from valueflow.llm.testing import FakeOpenAIServer

    with FakeOpenAIServer(respond=respond) as srv:
        yield srv


def _backend(server):
    from valueflow.llm import get_backend

    return get_backend("openai/fake", base_url=server.url)


_SETTINGS = {"regime": "prompt", "tolerance": 1.0, "n": 2, "budget": 6, "pilot_queries": 3}


def test_prompt_targets_are_hit_and_a_stubborn_question_is_adjusted(server, tmp_workspace):
    qs = ["What should I do this weekend?", "A stubborn question about my neighbours?"]
    res = steer_to_target(_backend(server), {"benevolence": 2.5}, tmp_workspace, queries=qs,
                          settings={**_SETTINGS, "side_values": ["power"]}, judge=LevelJudge(),
                          progress=False)
    cal = res.calibrations["schwartz:benevolence"]
    np.testing.assert_allclose(cal.curve.fitted, [-5, -2.5, 0, 2.5, 5])
    easy, stubborn = res.outcomes
    assert easy.hit and easy.n_candidates == 2 and easy.settings["schwartz:benevolence"] == 1
    # level 1 measured 0 (offset -2.5), so the loop moved to level 2, which hit
    assert stubborn.hit and stubborn.n_candidates == 4
    assert stubborn.settings["schwartz:benevolence"] == 2
    assert stubborn.measured["schwartz:benevolence"][0] == 2.5
    assert res.hit_rate == 1.0 and res.rmse == 0.0
    # one answer at the calibrated setting hits for the easy question, never for the other
    assert (easy.first_round_hits, stubborn.first_round_hits) == (1.0, 0.0)
    assert res.first_round_hit_rate == 0.5
    # the judge double reads the level whatever the value: power moves with benevolence
    # (level 1 vs the unsteered answer, which states no level)
    assert easy.side_effects == {"schwartz:power": 2.5}
    assert stubborn.side_effects == {"schwartz:power": 5.0}  # level 2 (2.5) vs -2.5
    assert res.summary()["side_effects"] == {"schwartz:power": 3.75}
    assert not easy.refusal and res.summary()["refusal_rate"] == 0.0
    from valueflow.steer import load_target_result

    back = load_target_result(tmp_workspace, res.run_id)
    assert [(o.hit, o.n_candidates, o.side_effects, o.first_round_hits)
            for o in back.outcomes] == [(o.hit, o.n_candidates, o.side_effects,
                                         o.first_round_hits) for o in res.outcomes]
    assert "LEVEL=2" in stubborn.response


def test_persona_prompts_are_a_regime_of_their_own_calibrated_and_searched(server,
                                                                          tmp_workspace):
    res = steer_to_target(_backend(server), {"benevolence": -5}, tmp_workspace,
                          queries=["What should I do this weekend?"],
                          settings={**_SETTINGS, "regime": "persona"}, judge=LevelJudge(),
                          progress=False)
    cal = res.calibrations["schwartz:benevolence"]
    assert cal.regime == "persona"
    np.testing.assert_allclose(cal.curve.fitted, [-5, -2.5, 0, 2.5, 5])
    [o] = res.outcomes
    assert o.hit and o.settings["schwartz:benevolence"] == -2
    bodies = [r.body for r in server.requests if "weekend" in r.body["messages"][-1]["content"]]
    systems = {m["content"] for b in bodies for m in b["messages"] if m["role"] == "system"}
    assert any("no patience for benevolence" in t and "Stay in character" in t for t in systems)
    # the prompt regime's calibration is another one: both are kept
    prompt = steer_to_target(_backend(server), {"benevolence": -5}, tmp_workspace,
                             queries=["What should I do this weekend?"], settings=_SETTINGS,
                             judge=LevelJudge(), progress=False)
    assert prompt.calibrations["schwartz:benevolence"].regime == "prompt"


def test_an_unreachable_target_spends_the_budget_and_reports_the_miss(server, tmp_workspace):
    res = steer_to_target(_backend(server), {"benevolence": -9}, tmp_workspace,
                          queries=["What should I do this weekend?"], settings=_SETTINGS,
                          judge=LevelJudge(), progress=False)
    [o] = res.outcomes
    assert not o.hit and o.n_candidates == 6 and o.measured["schwartz:benevolence"][0] == -5
    assert res.rmse == pytest.approx(4.0)
    frame = res.to_frame()
    assert list(frame["error"]) == [4.0] and not frame["hit"].any()


def test_an_interrupted_run_resumes_without_repeating_finished_answers(server, tmp_workspace):
    qs = ["A stubborn question about my neighbours?", "What should I do this weekend?"]
    settings = {**_SETTINGS, "n": 1}
    with pytest.raises(KeyboardInterrupt):  # stops while scoring round 2
        steer_to_target(_backend(server), {"benevolence": 2.5}, tmp_workspace, queries=qs,
                        settings=settings, judge=LevelJudge(fail_on_call=3), progress=False)
    before = server.completed
    res = steer_to_target(_backend(server), {"benevolence": 2.5}, tmp_workspace, queries=qs,
                          settings=settings, judge=LevelJudge(), progress=False)
    after_resume = server.completed - before
    # a fresh run in another workspace makes every call once: pilot 15 + 3 candidates
    from valueflow.workspace import open_workspace

    with open_workspace(tmp_workspace.path + ".fresh") as ws2:
        start = server.completed
        fresh = steer_to_target(_backend(server), {"benevolence": 2.5}, ws2, queries=qs,
                                settings=settings, judge=LevelJudge(), progress=False)
        assert server.completed - start == 15 + 3
    assert before + after_resume == 15 + 3  # nothing generated twice across the two runs
    assert [o.hit for o in res.outcomes] == [o.hit for o in fresh.outcomes] == [True, True]
    again = server.completed
    steer_to_target(_backend(server), {"benevolence": 2.5}, tmp_workspace, queries=qs,
                    settings=settings, judge=LevelJudge(), progress=False)
    assert server.completed == again  # a finished run is read back, not regenerated


def test_activation_steering_of_a_server_model_is_refused_before_any_call(server,
                                                                          tmp_workspace):
    with pytest.raises(ConfigError, match="hidden states"):
        steer_to_target(_backend(server), {"power": 3}, tmp_workspace, queries=2,
                        settings={"regime": "activation"}, judge=LevelJudge(), progress=False)
    assert server.completed == 0
    with pytest.raises(ConfigError, match="budget of 2 candidates is less than one round of 4"):
        steer_to_target(_backend(server), {"power": 3}, tmp_workspace,
                        settings={"regime": "prompt", "budget": 2, "n": 4}, judge=LevelJudge())
    with pytest.raises(ConfigError, match="invalid target settings: tolerance"):
        steer_to_target(_backend(server), {"power": 3}, tmp_workspace,
                        settings={"tolerance": -1}, judge=LevelJudge())


def test_multi_value_prompt_targets_are_measured_on_every_value(server, tmp_workspace):
    res = steer_to_target(_backend(server), ["benevolence=5", "power=5"], tmp_workspace,
                          queries=["What should I do this weekend?"], settings=_SETTINGS,
                          judge=LevelJudge(), progress=False)
    [o] = res.outcomes
    assert set(o.measured) == {"schwartz:benevolence", "schwartz:power"}
    assert o.settings == {"schwartz:benevolence": 2.0, "schwartz:power": 2.0}
    from valueflow.analysis import target_table
    from valueflow.steer import load_target_run

    cands = load_target_run(tmp_workspace)
    assert set(cands["value"]) == {"schwartz:benevolence", "schwartz:power"}
    table = target_table(cands, tolerance=1.0)
    assert list(table["hit_rate"]) == [1.0, 1.0]


def test_a_config_with_targets_runs_them_and_the_report_shows_them(tmp_workspace, scripted,
                                                                   tmp_path):
    """`targets` in a steering config: closed-loop runs recorded under the steering run,
    read back as results, drawn in the HTML report with the judge that measured them."""
    from tests.steer.conftest import KeywordScorer
    from valueflow.analysis import analyze, write_report
    from valueflow.steer import (
        load_config,
        load_results,
        load_target_result,
        run_steering,
        target_runs,
    )
    from valueflow.steer._target import merge_results

    cfg = load_config({"name": "t", "models": [{"spec": "scripted", "name": "script"}],
                       "values": ["benevolence"], "levels": [-2, 2], "regimes": ["intensity"],
                       "queries": {"limit": 2}, "generation": {"max_tokens": 20},
                       "targets": {"model": "script", "regime": "prompt", "queries": 2,
                                   "intensities": {"benevolence": [6, -6]}, "tolerance": 1,
                                   "n": 1, "budget": 2}})
    summary = run_steering(cfg, tmp_workspace, backends={"script": scripted},
                           judge=KeywordScorer(), progress=False)
    t = summary["targets"]
    assert t["hit_rate"] == 1.0 and [r["target"] for r in t["runs"]] == [6, -6]
    results = load_results(tmp_workspace)
    runs = target_runs(tmp_workspace, parent=results.attrs["run_id"])
    assert runs == [r["run_id"] for r in t["runs"]]
    loaded = [load_target_result(tmp_workspace, r) for r in runs]
    assert [o.measured["schwartz:benevolence"][0] for r in loaded for o in r.outcomes] == \
        [6, 6, -6, -6]
    assert all(o.hit and o.n_candidates == 1 for r in loaded for o in r.outcomes)
    analysis = analyze(results, n_boot=20)
    analysis.targets = merge_results(loaded)
    assert len(analysis.targets) == 1  # both targets of one value share a plot
    html = write_report(analysis, tmp_path / "r.html").read_text()
    assert "Steering to target intensities" in html and "measured by judge kw" in html
    with pytest.raises(ConfigError, match=r"targets.intensities: .*lie in \[-10, 10\]"):
        load_config({"targets": {"intensities": {"power": [12]}}})
