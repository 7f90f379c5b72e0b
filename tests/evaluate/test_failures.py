"""Nothing reported as done that is not: ``valueflow score`` with a judge that fails.

Exit status 3 means some rows have no intensity (partial), 4 that none has or that the run
stopped (failed); the run record says so, failures are not stored, and a rerun asks again.
"""

from __future__ import annotations

import re
import socket

import pandas as pd
import pytest

from tests.conftest import run_main
from valueflow.errors import ConfigError, UnknownNameError
from valueflow.llm._openai import OpenAIBackend
from valueflow.llm.testing import FakeOpenAIServer


def _ranking(body) -> str:
    user = body["messages"][-1]["content"]
    k = len(re.findall(r"^\[\d+\] ", user, flags=re.MULTILINE))
    return "[" + ", ".join(str(i + 1) for i in range(k)) + "]"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def setup(tmp_path, synthetic, tmp_workspace, monkeypatch):
    # A server that is down is given up on after a fraction of a second (default 20 s).
    monkeypatch.setitem(OpenAIBackend.__init__.__kwdefaults__, "unreachable_s", 0.3)
    anchors = tmp_path / "anchors.csv"
    synthetic["anchors"].to_csv(anchors, index=False)
    inp = tmp_path / "in.csv"
    pd.DataFrame({"text": synthetic["texts"][:8]}).to_csv(inp, index=False)
    out = tmp_path / "scores.csv"

    def args(url: str, *extra: str) -> list[str]:
        return ["score", str(inp), "--value", "benevolence", "--judge", "openai/judge",
                "--base-url", url, "--vidb", str(anchors), "--k", "3", "--m", "1",
                "--design", "random", "--no-progress", "--out", str(out), *extra]

    return {"args": args, "out": out, "ws": tmp_workspace}


def _runs(ws) -> list[str]:
    return list(ws.runs("score").sort_values("created_at")["status"])


def test_unreachable_judge_fails_fast_writes_nothing_and_a_rerun_asks_again(setup, capsys):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    assert run_main(*setup["args"](url)) == 4
    err = capsys.readouterr().err
    assert "cannot be reached" in err and "connection failed" in err
    assert [ln for ln in err.splitlines() if ln.startswith("Error:")] == [
        next(ln for ln in err.splitlines() if "cannot be reached" in ln)]  # one line
    assert "Traceback" not in err
    assert not setup["out"].exists()
    assert _runs(setup["ws"]) == ["failed"]
    with FakeOpenAIServer(respond=_ranking, port=port) as server:
        assert run_main(*setup["args"](url)) == 0
        assert len(server.requests) == 8  # the judge was asked, nothing came from a cache
    assert pd.read_csv(setup["out"])["intensity"].notna().all()
    assert _runs(setup["ws"]) == ["failed", "done"]


def test_a_judge_that_answers_only_garbage_is_a_failed_run(setup, capsys):
    with FakeOpenAIServer(respond=lambda body: "I am not sure.") as server:
        assert run_main(*setup["args"](server.url)) == 4
    err = capsys.readouterr().err
    assert "no text got an intensity" in err and "unreadable ranking" in err
    assert not setup["out"].exists()
    assert _runs(setup["ws"]) == ["failed"]
    from valueflow.evaluate import load_scores

    assert load_scores(setup["ws"]).empty


def test_some_rows_without_intensity_is_partial_and_they_are_not_stored(setup, capsys):
    def respond(body):
        return "no idea" if "response number 3" in body["messages"][-1]["content"] \
            else _ranking(body)

    with FakeOpenAIServer(respond=respond) as server:
        assert run_main(*setup["args"](server.url)) == 3
        err = capsys.readouterr().err
        assert "1 of 8 rows have no intensity" in err and "partial" in err
        df = pd.read_csv(setup["out"])  # the usable rows are written
        assert df["intensity"].isna().sum() == 1
        assert _runs(setup["ws"]) == ["partial"]
        from valueflow.evaluate import load_scores

        stored = load_scores(setup["ws"])
        assert len(stored) == 7 and "response number 3" not in set(stored["text"])
        # The unreadable answers were not cached: a rerun asks the judge about them again.
        before = server.counts.copy()
        setup["out"].unlink()
        assert run_main(*setup["args"](server.url)) == 3
        asked_again = [p for p in server.counts if server.counts[p] > before[p]
                       and "<texts>" in p]
        assert len(asked_again) == 1 and "response number 3" in asked_again[0]
        assert sum(server.counts.values()) - sum(before.values()) == 2  # and its re-ask


