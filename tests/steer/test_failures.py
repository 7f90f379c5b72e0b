"""``steer run`` reports what failed, stores no judge failure as final, and resumes honestly."""

from __future__ import annotations

import json
import re
import socket

import pytest
import yaml

from tests.conftest import run_main
from valueflow.errors import ConfigError, RunFailedError
from valueflow.llm._openai import OpenAIBackend
from valueflow.llm.testing import FakeOpenAIServer
from valueflow.steer import load_config, run_steering
from valueflow.steer._store import SteerStore

BASE = {
    "name": "f",
    "values": ["benevolence"],
    "levels": [-2, 2],
    "regimes": ["intensity"],
    "queries": {"limit": 3},
    "generation": {"max_tokens": 20, "max_concurrency": 2},
}
N_ANSWERS = 3 * 3  # (default + two levels) × three queries


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ranking(body) -> str:
    user = body["messages"][-1]["content"]
    k = len(re.findall(r"^\[\d+\] ", user, flags=re.MULTILINE))
    return "[" + ", ".join(str(i + 1) for i in range(k)) + "]"


def _answer(body) -> str:
    """A distinct answer per prompt (the system message holds the steering instruction)."""
    return "An answer to: " + " | ".join(m["content"][:60] for m in body["messages"])


def _cfg(gen_url: str, judge_url: str, **judge_options) -> dict:
    return {**BASE, "models": [{"spec": "openai/gen", "base_url": gen_url}],
            "judge": {"spec": "openai/judge", "options": {"base_url": judge_url, **judge_options},
                      "k": 3, "m": 1, "design": "random", "vidb": "seed"}}


@pytest.fixture(autouse=True)
def _fast_giving_up(monkeypatch):
    # A server that is down is given up on after a fraction of a second (default 20 s).
    monkeypatch.setitem(OpenAIBackend.__init__.__kwdefaults__, "unreachable_s", 0.3)


def test_the_judge_config_steer_init_documents_works(tmp_workspace, monkeypatch):
    """judge: {spec: openai/<m>, options: {base_url, api_key_env, max_concurrency}}: each
    option reaches the judge's backend."""
    monkeypatch.setenv("VF_TEST_JUDGE_KEY", "sekret")
    with FakeOpenAIServer(respond=_answer) as gen, \
            FakeOpenAIServer(respond=_ranking, api_key="sekret", latency=0.01) as judge:
        cfg = load_config(_cfg(gen.url, judge.url, api_key_env="VF_TEST_JUDGE_KEY",
                               max_concurrency=2))
        out = run_steering(cfg, tmp_workspace, progress=False)
    assert out["status"] == "done" and out["scores"]["scored"] == N_ANSWERS
    assert out["scores"]["failed"] == 0
    assert judge.completed > N_ANSWERS  # the health check, then one window per answer
    assert 1 <= judge.max_in_flight <= 2
    assert all(r.headers["authorization"] == "Bearer sekret" for r in judge.requests)


def test_a_bad_judge_option_is_refused_before_any_generation(tmp_workspace):
    with FakeOpenAIServer(respond=_answer) as gen:
        cfg = load_config(_cfg(gen.url, "http://127.0.0.1:1/v1", base_urll="http://x/v1"))
        with pytest.raises(ConfigError, match="does not take the option 'base_urll'") as info:
            run_steering(cfg, tmp_workspace, progress=False)
        assert "did you mean 'base_url'" in (info.value.hint or "")
        cfg2 = load_config({**_cfg(gen.url, "http://x/v1"), "judge": {"spec": "sim"}})
        with pytest.raises(ConfigError, match="needs latent intensities"):
            run_steering(cfg2, tmp_workspace, progress=False)
        assert gen.requests == []  # nothing was paid for
    assert tmp_workspace.runs("steer").empty


def test_an_unreachable_judge_stops_the_run_before_generation(tmp_workspace, tmp_path,
                                                              capsys):
    port = _free_port()
    with FakeOpenAIServer(respond=_answer) as gen:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump(_cfg(gen.url, f"http://127.0.0.1:{port}/v1")))
        assert run_main("steer", "run", str(cfg)) == 4
        err = capsys.readouterr().err
        assert "cannot be reached" in err and "Traceback" not in err
        assert gen.requests == []  # no answer paid for with a judge that cannot score it
        assert list(tmp_workspace.runs("steer")["status"]) == ["failed"]
        with FakeOpenAIServer(respond=_ranking, port=port) as judge:
            assert run_main("steer", "run", str(cfg)) == 0
            assert judge.completed > N_ANSWERS  # back up: the judge is asked
    assert list(tmp_workspace.runs("steer")["status"]) == ["done"]


