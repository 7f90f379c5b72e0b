"""``steer run`` killed mid-run (SIGKILL) or stopped (SIGTERM) and run again: no answer is
paid for twice, none is lost, and the summary counts reused answers correctly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from valueflow.llm.testing import FakeOpenAIServer
from valueflow.workspace import Workspace

N_QUERIES = 40
N_ANSWERS = 3 * N_QUERIES  # default + two levels, one sample


def _respond(body) -> str:
    user = body["messages"][-1]["content"]
    if "<texts>" in user:  # a judge window: rank the texts in the order shown
        k = len(re.findall(r"^\[\d+\] ", user, flags=re.MULTILINE))
        return "[" + ", ".join(str(i + 1) for i in range(k)) + "]"
    return "An answer to: " + " | ".join(m["content"][:60] for m in body["messages"])


def _is_generation(record) -> bool:
    return "<texts>" not in record.prompt and record.body.get("max_tokens") != 1


def _config(tmp_path, url: str):
    queries = tmp_path / "queries.csv"
    queries.write_text("query\n" + "\n".join(f"Question number {i}?" for i in range(N_QUERIES))
                       + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "kill", "values": ["benevolence"], "levels": [-2, 2], "regimes": ["intensity"],
        "queries": {"sets": ["queries.csv"]},
        "models": [{"spec": "openai/gen", "base_url": url}],
        "generation": {"max_tokens": 20, "max_concurrency": 4},
        "judge": {"spec": "openai/judge", "options": {"base_url": url},
                  "k": 3, "m": 1, "design": "random", "vidb": "seed"}}))
    return cfg


def _start(tmp_path, cfg) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from valueflow.cli import main; main()", "steer", "run",
           str(cfg), "--json"]
    env = {**os.environ, "VALUEFLOW_WORKSPACE": str(tmp_path / "ws.duckdb")}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _paid_for(tmp_path) -> set[str]:
    """The generation prompts whose answers the workspace holds."""
    with Workspace(tmp_path / "ws.duckdb") as ws:
        rows = ws.execute("SELECT request FROM llm_cache WHERE model = 'gen'").fetchall()
    return {json.dumps(json.loads(r[0])["messages"], sort_keys=True) for r in rows}


def _interrupt_mid_generation(tmp_path, server, cfg, sig) -> subprocess.Popen[bytes]:
    proc = _start(tmp_path, cfg)
    deadline = time.monotonic() + 120
    while sum(_is_generation(r) for r in list(server.requests)) < N_ANSWERS // 4:
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.005)
    proc.send_signal(sig)
    proc.wait(60)
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_stopped_steer_run_resumes_and_counts_reuse(tmp_path, sig):
    with FakeOpenAIServer(respond=_respond, latency=0.03) as server:
        cfg = _config(tmp_path, server.url)
        proc = _interrupt_mid_generation(tmp_path, server, cfg, sig)
        err = proc.stderr.read().decode()  # type: ignore[union-attr]
        if sig == signal.SIGTERM:
            assert proc.returncode == 143, err
            assert "Terminated (SIGTERM)" in err and "run the same command again" in err
            assert "Traceback" not in err
            with Workspace(tmp_path / "ws.duckdb") as ws:
                assert list(ws.runs("steer")["status"]) == ["interrupted"]
        else:
            assert proc.returncode == -signal.SIGKILL
        paid = _paid_for(tmp_path)
        paid_before = len(paid)
        assert 0 < paid_before < N_ANSWERS, "the stop should land mid-generation"
        n_before = len(server.requests)
        gen_before = sum(_is_generation(r) for r in server.requests)

        proc = _start(tmp_path, cfg)
        out, err2 = proc.communicate(timeout=180)
        assert proc.returncode == 0, err2.decode()
        summary = json.loads(out)
        gen_after = sum(_is_generation(r) for r in server.requests) - gen_before

    model = summary["models"]["openai/gen"]
    assert summary["status"] == "done" and model["failed"] == 0
    # Every answer that was paid for before the stop is reused, never generated again.
    assert model["generated"] == gen_after
    assert model["reused"] == N_ANSWERS - gen_after >= paid_before
    assert model["generated"] + model["reused"] == N_ANSWERS
    assert summary["scores"]["scored"] + summary["scores"]["reused"] == N_ANSWERS
    again = [json.dumps(r.body["messages"], sort_keys=True) for r in server.requests[n_before:]
             if _is_generation(r)]
    asked = {json.dumps(r.body["messages"], sort_keys=True) for r in server.requests[:n_before]
             if _is_generation(r)}
    assert paid <= asked  # (the two spell prompts alike)
    assert not paid & set(again)  # nothing paid for before the stop is asked again
    assert len(again) == len(set(again)) == N_ANSWERS - paid_before
    with Workspace(tmp_path / "ws.duckdb") as ws:
        assert list(ws.runs("steer")["status"]) == ["done"]
        assert ws.execute("SELECT count(*) FROM steer_generations").fetchall()[0][0] \
            == N_ANSWERS
