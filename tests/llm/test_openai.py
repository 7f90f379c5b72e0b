"""The openai/ backend against a real local HTTP server speaking the chat-completions API."""

from __future__ import annotations

import pytest

from valueflow.errors import BackendError
from valueflow.llm import ChatRequest, LLMClient, RetryPolicy, run_sync
from valueflow.llm.testing import FakeOpenAIServer, Fault

FAST_RETRY = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05)

TRANSPORTS = ["aiohttp", "httpx"]


def _gen(backend, requests):
    return run_sync(backend.generate(requests))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_round_trip_sends_the_request_and_parses_the_answer(server, make_backend, transport):
    b = make_backend(transport=transport)
    req = ChatRequest.from_prompt("hello there", system="be kind", max_tokens=7,
                                  temperature=0.5, top_p=0.9, seed=11, stop=["END"])
    [res] = _gen(b, [req])
    assert res.ok and res.text == "echo: hello there"
    assert res.usage.prompt_tokens == 4 and res.usage.completion_tokens == 3
    assert res.finish_reason == "stop" and res.attempts == 1
    body = server.requests[0].body
    assert body["model"] == "fake-model"
    assert body["messages"] == [{"role": "system", "content": "be kind"},
                                {"role": "user", "content": "hello there"}]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"],
            body["stop"]) == (7, 0.5, 0.9, 11, ["END"])
    assert "logprobs" not in body and "response_format" not in body


def test_structured_output_and_logprobs_are_requested_and_parsed(server, make_backend):
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}}
    b = make_backend()
    [res] = _gen(b, [ChatRequest.from_prompt("rank", json_schema=schema, logprobs=True,
                                             top_logprobs=3)])
    body = server.requests[0].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["logprobs"] is True and body["top_logprobs"] == 3
    assert res.json() == {"echo": "rank"}
    assert " ".join(t["token"] for t in res.logprobs) == res.text
    assert [t["logprob"] for t in res.logprobs] == pytest.approx([-0.1, -0.2])
    assert all(len(t["top"]) == 3 for t in res.logprobs)

    server.reset()
    b2 = make_backend(structured_output="guided_json", max_tokens_field="max_completion_tokens")
    _gen(b2, [ChatRequest.from_prompt("rank", json_schema=schema)])
    body = server.requests[0].body
    assert body["guided_json"] == schema and "response_format" not in body
    assert body["max_completion_tokens"] == 256 and "max_tokens" not in body


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", [
    Fault("status", status=429, retry_after=0.01, times=2),
    Fault("status", status=500, times=2),
    Fault("status", status=503, times=1),
    Fault("drop", times=2),
    Fault("slow", delay=2.0, times=1),
])
def test_transient_faults_are_retried(server, make_backend, transport, fault):
    server.add_fault(fault)
    b = make_backend(transport=transport, timeout=0.5)
    [res] = _gen(b, [ChatRequest.from_prompt("p")])
    assert res.ok, res.error
    assert res.text == "echo: p"
    assert res.attempts == fault.times + 1
    assert server.counts["p"] == fault.times + 1


def test_giving_up_returns_an_error_and_keeps_other_results(server, make_backend, tmp_workspace):
    server.add_fault(Fault("status", status=500, times=100, match="bad"))
    b = make_backend()
    client = LLMClient(b, tmp_workspace)
    reqs = [ChatRequest.from_prompt(p) for p in ("good 1", "bad", "good 2")]
    out = run_sync(client.generate(reqs))
    assert [r.ok for r in out] == [True, False, True]
    assert "gave up after 5 tries" in out[1].error and "HTTP 500" in out[1].error
    assert server.counts["bad"] == FAST_RETRY.max_retries + 1
    stats = client.stats()["openai/fake-model"]
    assert stats["failures"] == 1 and stats["retries"] == 4
    # The failure was not cached: a rerun retries only it.
    server.reset()
    out = run_sync(client.generate(reqs))
    assert [r.cached for r in out] == [True, False, True] and all(r.ok for r in out)
    assert dict(server.counts) == {"bad": 1}
    client.close()


def test_bad_request_is_not_retried(server, make_backend):
    server.add_fault(Fault("status", status=400, times=5))
    [res] = _gen(make_backend(), [ChatRequest.from_prompt("too long")])
    assert not res.ok and "HTTP 400" in res.error
    assert server.counts["too long"] == 1


def test_server_without_system_role_gets_it_merged(server, make_backend):
    server.add_fault(Fault("status", status=400, times=1,
                           message="Conversation roles must alternate; system role not supported"))
    b = make_backend()
    [res] = _gen(b, [ChatRequest.from_prompt("q", system="RULES")])
    assert res.ok, res.error
    assert server.requests[-1].body["messages"] == [{"role": "user", "content": "RULES\n\nq"}]
    assert b.merge_system is True


def test_api_key_is_sent_but_never_stored_or_shown(server, make_backend, tmp_workspace,
                                                    monkeypatch):
    key = "sk-test-0123456789abcdef"
    monkeypatch.setenv("MY_KEY", key)
    server.api_key = key
    b = make_backend(api_key_env="MY_KEY")
    client = LLMClient(b, tmp_workspace)
    out = run_sync(client.generate([ChatRequest.from_prompt("secret-free")]))
    assert out[0].ok
    assert server.requests[0].headers["authorization"] == f"Bearer {key}"
    # An error text that echoes the key is masked.
    server.add_fault(Fault("status", status=400, times=1, message=f"bad key {key}"))
    out = run_sync(client.generate([ChatRequest.from_prompt("other")]))
    assert not out[0].ok and key not in out[0].error and "***" in out[0].error
    client.close()
    # Nothing in the workspace holds the key.
    for table in ("llm_cache", "llm_usage", "runs"):
        dump = repr(tmp_workspace.execute(f"SELECT * FROM {table}").fetchall())
        assert key not in dump


