"""A server that cannot be reached stops a run within seconds; options and URLs are checked."""

from __future__ import annotations

import socket
import threading

import pytest

from valueflow.errors import BackendError, ConfigError
from valueflow.llm import ChatRequest, LLMClient, RetryPolicy, get_backend, run_sync
from valueflow.llm.testing import FakeOpenAIServer

# Retries that would go on for minutes: only the unreachable-server rule can end them early.
PATIENT = RetryPolicy(max_retries=1000, base_delay=0.05, max_delay=0.2)


def _closed_port_url() -> str:
    """A local URL nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_unreachable_server_stops_the_run_with_the_reason(caplog):
    backend = get_backend("openai/m", base_url=_closed_port_url(), retry=PATIENT,
                          unreachable_s=0.5, max_concurrency=4)
    client = LLMClient(backend)
    with pytest.raises(BackendError, match=r"cannot be reached .*connection failed") as info:
        run_sync(client.generate([ChatRequest.from_prompt(f"q{i}") for i in range(20)],
                                 progress=False))
    assert "is the server running" in (info.value.hint or "")
    # The user is told at the first failure, not only when the run gives up.
    warned = [r.getMessage() for r in caplog.records if r.name == "valueflow.llm"]
    assert len(warned) == 1 and "cannot reach" in warned[0] and "0.5s" in warned[0]
    client.close()


def test_server_that_dies_mid_run_stops_the_run_and_keeps_what_was_done(tmp_workspace):
    server = FakeOpenAIServer(latency=0.01).start()
    backend = get_backend("openai/m", base_url=server.url, retry=PATIENT, unreachable_s=0.5,
                          max_concurrency=2)
    client = LLMClient(backend, tmp_workspace)
    stopper = threading.Thread(target=lambda: (_wait_for(server, 10), server.stop()))
    stopper.start()
    try:
        with pytest.raises(BackendError, match="cannot be reached"):
            run_sync(client.generate([ChatRequest.from_prompt(f"q{i}") for i in range(400)],
                                     progress=False))
    finally:
        stopper.join()
        client.close()
    done = tmp_workspace.execute("SELECT count(*) FROM llm_cache").fetchall()[0][0]
    assert 10 <= done < 400  # answers before the server died are kept for the rerun


def _wait_for(server: FakeOpenAIServer, n: int) -> None:
    import time

    while server.completed < n:
        time.sleep(0.005)


def test_a_success_resets_the_unreachable_clock():
    """Busy servers (429, 5xx) are up: they never count as unreachable."""
    with FakeOpenAIServer(rates={"503": 0.5}, seed=3) as server:
        backend = get_backend("openai/m", base_url=server.url, unreachable_s=0.01,
                              retry=RetryPolicy(max_retries=20, base_delay=0.001,
                                                max_delay=0.005))
        out = run_sync(backend.generate([ChatRequest.from_prompt(f"q{i}") for i in range(20)]))
    assert all(r.ok for r in out)


def test_ping_says_whether_a_server_answers():
    with FakeOpenAIServer() as server:
        run_sync(get_backend("openai/m", base_url=server.url).ping())
        assert len(server.requests) == 1 and server.requests[0].body["max_tokens"] == 1
    with pytest.raises(BackendError, match="cannot be reached"):
        run_sync(get_backend("openai/m", base_url=_closed_port_url()).ping())
    with FakeOpenAIServer(api_key="right") as server, \
            pytest.raises(BackendError, match=r"refused the credentials \(HTTP 401\)"):
        run_sync(get_backend("openai/m", base_url=server.url).ping())
    # A fleet is up when one of its servers answers.
    with FakeOpenAIServer() as server:
        run_sync(get_backend("openai/m", base_url=[_closed_port_url(), server.url]).ping())


def test_an_option_a_backend_does_not_take_is_one_line():
    with pytest.raises(ConfigError, match="does not take the option 'base_urls'") as info:
        get_backend("openai/m", base_urls="http://x/v1")
    assert "did you mean 'base_url'" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="does not take the option 'colour'"):
        get_backend("scripted", outputs=["a"], colour="red")


@pytest.mark.parametrize("bad", [0, -1])
def test_zero_concurrency_is_an_error_not_the_default(bad):
    with pytest.raises(ConfigError, match="max_concurrency must be at least 1"):
        get_backend("openai/m", base_url="http://127.0.0.1:1/v1", max_concurrency=bad)
    with pytest.raises(ConfigError, match="max_concurrency must be at least 1"):
        LLMClient(get_backend("scripted", outputs=["a"]), max_concurrency=bad)


def test_credentials_in_base_urls_never_show():
    from valueflow._redact import redact_credentials, redact_url

    url = "http://user:s3cret@127.0.0.1:9/v1?api_key=k3y"
    backend = get_backend("openai/m", base_url=url)
    shown = " ".join([repr(backend), *backend.endpoints, str(backend.cache_identity())])
    assert "s3cret" not in shown and "k3y" not in shown
    assert redact_url(url) == "http://127.0.0.1:9/v1"
    spec = {"a": [f"see {url} now", "http://plain.host/v1"], "b": (url, 3)}
    clean = redact_credentials(spec)
    assert "s3cret" not in str(clean) and "k3y" not in str(clean)
    assert clean["b"] == ("http://127.0.0.1:9/v1", 3)
    assert clean["a"][1] == "http://plain.host/v1"  # nothing secret: left exactly as written
    with pytest.raises(ConfigError) as info:
        get_backend("openai/m", base_url="ftp://user:s3cret@host/v1")
    assert "s3cret" not in str(info.value)
    # A run that cannot reach it says so without the password.
    b = get_backend("openai/m", base_url=url.replace("127.0.0.1:9", "127.0.0.1:1"),
                    retry=PATIENT, unreachable_s=0.2)
    with pytest.raises(BackendError) as info:
        run_sync(b.generate([ChatRequest.from_prompt("x")]))
    assert "s3cret" not in str(info.value) and "k3y" not in str(info.value)


def test_answers_the_caller_rejects_are_not_cached(tmp_workspace):
    backend = get_backend("scripted", fn=lambda r: "garbage" if "bad" in
                          r.messages[-1]["content"] else "fine")
    client = LLMClient(backend, tmp_workspace)
    reqs = [ChatRequest.from_prompt("bad one"), ChatRequest.from_prompt("good one")]
    out = run_sync(client.generate(reqs, progress=False,
                                   accept=lambda i, res: res.text != "garbage"))
    assert [r.text for r in out] == ["garbage", "fine"]
    assert client.estimate(reqs).calls == 1  # the rejected answer will be asked again
    client.close()
