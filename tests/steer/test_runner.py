from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from valueflow.steer import load_config, load_results, run_steering
from valueflow.steer._store import SteerStore

CFG = {
    "name": "t",
    "models": [{"spec": "scripted", "name": "script"}],
    "values": ["benevolence"],
    "levels": [-2, 0, 2],
    "regimes": ["intensity", "pairs"],
    "pairs": {"pairs": [["benevolence", "power"]], "levels": [[2, 2], [-2, 2]]},
    "queries": {"limit": 4},
    "samples": 2,
    "generation": {"max_tokens": 20},
}


def test_run_end_to_end_and_resume(tmp_workspace, scripted, scorer):
    cfg = load_config(CFG)
    s1 = run_steering(cfg, tmp_workspace, backends={"script": scripted}, judge=scorer,
                      progress=False)
    n_cond = 1 + 3 + 2
    assert s1["trials_per_model"] == n_cond * 4 * 2
    assert s1["models"]["script"]["generated"] == n_cond * 4 * 2
    assert len(scripted.requests) == n_cond * 4 * 2
    assert s1["status"] == "done"
    res = load_results(tmp_workspace)
    # default answers are scored on every experiment value; steered ones on their targets
    assert set(res[res["regime"] == "default"]["value"]) == {"schwartz:benevolence",
                                                            "schwartz:power"}
    up = res[(res["regime"] == "intensity") & (res["level"] == 2)]
    down = res[(res["regime"] == "intensity") & (res["level"] == -2)]
    assert (up["intensity"] == 6).all() and (down["intensity"] == -6).all()
    assert set(up["value"]) == {"schwartz:benevolence"}
    pair = res[res["regime"] == "pairs"]
    assert len(pair) == 2 * 4 * 2 * 2  # two conditions × queries × samples × two values
    # the spec is recorded
    runs = tmp_workspace.runs("steer")
    spec = json.loads(runs.iloc[0]["spec"])
    assert spec["values"] == ["schwartz:benevolence", "schwartz:power"]
    assert runs.iloc[0]["status"] == "done"

    # resume: nothing is generated or scored again
    n_req, n_score = len(scripted.requests), len(scorer.calls)
    s2 = run_steering(cfg, tmp_workspace, backends={"script": scripted}, judge=scorer,
                      progress=False)
    assert len(scripted.requests) == n_req and len(scorer.calls) == n_score
    assert s2["run_id"] == s1["run_id"]
    assert s2["models"]["script"]["reused"] == n_cond * 8
    assert s2["scores"]["scored"] == 0 and s2["scores"]["reused"] > 0


def test_samples_differ_in_their_requests(tmp_workspace, scripted, scorer):
    cfg = load_config({**CFG, "regimes": ["intensity"], "queries": {"limit": 1}})
    run_steering(cfg, tmp_workspace, backends={"script": scripted}, judge=scorer,
                 progress=False)
    seen = {r.fingerprint() for r in scripted.requests}
    assert len(seen) == len(scripted.requests)
    assert {r.sample_index for r in scripted.requests} == {0, 1}


def test_refusals_are_flagged_and_failures_retried(tmp_workspace, scorer):
    from valueflow.llm import ScriptedBackend

    state = {"fail": True}

    def answer(req):
        text = req.messages[-1]["content"]
        if "strongly oppose" in " ".join(m["content"] for m in req.messages) and state["fail"]:
            raise RuntimeError("server hiccup")
        if "neutral" in " ".join(m["content"] for m in req.messages):
            return "I'm sorry, but I can't help with that."
        return "A full answer about " + text[:20]

    backend = ScriptedBackend("flaky", fn=answer)
    cfg = load_config({**CFG, "regimes": ["intensity"], "samples": 1})
    s1 = run_steering(cfg, tmp_workspace, backends={"script": backend}, judge=scorer,
                      progress=False)
    assert s1["models"]["script"]["failed"] == 4 and s1["status"] == "partial"
    gens = SteerStore(tmp_workspace).run_generations(s1["run_id"])
    assert gens[gens["condition"].str.contains("=+0", regex=False)]["refusal"].all()
    assert not gens[gens["regime"] == "default"]["refusal"].any()
    state["fail"] = False
    s2 = run_steering(cfg, tmp_workspace, backends={"script": backend}, judge=scorer,
                      progress=False)
    assert s2["models"]["script"]["generated"] == 4 and s2["status"] == "done"


