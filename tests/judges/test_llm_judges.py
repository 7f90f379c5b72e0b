from __future__ import annotations

import re

import pytest

from valueflow.judges import (
    LLMRankingJudge,
    LLMRatingJudge,
    make_judge,
    ranking_messages,
    rating_messages,
)
from valueflow.llm import ChatRequest, LLMClient, ScriptedBackend

TEXTS = ["I drove my neighbour to hospital at 3 a.m.", "The bus leaves at noon.",
         "I stole my sister's savings."]
TRUTH = {TEXTS[0]: 8.0, TEXTS[1]: 0.0, TEXTS[2]: -9.0}


def _shown(request: ChatRequest) -> list[str]:
    """The texts of a ranking prompt, in the order the judge saw them."""
    user = next(m["content"] for m in request.messages if m["role"] == "user")
    return re.findall(r"^\[\d+\] (.*)$", user, flags=re.MULTILINE)


def _oracle(request: ChatRequest) -> str:
    """A perfect judge: reads the shown order and answers with ids by true intensity."""
    shown = _shown(request)
    ids = sorted(range(len(shown)), key=lambda j: -TRUTH[shown[j]])
    return "Ranking: " + " > ".join(str(j + 1) for j in ids)


async def test_ranking_judge_maps_display_order_back(value) -> None:
    backend = ScriptedBackend("oracle", fn=_oracle)
    judge = LLMRankingJudge(LLMClient(backend))
    out = await judge.rank(value, TEXTS)
    assert out.ok and out.attempts == 1
    assert out.order == (0, 1, 2)


async def test_scored_text_is_not_always_first(value) -> None:
    backend = ScriptedBackend("oracle", fn=_oracle)
    judge = LLMRankingJudge(LLMClient(backend))
    windows = [[f"response {i}", "anchor a", "anchor b", "anchor c"] for i in range(40)]
    for w in windows:
        TRUTH.update(dict.fromkeys(w, 0.0))
    await judge.rank_many(value, windows)
    positions = {_shown(r).index(w[0]) for r, w in zip(backend.requests, windows, strict=True)}
    assert positions == {0, 1, 2, 3}


async def test_reask_then_success_then_failure_counted(value) -> None:
    answers = iter(["I would rather not.", "[2, 1, 3]"])
    backend = ScriptedBackend("flaky", fn=lambda r: next(answers))
    judge = LLMRankingJudge(LLMClient(backend), shuffle=False)
    out = await judge.rank(value, TEXTS)
    assert out.ok and out.attempts == 2 and out.order == (1, 0, 2)
    # the re-ask carries the bad answer and a correction naming the problem
    reask = backend.requests[1].messages
    assert reask[-2] == {"role": "assistant", "content": "I would rather not."}
    assert "names none of the text ids" in reask[-1]["content"]

    backend2 = ScriptedBackend("hopeless", outputs=["no", "still no"])
    out2 = await LLMRankingJudge(LLMClient(backend2)).rank(value, TEXTS)
    assert not out2.ok and out2.attempts == 2
    assert "after a corrective re-ask" in (out2.error or "")
    assert len(backend2.requests) == 2


async def test_backend_error_is_a_failure_not_a_crash(value) -> None:
    def boom(_r: ChatRequest) -> str:
        raise RuntimeError("server on fire")

    judge = LLMRankingJudge(LLMClient(ScriptedBackend("boom", fn=boom)))
    outs = await judge.rank_many(value, [TEXTS, TEXTS[:2]])
    assert [o.ok for o in outs] == [False, False]
    assert "server on fire" in (outs[0].error or "")


async def test_structured_output_requested_when_supported(value) -> None:
    backend = ScriptedBackend("json", outputs=['{"ranking": [1, 2, 3]}'])
    judge = LLMRankingJudge(LLMClient(backend), structured=True, shuffle=False)
    out = await judge.rank(value, TEXTS)
    schema = backend.requests[0].json_schema
    assert schema is not None and schema["properties"]["ranking"]["maxItems"] == 3
    assert out.order == (0, 1, 2)
    plain = ScriptedBackend("plain", outputs=["[1, 2, 3]"])
    await LLMRankingJudge(LLMClient(plain)).rank(value, TEXTS)  # scripted: no schema support
    assert plain.requests[0].json_schema is None


async def test_rating_judge_reask_and_parse(value) -> None:
    backend = ScriptedBackend("rater", outputs=["somewhere between 3 and 5", "4", "-7"])
    judge = LLMRatingJudge(LLMClient(backend))
    outs = await judge.rate_many(value, TEXTS[:2])
    # first text: ambiguous, then re-asked; second text answered -7? order of calls:
    # the two first attempts go out together, then the single re-ask.
    assert outs[0].rating == -7.0 and outs[0].attempts == 2
    assert outs[1].rating == 4.0 and outs[1].attempts == 1


def test_prompts_worded_per_theory(value) -> None:
    msgs = ranking_messages(value, TEXTS)
    user = msgs[-1]["content"]
    assert "Benevolence" in user and "Schwartz" in user and "[3] I stole" in user
    assert "neutral" in user  # says where neutral texts go
    mft = value.model_copy(update={"id": "mft:care_harm", "theory": "mft", "name": "Care/Harm"})
    assert "foundation" in ranking_messages(mft, TEXTS)[-1]["content"].lower()
    paraphrased = {ranking_messages(value, TEXTS, paraphrase=p)[-1]["content"] for p in range(4)}
    assert len(paraphrased) == 4
    assert "-10" in rating_messages(value, TEXTS[0])[-1]["content"]


def test_make_judge_builds_llm_and_sim_judges() -> None:
    judge = make_judge("scripted", backend_options={"outputs": ["[1, 2]"]})
    assert isinstance(judge, LLMRankingJudge) and judge.name == "scripted/script"
    rater = make_judge("scripted", method="rating", paraphrase=2,
                       backend_options={"outputs": ["1"]})
    assert isinstance(rater, LLMRatingJudge) and rater.name.endswith("#p2")
    with pytest.raises(Exception, match="truth"):
        make_judge("sim")
    with pytest.raises(Exception, match="unknown LLM backend"):
        make_judge("opena/gpt")