def test_judge_failures_are_not_stored_and_a_rerun_asks_again(tmp_workspace, tmp_path, capsys):
    """The judge answers, but nothing usable: the run is failed (exit 4), no score is stored,
    and once the judge works the rerun asks it again instead of reusing failures."""
    state = {"garbage": True}

    def judge_respond(body):
        return "I would rather not say." if state["garbage"] else _ranking(body)

    with FakeOpenAIServer(respond=_answer) as gen, \
            FakeOpenAIServer(respond=judge_respond) as judge:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump(_cfg(gen.url, judge.url)))
        assert run_main("steer", "run", str(cfg), "--json") == 4
        captured = capsys.readouterr()
        summary = json.loads(captured.out)
        assert summary["status"] == "failed" and summary["scores"]["failed"] == N_ANSWERS
        assert f"{N_ANSWERS} (answer, value) pair(s) not scored" in captured.err
        assert "unreadable ranking" in captured.err
        assert SteerStore(tmp_workspace).existing_scores("openai/judge") == set()
        assert list(tmp_workspace.runs("steer")["status"]) == ["failed"]
        run_main("steer", "analyze", "--n-boot", "20")
        assert f"is failed: {N_ANSWERS} (answer, value) pair(s) have no score" in \
            capsys.readouterr().out.splitlines()[0]
        from valueflow.analysis import analyze, render_report
        from valueflow.steer import load_results

        report = render_report(analyze(load_results(tmp_workspace), n_boot=20))
        assert f"is failed: {N_ANSWERS} (answer, value) pair(s) have no score" in report

        state["garbage"] = False
        asked = judge.completed
        assert run_main("steer", "run", str(cfg), "--json") == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["status"] == "done" and summary["scores"]["scored"] == N_ANSWERS
        assert summary["models"]["openai/gen"] == {**summary["models"]["openai/gen"],
                                                  "generated": 0, "reused": N_ANSWERS}
        assert judge.completed >= asked + N_ANSWERS
    assert list(tmp_workspace.runs("steer")["status"]) == ["done"]


def test_some_failed_scores_make_a_partial_run(tmp_workspace, scorer):
    """A direct judge that gives NaN for some answers: partial, and only NaN-free scores
    are stored."""
    import numpy as np

    from valueflow.llm import ScriptedBackend

    class Flaky:
        name = "flaky"
        description = "test double"

        def score(self, texts, value):
            return np.array([(np.nan,) * 3 if "neutral" in t else (1.0, 0.0, 2.0)
                             for t in texts])

    backend = ScriptedBackend("s", fn=lambda r: "neutral" if r.messages[0]["role"] == "user"
                              else "a steered answer")
    cfg = load_config({**BASE, "models": [{"spec": "scripted", "name": "s"}]})
    out = run_steering(cfg, tmp_workspace, backends={"s": backend}, judge=Flaky(),
                       progress=False)
    assert out["status"] == "partial"
    assert out["scores"]["failed"] == 3 and out["scores"]["scored"] == 6
    assert len(SteerStore(tmp_workspace).existing_scores("flaky")) == 6


def test_answers_recovered_from_the_call_cache_count_as_reused(tmp_workspace, scripted,
                                                               scorer):
    """After a kill, answers the call cache holds but the steering tables do not are
    reused, not counted as generated."""
    cfg = load_config({**BASE, "models": [{"spec": "scripted", "name": "s"}]})
    first = run_steering(cfg, tmp_workspace, backends={"s": scripted}, judge=scorer,
                         progress=False)
    assert first["models"]["s"]["generated"] == N_ANSWERS
    with tmp_workspace.transaction() as con:  # as if killed before the answers were stored
        con.execute("DELETE FROM steer_generations")
        con.execute("DELETE FROM steer_run_items")
    n_calls = len(scripted.requests)
    again = run_steering(cfg, tmp_workspace, backends={"s": scripted}, judge=scorer,
                         progress=False)
    assert len(scripted.requests) == n_calls
    assert again["models"]["s"]["generated"] == 0
    assert again["models"]["s"]["reused"] == N_ANSWERS


def test_an_interrupted_run_is_recorded_as_interrupted(tmp_workspace, scorer):
    from valueflow.llm import ScriptedBackend

    def answer(_request):
        raise KeyboardInterrupt

    cfg = load_config({**BASE, "models": [{"spec": "scripted", "name": "s"}]})
    with pytest.raises(KeyboardInterrupt):
        run_steering(cfg, tmp_workspace, backends={"s": ScriptedBackend("k", fn=answer)},
                     judge=scorer, progress=False)
    assert list(tmp_workspace.runs("steer")["status"]) == ["interrupted"]