def test_dry_run_calls_nothing(tmp_workspace, scripted, scorer):
    cfg = load_config(CFG)
    s = run_steering(cfg, tmp_workspace, backends={"script": scripted}, judge=scorer,
                     dry_run=True, progress=False)
    assert scripted.requests == [] and scorer.calls == []
    est = s["models"]["script"]["estimate"]
    assert est["calls"] == s["trials_per_model"] and est["prompt_tokens"] > 0
    assert tmp_workspace.runs("steer").empty


def test_cli_runs_unchanged_against_an_openai_compatible_server(tmp_path, monkeypatch, scorer):
    """The example-style config, pointed at a server with --model/--base-url, end to end
    through the CLI: run, analyze --json, report."""
    from valueflow.cli import cli as main
    from valueflow.llm.testing import FakeOpenAIServer
    from valueflow.steer import _runner

    monkeypatch.setattr(_runner, "_build_judge", lambda cfg, ws=None: scorer)
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(tmp_path / "ws.duckdb"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**CFG, "models": ["llamacpp/smollm2"], "samples": 1}))

    def respond(body):
        sys_msg = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
        if "strongly value benevolence" in sys_msg:
            return "CARE and help for family"
        if "strongly oppose benevolence" in sys_msg:
            return "SELFISH gain over family"
        return "a balanced everyday answer"

    runner = CliRunner()
    with FakeOpenAIServer(respond=respond) as server:
        r = runner.invoke(main, ["steer", "run", str(cfg), "--model", "openai/fake",
                                 "--base-url", server.url, "--json"],
                          standalone_mode=False, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert out["models"]["openai/fake"]["generated"] == 6 * 4
        assert len(server.requests) == 24
    r = runner.invoke(main, ["steer", "analyze", "--json", "--n-boot", "200", "--out",
                             str(tmp_path / "tables")], standalone_mode=False,
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    st = {row["value"]: row for row in data["steerability"]}
    assert st["schwartz:benevolence"]["delta_up"] == pytest.approx(6.0)
    assert st["schwartz:benevolence"]["delta_down"] == pytest.approx(-6.0)
    assert st["schwartz:benevolence"]["type"] == "bidirectional"
    assert (tmp_path / "tables" / "shifts.csv").exists()
    report = tmp_path / "r.html"
    r = runner.invoke(main, ["report", "--out", str(report), "--n-boot", "100"],
                      standalone_mode=False, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 3 and "bidirectional" in html
    assert np.isfinite(st["schwartz:benevolence"]["delta_up_low"])


def test_init_writes_a_loadable_config_and_refuses_to_overwrite(tmp_path):
    from valueflow.cli import cli
    from valueflow.errors import ConfigError

    p = tmp_path / "steer.yaml"
    r = CliRunner().invoke(cli, ["steer", "init", str(p)], standalone_mode=False,
                           catch_exceptions=False)
    assert r.exit_code == 0 and load_config(p).name == "small"
    with pytest.raises(ConfigError, match="exists"):
        CliRunner().invoke(cli, ["steer", "init", str(p)], standalone_mode=False,
                           catch_exceptions=False)


def test_models_generate_at_the_same_time(tmp_workspace, scorer):
    """Two models on two servers: both servers have requests in flight together, so a run
    over a fleet of model servers keeps every one of them busy."""
    import threading

    from valueflow.llm.testing import FakeOpenAIServer

    active = {"a": 0, "b": 0}
    overlap = {"seen": False}
    lock = threading.Lock()

    def responder(name):
        def respond(body):
            import time

            with lock:
                active[name] += 1
                overlap["seen"] |= active["a"] > 0 and active["b"] > 0
            time.sleep(0.02)
            with lock:
                active[name] -= 1
            return f"answer from {name}"
        return respond

    with FakeOpenAIServer(respond=responder("a")) as a, \
            FakeOpenAIServer(respond=responder("b")) as b:
        cfg = load_config({**CFG, "models": [
            {"spec": "openai/m1", "name": "one", "base_url": a.url},
            {"spec": "openai/m2", "name": "two", "base_url": b.url}],
            "generation": {"max_tokens": 20, "max_concurrency": 4}})
        out = run_steering(cfg, tmp_workspace, judge=scorer, progress=False)
    n = out["trials_per_model"]
    assert out["models"]["one"]["generated"] == n and out["models"]["two"]["generated"] == n
    assert a.completed == n and b.completed == n
    assert overlap["seen"]
