"""LLMClient: cache, accounting, dry-run estimates, dedup, persistence (scripted backend)."""

from __future__ import annotations

import pytest

from valueflow.errors import ConfigError
from valueflow.llm import ChatRequest, LLMCache, LLMClient, ScriptedBackend, run_sync
from valueflow.workspace import Workspace


def _upper(req):
    return req.messages[-1]["content"].upper()


def test_cache_hits_cost_no_call(tmp_workspace):
    backend = ScriptedBackend("s", fn=_upper)
    client = LLMClient(backend, tmp_workspace)
    reqs = [ChatRequest.from_prompt(f"p{i}") for i in range(5)]
    first = run_sync(client.generate(reqs))
    assert [r.text for r in first] == [f"P{i}" for i in range(5)]
    assert not any(r.cached for r in first)
    again = run_sync(client.generate(reqs))
    assert [r.text for r in again] == [r.text for r in first]
    assert all(r.cached and r.attempts == 0 for r in again)
    assert len(backend.requests) == 5
    stats = client.stats()["scripted/s"]
    assert stats["calls"] == 5 and stats["cache_hits"] == 5
    assert stats["prompt_tokens"] == 5 and stats["completion_tokens"] == 5
    client.close()


def test_duplicates_are_generated_once_and_samples_stay_distinct():
    backend = ScriptedBackend("s", fn=lambda r: f"{r.messages[-1]['content']}#{r.sample_index}")
    client = LLMClient(backend)
    reqs = [ChatRequest.from_prompt("a", temperature=1.0, sample_index=s) for s in (0, 1, 0)]
    out = run_sync(client.generate(reqs))
    assert [r.text for r in out] == ["a#0", "a#1", "a#0"]
    assert len(backend.requests) == 2
    client.close()


def test_results_persist_across_clients_and_processes_share_the_file(tmp_path):
    path = tmp_path / "ws.duckdb"
    with Workspace(path) as ws:
        LLMClient(ScriptedBackend("s", fn=_upper), ws).generate_sync(
            [ChatRequest.from_prompt("kept", logprobs=True)])
    fresh = ScriptedBackend("s", fn=lambda r: "never called")
    with Workspace(path) as ws:
        client = LLMClient(fresh, ws)
        [res] = client.generate_sync([ChatRequest.from_prompt("kept", logprobs=True)])
        client.close()
    assert res.text == "KEPT" and res.cached and fresh.requests == []


def test_a_different_model_name_does_not_share_entries(tmp_workspace):
    LLMClient(ScriptedBackend("one", fn=_upper), tmp_workspace).generate_sync(
        [ChatRequest.from_prompt("x")])
    other = ScriptedBackend("two", fn=lambda r: "two says")
    [res] = LLMClient(other, tmp_workspace).generate_sync([ChatRequest.from_prompt("x")])
    assert res.text == "two says" and not res.cached


def test_failures_are_reported_not_raised_and_not_cached(tmp_workspace):
    calls = {"n": 0}

    def flaky(req):
        calls["n"] += 1
        if "bad" in req.messages[-1]["content"] and calls["n"] < 10:
            raise RuntimeError("boom")
        return "fine"

    client = LLMClient(ScriptedBackend("s", fn=flaky), tmp_workspace)
    out = client.generate_sync([ChatRequest.from_prompt("ok"), ChatRequest.from_prompt("bad")])
    assert out[0].ok and not out[1].ok and "RuntimeError: boom" in out[1].error
    assert client.stats()["scripted/s"]["failures"] == 1
    assert LLMCache(tmp_workspace).count() == 1
    calls["n"] = 100
    out = client.generate_sync([ChatRequest.from_prompt("ok"), ChatRequest.from_prompt("bad")])
    assert out[0].cached and out[1].ok and not out[1].cached
    client.close()


def test_cache_off_calls_every_time():
    backend = ScriptedBackend("s", fn=_upper)
    client = LLMClient(backend, cache=False)
    for _ in range(2):
        client.generate_sync([ChatRequest.from_prompt("x")])
    assert len(backend.requests) == 2
    client.close()