def test_zero_concurrency_is_refused(setup, capsys):
    assert run_main(*setup["args"]("http://127.0.0.1:1/v1", "--max-concurrency", "0")) == 2
    assert "--max-concurrency" in capsys.readouterr().err


def _no_model(*_a, **_k):
    raise AssertionError("a model was loaded before the options were checked")


def test_rating_with_the_local_judge_is_refused_before_loading(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from valueflow.cli import cli

    # make_judge("local") resolves the loader by name from valueflow.embed at call time
    monkeypatch.setattr("valueflow.embed.load_local_scorer", _no_model)
    inp = tmp_path / "in.csv"
    inp.write_text("text\nI help my friend move.\n")
    with pytest.raises(ConfigError, match="cannot rate texts"):
        CliRunner().invoke(cli, ["score", str(inp), "--value", "benevolence", "--method",
                                 "rating"], catch_exceptions=False)
    with pytest.raises(UnknownNameError, match="no texts for mft:fairness") as info:
        CliRunner().invoke(cli, ["score", str(inp), "--value", "fairness"],
                           catch_exceptions=False)
    assert "mft:fairness_cheating" in (info.value.hint or "")


def test_a_very_long_text_is_cut_with_a_warning(setup, tmp_path, capsys):
    long_in = tmp_path / "long.csv"
    pd.DataFrame({"text": ["a " * 5000, "A short text."]}).to_csv(long_in, index=False)
    args = setup["args"]("http://unused:1/v1")
    args[1] = str(long_in)
    with FakeOpenAIServer(respond=_ranking) as server:
        args[args.index("--base-url") + 1] = server.url
        assert run_main(*args) == 0
        longest = max(len(r.body["messages"][-1]["content"]) for r in server.requests)
    assert "1 text(s) longer than 4000 characters are cut" in capsys.readouterr().err
    assert longest < 8000


def test_a_study_with_a_judge_that_fails_says_so(tmp_workspace, tmp_path, capsys):
    """study judges: missing scores exit 3 (files written, metrics without them); a judge
    that answers nothing usable exits 4 and writes nothing."""
    from valueflow.vidb import load_seed

    data = load_seed(["benevolence"]).head(6)[["text", "value", "intensity"]]
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    victim = data["text"].iloc[0]

    def respond(body):
        user = body["messages"][-1]["content"]
        if victim[:40] in user:
            return "no idea"
        return _ranking(body) if "<texts>" in user else "3"

    def study(url: str, out: str) -> int:
        return run_main("study", "judges", "--data", str(path), "--judge", "openai/j",
                    "--base-url", url, "--paraphrases", "1", "--k", "3", "--m", "1",
                    "--design", "random", "--vidb", "seed", "--no-progress", "--out",
                    str(tmp_path / out))

    with FakeOpenAIServer(respond=respond) as server:
        assert study(server.url, "partial") == 3
        assert "judge scores are missing" in capsys.readouterr().err
        assert (tmp_path / "partial" / "metrics.csv").exists()
    with FakeOpenAIServer(respond=lambda body: "no idea") as server:
        assert study(server.url, "failed") == 4
        assert "no judge gave a usable score" in capsys.readouterr().err
        assert not (tmp_path / "failed" / "scores.csv").exists()


def test_llm_options_with_a_local_or_simulated_judge_are_refused(tmp_path):
    from click.testing import CliRunner

    from valueflow.cli import cli

    inp = tmp_path / "in.csv"
    inp.write_text("text\nI help my friend move.\n")
    for extra in (["--base-url", "http://x/v1"], ["--max-concurrency", "4"],
                  ["--paraphrase", "2"], ["--judge", "sim", "--no-cache"]):
        with pytest.raises(ConfigError, match="applies to LLM judges"):
            CliRunner().invoke(cli, ["score", str(inp), "--value", "benevolence", *extra],
                               catch_exceptions=False)


def test_an_interrupted_score_run_is_recorded_as_interrupted(tmp_workspace, synthetic):
    from valueflow.evaluate import score_texts

    class Interrupted:
        name = "ctrl-c"

        async def rank(self, value, texts):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_texts(synthetic["texts"][:2], "benevolence", Interrupted(),
                    synthetic["anchors"], k=3, m=1, design="random", workspace=tmp_workspace,
                    progress=False)
    assert list(tmp_workspace.runs("score")["status"]) == ["interrupted"]
