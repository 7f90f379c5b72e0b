"""A run killed at any moment and started again repeats no completed call and loses none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from valueflow.llm.testing import FakeOpenAIServer
from valueflow.workspace import Workspace

N = 240
CONCURRENCY = 4


def _cli(tmp_path, url):
    cmd = [sys.executable, "-c", "from valueflow.cli import main; main()", "generate",
           str(tmp_path / "prompts.txt"), "--model", "openai/fake", "--base-url", url,
           "--concurrency", str(CONCURRENCY), "--max-retries", "0", "--quiet",
           "--out", str(tmp_path / "out.jsonl")]
    env = {**os.environ, "VALUEFLOW_WORKSPACE": str(tmp_path / "ws.duckdb")}
    # a terminal's foreground job gets Ctrl-C with the default disposition; a test process
    # may have SIGINT ignored (inherited through exec), which would make the child deaf to it
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _committed(tmp_path) -> list[str]:
    with Workspace(tmp_path / "ws.duckdb") as ws:
        rows = ws.execute("SELECT request FROM llm_cache").fetchall()
    return [json.loads(r[0])["messages"][-1]["content"] for r in rows]


def _interrupt_mid_run(tmp_path, server, sig) -> int:
    proc = _cli(tmp_path, server.url)
    deadline = time.monotonic() + 120
    while server.completed < N // 4:
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.005)
    assert server.completed < N, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(60)
    return proc.returncode


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_killed_run_resumes_without_repeating_or_losing_calls(tmp_path, sig):
    prompts = [f"prompt number {i}" for i in range(N)]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n")
    # 0.1 s per call: after the first quarter the run has ~4.5 s left, so a parent slowed by
    # a loaded machine still signals it mid-run (at 0.03 s the child sometimes finished first)
    with FakeOpenAIServer(latency=0.1) as server:
        rc = _interrupt_mid_run(tmp_path, server, sig)
        assert rc == (-signal.SIGKILL if sig == signal.SIGKILL else 130), (
            f"exit {rc}; SIGINT in the test process: {signal.getsignal(signal.SIGINT)}")
        before = _committed(tmp_path)
        received_before = dict(server.counts)
        completed_before = server.completed
        assert 0 < len(before) < N, "the kill should land mid-run"
        assert len(set(before)) == len(before)
        if sig == signal.SIGINT:
            # Ctrl-C commits every result that had arrived; only calls cut off in flight
            # are lost.
            assert len(before) >= completed_before - CONCURRENCY

        proc = _cli(tmp_path, server.url)
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

        after = _committed(tmp_path)
        assert sorted(after) == sorted(prompts)  # exactly one committed result per prompt
        for p in before:  # nothing completed before the kill was asked for again
            assert server.counts[p] == received_before[p] == 1
        repeated = [p for p in prompts if server.counts[p] > 1]
        assert all(server.counts[p] == 2 for p in repeated)
        assert all(p not in before for p in repeated)
        lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert [x["text"] for x in lines] == [f"echo: {p}" for p in prompts]
        assert sum(x["cached"] for x in lines) == len(before)
