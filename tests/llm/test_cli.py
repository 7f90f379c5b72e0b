"""``valueflow generate`` and ``valueflow cache`` against the fake OpenAI server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from valueflow.cli import cli, main
from valueflow.errors import ConfigError, DataError


def run(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_generate_from_csv_with_samples_and_system_column(tmp_workspace, server, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,prompt,system\na,first question,SYS1\nb,second question,\n")
    out = tmp_path / "out.jsonl"
    run("generate", str(src), "-m", "openai/fake", "--base-url", server.url, "--samples", "2",
        "--temperature", "0.7", "--system", "DEFAULT", "--out", str(out), "--quiet")
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["id"], r["sample"]) for r in rows] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert rows[0]["text"] == "echo: first question" and rows[0]["error"] is None
    systems = [r.body["messages"][0]["content"] for r in server.requests]
    assert sorted(systems) == ["DEFAULT", "DEFAULT", "SYS1", "SYS1"]
    assert len(server.requests) == 4  # two samples of each prompt are distinct calls


def test_dry_run_counts_calls_and_calls_nothing(tmp_workspace, server):
    run("generate", "--prompt", "cached one", "--max-tokens", "20", "-m", "openai/fake",
        "--base-url", server.url)
    server.reset()
    out = run("generate", "--prompt", "cached one", "--prompt", "new " * 40, "--samples", "3",
              "--max-tokens", "20", "-m", "openai/fake", "--base-url", server.url,
              "--dry-run", "--json")
    est = json.loads(out)
    assert (est["requests"], est["cached"], est["calls"]) == (6, 1, 5)
    assert est["max_completion_tokens"] == 100
    assert est["prompt_tokens"] > 0
    assert server.requests == []


def test_cache_stats_and_clear(tmp_workspace, server):
    run("generate", "--prompt", "one", "--prompt", "two", "-m", "openai/fake", "--base-url",
        server.url, "--quiet", "--out", str(tmp_workspace.path) + ".jsonl")
    [row] = json.loads(run("cache", "stats", "--json"))
    assert (row["backend"], row["model"], row["entries"], row["calls"]) == (
        "openai", "fake", 2, 2)
    assert "openai" in run("cache", "stats")
    assert json.loads(run("cache", "clear", "--model", "other", "--yes", "--json"))[
        "deleted"] == 0
    assert json.loads(run("cache", "clear", "--yes", "--json"))["deleted"] == 2
    assert json.loads(run("cache", "stats", "--json"))[0]["entries"] == 0


def test_single_prompt_prints_the_text(tmp_workspace, server):
    out = run("generate", "--prompt", "hi", "-m", "openai/fake", "--base-url", server.url,
              "--quiet")
    assert out.strip() == "echo: hi"


def test_user_errors_are_one_line(tmp_workspace, tmp_path, capsys):
    bad = tmp_path / "in.csv"
    bad.write_text("text\nhello\n")
    with pytest.raises(SystemExit) as info:
        main(["generate", str(bad), "-m", "openai/fake", "--base-url", "http://127.0.0.1:9/v1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "has no 'prompt' column (columns: text)" in err and "--column" in err
    with pytest.raises(ConfigError, match="either as INPUT_FILE or with --prompt"):
        CliRunner().invoke(cli, ["generate"], catch_exceptions=False)
    with pytest.raises(ConfigError, match="applies to openai/ models"):
        CliRunner().invoke(cli, ["generate", "--prompt", "x", "--base-url", "http://a/v1"],
                           catch_exceptions=False)
    empty = tmp_path / "e.jsonl"
    empty.write_text('{"prompt": ""}\n')
    with pytest.raises(DataError, match="empty or non-text prompt"):
        CliRunner().invoke(cli, ["generate", str(empty)], catch_exceptions=False)


def test_failed_requests_exit_nonzero_and_all_failed_is_an_error(tmp_workspace, server):
    from valueflow.errors import BackendError
    from valueflow.llm.testing import Fault

    server.add_fault(Fault("status", status=400, times=10, match="bad"))
    res = CliRunner().invoke(cli, ["generate", "--prompt", "good", "--prompt", "bad", "-m",
                                   "openai/fake", "--base-url", server.url, "--quiet"])
    assert res.exit_code == 1
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [x["error"] is None for x in lines] == [True, False]
    with pytest.raises(BackendError, match="all 1 requests failed"):
        CliRunner().invoke(cli, ["generate", "--prompt", "bad", "-m", "openai/fake",
                                 "--base-url", server.url, "--quiet"], catch_exceptions=False)