def test_wrong_key_stops_the_run_with_a_clear_error(server, make_backend, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-wrong-key-999")
    server.api_key = "sk-right"
    b = make_backend(api_key_env="MY_KEY")
    with pytest.raises(BackendError, match=r"refused the credentials \(HTTP 401\)") as info:
        run_sync(LLMClient(b).generate([ChatRequest.from_prompt(str(i)) for i in range(5)]))
    assert "sk-wrong-key-999" not in str(info.value)
    assert "$MY_KEY" in info.value.hint


def test_unknown_model_is_a_clear_error(server, make_backend):
    server.model = "served-model"
    with pytest.raises(BackendError, match="model 'other' not found"):
        _gen(make_backend("other"), [ChatRequest.from_prompt("x")])


def test_concurrency_is_bounded_and_saturated(make_backend, server):
    server.latency = 0.05
    b = make_backend(max_concurrency=6)
    out = _gen(b, [ChatRequest.from_prompt(f"q{i}") for i in range(40)])
    assert all(r.ok for r in out)
    assert server.max_in_flight == 6


def test_client_concurrency_limits_in_flight_requests(make_backend, server):
    server.latency = 0.05
    client = LLMClient(make_backend(max_concurrency=16), max_concurrency=3)
    run_sync(client.generate([ChatRequest.from_prompt(f"q{i}") for i in range(20)]))
    assert server.max_in_flight == 3
    client.close()


def test_a_fleet_shares_the_load_and_survives_a_dead_server():
    with FakeOpenAIServer(latency=0.02) as a, FakeOpenAIServer(latency=0.02) as b:
        from valueflow.llm import get_backend

        backend = get_backend("openai/m", base_url=[a.url, b.url], max_concurrency=8,
                              retry=FAST_RETRY, timeout=2)
        out = _gen(backend, [ChatRequest.from_prompt(f"q{i}") for i in range(40)])
        assert all(r.ok for r in out)
        assert sum(a.counts.values()) >= 10 and sum(b.counts.values()) >= 10
        a.stop()
        served_by_a = sum(a.counts.values())
        out = _gen(backend, [ChatRequest.from_prompt(f"r{i}") for i in range(30)])
        assert all(r.ok for r in out), [r.error for r in out if not r.ok]
        assert sum(a.counts.values()) == served_by_a
        assert all(b.counts[f"r{i}"] == 1 for i in range(30))
        stats = {s["endpoint"]: s for s in backend.endpoint_stats()}
        assert stats[a.url]["resting"] is True


def test_cache_key_ignores_timeouts_and_concurrency_but_not_the_endpoint(server, make_backend,
                                                                         tmp_workspace):
    req = [ChatRequest.from_prompt("same")]
    c1 = LLMClient(make_backend(timeout=3, max_concurrency=2), tmp_workspace)
    run_sync(c1.generate(req))
    c2 = LLMClient(make_backend(timeout=9, max_concurrency=50, retry=RetryPolicy(1)),
                   tmp_workspace)
    assert run_sync(c2.generate(req))[0].cached
    other = LLMClient(make_backend(base_url="http://127.0.0.1:9/v1"), tmp_workspace)
    assert other.estimate(req).calls == 1  # another server may host other weights
    # A named server group keeps its hits when the fleet's URLs change.
    n1 = LLMClient(make_backend(cache_namespace="fleet"), tmp_workspace)
    run_sync(n1.generate(req))
    n2 = LLMClient(make_backend(cache_namespace="fleet", base_url=[server.url, "http://x:1/v1"]),
                   tmp_workspace)
    assert n2.estimate(req).calls == 0
    for c in (c1, c2, other, n1, n2):
        c.close()


def test_server_that_is_down_stops_the_run(make_backend, server):
    server.add_fault(Fault("status", status=503, times=10_000))
    client = LLMClient(make_backend(retry=RetryPolicy(max_retries=0), max_concurrency=2),
                       max_consecutive_failures=5)
    with pytest.raises(BackendError, match=r"requests in a row failed; last error: .*HTTP 503"):
        run_sync(client.generate([ChatRequest.from_prompt(f"q{i}") for i in range(100)]))
    assert sum(server.counts.values()) < 20
    client.close()


def test_backend_works_across_event_loops(make_backend):
    b = make_backend()
    assert _gen(b, [ChatRequest.from_prompt("one")])[0].ok
    assert _gen(b, [ChatRequest.from_prompt("two")])[0].ok


def test_random_faults_under_load_lose_nothing(tmp_workspace):
    with FakeOpenAIServer(latency=0.005, rates={"429": 0.15, "500": 0.1, "drop": 0.1},
                          seed=7) as srv:
        from valueflow.llm import LLMCache, get_backend

        backend = get_backend("openai/m", base_url=srv.url, max_concurrency=8,
                              retry=RetryPolicy(max_retries=8, base_delay=0.005, max_delay=0.02))
        client = LLMClient(backend, tmp_workspace)
        prompts = [f"chaos {i}" for i in range(80)]
        out = run_sync(client.generate([ChatRequest.from_prompt(p) for p in prompts]))
        assert [r.text for r in out] == [f"echo: {p}" for p in prompts]
        stats = client.stats()["openai/m"]
        assert stats["retries"] > 0 and stats["failures"] == 0
        assert stats["calls"] == sum(srv.counts.values())
        client.close()
        assert LLMCache(tmp_workspace).count() == 80
