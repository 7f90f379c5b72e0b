from __future__ import annotations

import pytest

from valueflow.errors import ConfigError
from valueflow.llm import ChatRequest, Usage
from valueflow.llm._messages import merge_system, template_supports_system
from valueflow.llm._types import request_seed


def test_request_validates_messages():
    with pytest.raises(ConfigError, match="non-empty list of messages"):
        ChatRequest(messages=[])
    with pytest.raises(ConfigError, match="non-empty list of messages"):
        ChatRequest(messages="hello")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown message role 'bot'"):
        ChatRequest(messages=[{"role": "bot", "content": "x"}])
    with pytest.raises(ConfigError, match="content must be a string"):
        ChatRequest(messages=[{"role": "user", "content": 3}])  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="max_tokens must be at least 1"):
        ChatRequest.from_prompt("x", max_tokens=0)
    with pytest.raises(ConfigError, match="temperature must be >= 0"):
        ChatRequest.from_prompt("x", temperature=-1)


def test_from_prompt_puts_system_first():
    r = ChatRequest.from_prompt("hi", system="be brief", stop="\n")
    assert [m["role"] for m in r.messages] == ["system", "user"]
    assert r.stop == ("\n",)


def test_fingerprint_tracks_everything_that_changes_output():
    base = ChatRequest.from_prompt("hi")
    same = ChatRequest.from_prompt("hi")
    assert base.fingerprint() == same.fingerprint()
    variants = [
        ChatRequest.from_prompt("hi!"),
        ChatRequest.from_prompt("hi", system="s"),
        ChatRequest.from_prompt("hi", sample_index=1),
        ChatRequest.from_prompt("hi", temperature=0.7),
        ChatRequest.from_prompt("hi", max_tokens=10),
        ChatRequest.from_prompt("hi", seed=3),
        ChatRequest.from_prompt("hi", json_schema={"type": "object"}),
        ChatRequest.from_prompt("hi", logprobs=True),
        ChatRequest.from_prompt("hi", stop=["x"]),
        ChatRequest.from_prompt("hi", extra={"min_p": 0.1}),
    ]
    prints = {v.fingerprint() for v in variants}
    assert len(prints) == len(variants)
    assert base.fingerprint() not in prints


def test_derived_seed_differs_per_sample_and_respects_explicit_seed():
    a = request_seed(ChatRequest.from_prompt("hi", temperature=1, sample_index=0))
    b = request_seed(ChatRequest.from_prompt("hi", temperature=1, sample_index=1))
    assert a != b
    assert a == request_seed(ChatRequest.from_prompt("hi", temperature=1, sample_index=0))
    assert request_seed(ChatRequest.from_prompt("hi", seed=42)) == 42


def test_usage_adds():
    assert Usage(1, 2) + Usage(3, 4) == Usage(4, 6)
    assert Usage(1, 2).total_tokens == 3


def test_merge_system_prefixes_first_user_message():
    msgs = [{"role": "system", "content": "RULES"}, {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]
    merged = merge_system(msgs)
    assert [m["role"] for m in merged] == ["user", "assistant", "user"]
    assert merged[0]["content"] == "RULES\n\nq1"
    assert merged[2]["content"] == "q2"
    assert msgs[1]["content"] == "q1"  # the input is not modified
    assert merge_system([{"role": "system", "content": "only"}]) == [
        {"role": "user", "content": "only"}]


def test_template_probe_detects_missing_system_role():
    def raises(msgs):
        if msgs[0]["role"] == "system":
            raise ValueError("System role not supported")
        return "x"

    def drops(msgs):
        return "".join(m["content"] for m in msgs if m["role"] != "system")

    def keeps(msgs):
        return "".join(m["content"] for m in msgs)

    assert template_supports_system(raises) is False
    assert template_supports_system(drops) is False
    assert template_supports_system(keeps) is True