def test_credentials_in_base_urls_are_never_stored_or_shown(tmp_workspace, scorer, tmp_path,
                                                            capsys):
    from valueflow.analysis import analyze, render_report
    from valueflow.steer import load_results

    with FakeOpenAIServer(respond=_answer) as gen:
        url = gen.url.replace("http://", "http://alice:s3cret@")
        cfg = load_config({**BASE, "models": [{"spec": "openai/gen", "base_url": url}],
                           "judge": {"spec": "openai/j", "options": {
                               "base_url": url + "?key=k3y"}}})
        messages: list[str] = []
        out = run_steering(cfg, tmp_workspace, judge=scorer, progress=False,
                           echo=messages.append)
    assert out["status"] == "done"
    spec = tmp_workspace.runs("steer").iloc[0]["spec"]
    report = render_report(analyze(load_results(tmp_workspace), n_boot=20))
    for shown in (spec, report, json.dumps(out), " ".join(messages)):
        assert "s3cret" not in shown and "k3y" not in shown and "alice" not in shown
    assert gen.url.removeprefix("http://") in spec  # the host is still recorded


def test_no_models_is_an_error():
    with pytest.raises(ConfigError, match="at least one model"):
        load_config({**BASE, "models": []})


def test_query_files_are_read_from_the_config_folder(tmp_path, monkeypatch):
    from valueflow.steer import plan_steering

    folder = tmp_path / "experiment"
    folder.mkdir()
    (folder / "mine.csv").write_text("query\nWhat should I cook tonight?\nHow do I fix a bike?\n")
    (folder / "c.yaml").write_text(yaml.safe_dump({**BASE, "queries": {"sets": ["mine.csv"]}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plan = plan_steering(load_config(folder / "c.yaml"))
    assert [q.text for q in plan.queries] == ["What should I cook tonight?",
                                              "How do I fix a bike?"]


def test_a_binary_file_is_a_one_line_error(tmp_path, capsys):
    blob = tmp_path / "image.yaml"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x10" * 8)
    for args in (["steer", "run", str(blob)], ["theories", "validate", str(blob)],
                 ["--theory-file", str(blob), "theories", "list"]):
        assert run_main(*args) == 2, args
        err = capsys.readouterr().err
        assert "not a text file" in err and "Traceback" not in err, (args, err)


def test_a_dry_run_checks_the_judge_options_too(tmp_workspace, scripted):
    cfg = load_config({**BASE, "models": [{"spec": "scripted", "name": "s"}],
                       "judge": {"spec": "local", "options": {"base_url": "http://x/v1"}}})
    with pytest.raises(ConfigError, match="judge 'local' does not take the option 'base_url'"):
        run_steering(cfg, tmp_workspace, backends={"s": scripted}, dry_run=True,
                     progress=False)


def test_run_failed_error_is_raised_by_the_library(tmp_workspace, scorer):
    port = _free_port()
    cfg = load_config({**BASE, "models": [{"spec": "openai/gen",
                                           "base_url": f"http://127.0.0.1:{port}/v1"}]})
    with pytest.raises(RunFailedError, match="cannot be reached") as info:
        run_steering(cfg, tmp_workspace, judge=scorer, progress=False)
    assert info.value.exit_code == 4
    assert list(tmp_workspace.runs("steer")["status"]) == ["failed"]


def test_a_value_the_judge_cannot_score_is_refused_before_generation(tmp_workspace, scripted):
    class Local:  # a local scorer that knows one value
        name = "local-like"
        description = "test double"
        values_ = ("schwartz:benevolence", "mft:fairness_cheating")

        def score(self, texts, value):
            raise AssertionError("never reached")

    cfg = load_config({**BASE, "values": ["fairness"],
                       "models": [{"spec": "scripted", "name": "s"}]})
    from valueflow.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="no texts for mft:fairness") as info:
        run_steering(cfg, tmp_workspace, backends={"s": scripted}, judge=Local(),
                     progress=False)
    assert "mft:fairness_cheating" in (info.value.hint or "")
    from valueflow.errors import DataError
    from valueflow.judges import LLMRankingJudge
    from valueflow.llm import LLMClient, ScriptedBackend

    ranker = LLMRankingJudge(LLMClient(ScriptedBackend("r", outputs=[])))
    with pytest.raises(DataError, match="no anchors for mft:fairness"):
        run_steering(cfg, tmp_workspace, backends={"s": scripted}, judge=ranker,
                     progress=False)
    assert scripted.requests == [] and tmp_workspace.runs("steer").empty


def test_a_rating_judge_from_the_config_rates_the_answers(tmp_workspace):
    with FakeOpenAIServer(respond=_answer) as gen, \
            FakeOpenAIServer(respond=lambda body: "7") as judge:
        cfg = load_config(_cfg(gen.url, judge.url, method="rating"))
        out = run_steering(cfg, tmp_workspace, progress=False)
    assert out["status"] == "done" and out["scores"]["scored"] == N_ANSWERS
    assert all("<text>" in r.prompt for r in judge.requests[1:])  # rating prompts