def test_estimate_counts_only_missing_calls_and_spends_nothing(tmp_workspace):
    backend = ScriptedBackend("s", fn=_upper)
    client = LLMClient(backend, tmp_workspace)
    client.generate_sync([ChatRequest.from_prompt("done")])
    reqs = [ChatRequest.from_prompt("done"), ChatRequest.from_prompt("x" * 400, max_tokens=50),
            ChatRequest.from_prompt("x" * 400, max_tokens=50)]
    est = client.estimate(reqs)
    assert (est.requests, est.unique, est.cached, est.calls) == (3, 2, 1, 1)
    assert est.prompt_tokens == 100 + 4  # ~4 characters a token, plus the message frame
    assert est.max_completion_tokens == 50
    assert len(backend.requests) == 1
    client.close()


def test_usage_totals_accumulate_in_the_workspace(tmp_workspace):
    for _ in range(2):
        client = LLMClient(ScriptedBackend("s", fn=_upper), tmp_workspace)
        client.generate_sync([ChatRequest.from_prompt("a"), ChatRequest.from_prompt("b b")])
        client.close()
    [row] = LLMCache(tmp_workspace).stats()
    assert (row["entries"], row["calls"], row["cache_hits"]) == (2, 2, 2)
    assert row["prompt_tokens"] == 3 and row["completion_tokens"] == 3


def test_clear_by_model(tmp_workspace):
    for name in ("one", "two"):
        LLMClient(ScriptedBackend(name, fn=_upper), tmp_workspace).generate_sync(
            [ChatRequest.from_prompt("a"), ChatRequest.from_prompt("b")])
    cache = LLMCache(tmp_workspace)
    assert cache.clear(model="one") == 2
    assert cache.count() == 2 and cache.count(model="two") == 2
    assert cache.clear() == 2 and cache.count() == 0


def test_batched_backends_receive_batches():
    sizes = []

    class Batched(ScriptedBackend):
        async def generate(self, requests):
            sizes.append(len(requests))
            return await super().generate(requests)

    backend = Batched("b", fn=_upper, batch_size=4, max_concurrency=4)
    out = LLMClient(backend).generate_sync([ChatRequest.from_prompt(str(i)) for i in range(10)])
    assert [r.text for r in out] == [str(i) for i in range(10)]
    assert sorted(sizes) == [2, 4, 4]


def test_wrong_number_of_results_is_an_error():
    from valueflow.errors import BackendError

    class Broken(ScriptedBackend):
        async def generate(self, requests):
            return []

    with pytest.raises(BackendError, match="returned 0 results for 1 requests"):
        LLMClient(Broken("b", fn=_upper)).generate_sync([ChatRequest.from_prompt("x")])


def test_run_sync_inside_a_running_loop():
    import asyncio

    client = LLMClient(ScriptedBackend("s", fn=_upper))

    async def inner():
        return client.generate_sync([ChatRequest.from_prompt("nested")])

    assert asyncio.run(inner())[0].text == "NESTED"
    client.close()


def test_bad_concurrency_is_rejected():
    with pytest.raises(ConfigError, match="max_concurrency must be at least 1"):
        LLMClient(ScriptedBackend("s", fn=_upper), max_concurrency=0)


def test_large_batches_and_concurrent_writers_of_one_key(tmp_workspace):
    """Batches above the inline-lookup size take the list-join path; a key another client
    wrote in the meantime is skipped, not an error, and keeps the first text."""
    a = LLMClient(ScriptedBackend("s", fn=_upper), tmp_workspace)
    reqs = [ChatRequest.from_prompt(f"q{i}", logprobs=True) for i in range(600)]
    first = run_sync(a.generate(reqs, progress=False))
    assert all(r.ok and not r.cached for r in first)
    again = run_sync(a.generate(reqs, progress=False))
    assert [r.text for r in again] == [f"Q{i}" for i in range(600)]
    assert all(r.cached for r in again)
    # Two clients that both missed the same keys write them: the second write skips them.
    b_backend = ScriptedBackend("s", fn=lambda r: "other")
    b = LLMClient(b_backend, tmp_workspace)
    from valueflow.llm._cache import CacheRow

    rows = [CacheRow(k, "scripted", "s", '{"x": 1}', '{"y": 2}', res, None)
            for k, res in zip(LLMCache.keys_for(b_backend, reqs[:3])[1], first[:3], strict=True)]
    LLMCache(tmp_workspace).write(rows, [])
    LLMCache(tmp_workspace).write(rows, [])  # already there: skipped
    hits = LLMCache(tmp_workspace).get_many(LLMCache.keys_for(b_backend, reqs[:3])[1])
    assert sorted(r.text for r in hits.values()) == ["Q0", "Q1", "Q2"]
    a.close()
    b.close()
