from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from valueflow.errors import ConfigError, DataError, UnknownNameError
from valueflow.evaluate import OUTPUT_COLUMNS, estimate_score_cost, prepare_score, score_texts
from valueflow.judges import LLMRankingJudge, LLMRatingJudge
from valueflow.llm import ChatRequest, LLMClient, ScriptedBackend


def _sim(synthetic, beta=2.0):
    return {"truth": synthetic["truth"], "beta": beta, "seed": 3}


@pytest.mark.parametrize("design", ["adaptive", "bucket", "random"])
def test_sim_judge_recovers_intensities(synthetic, design) -> None:
    out = score_texts(synthetic["texts"], "benevolence", "sim", synthetic["anchors"], k=5, m=4,
                      design=design, judge_options=_sim(synthetic), progress=False)
    assert list(out.columns) == OUTPUT_COLUMNS
    assert (out["n_windows"] == 4).all() and (out["n_failures"] == 0).all()
    err = out["intensity"].to_numpy() - synthetic["latent"]
    assert np.sqrt(np.mean(err**2)) < 1.6
    inside = (out["low"] <= synthetic["latent"]) & (synthetic["latent"] <= out["high"])
    assert inside.mean() >= 0.7
    assert abs(out["beta"].iloc[0] - 2.0) < 1.0
    assert (out["vidb"] == "table").all() and (out["judge"] == "sim(beta=2)").all()


def test_reference_estimator_and_rating_method(synthetic) -> None:
    ref = score_texts(synthetic["texts"], "benevolence", "sim", synthetic["anchors"], k=5, m=4,
                      estimator="reference", judge_options=_sim(synthetic), progress=False)
    assert ref["low"].isna().all() and np.corrcoef(ref["intensity"], synthetic["latent"])[0, 1] > 0.9
    rate = score_texts(synthetic["texts"], "benevolence", "sim", method="rating",
                       judge_options={"truth": synthetic["truth"], "noise_sd": 0.5},
                       progress=False)
    assert np.abs(rate["intensity"] - synthetic["latent"]).max() < 2.5
    assert (rate["n_windows"] == 1).all()


def test_many_values_long_format_and_carried_columns(synthetic) -> None:
    df = pd.DataFrame({"id": range(len(synthetic["texts"])), "text": synthetic["texts"]})
    out = score_texts(df, ["benevolence", "care/harm"], "sim", synthetic["anchors"], k=4, m=2,
                      judge_options=_sim(synthetic), progress=False)
    assert len(out) == 2 * len(df)
    assert out["value"].value_counts().to_dict() == {"schwartz:benevolence": 24,
                                                     "mft:care_harm": 24}
    assert out.columns[0] == "id"


def test_value_column_mode(synthetic) -> None:
    texts = synthetic["texts"]
    df = pd.DataFrame({"text": texts,
                       "value": ["benevolence" if i % 2 else "care-harm" for i in range(len(texts))]})
    out = score_texts(df, judge="sim", vidb=synthetic["anchors"], value_column="value", k=4, m=2,
                      judge_options=_sim(synthetic), progress=False)
    assert len(out) == len(df)
    expected = ["schwartz:benevolence" if i % 2 else "mft:care_harm" for i in range(len(texts))]
    assert out["value"].tolist() == expected
    assert out["value_input"].tolist() == df["value"].tolist()


def _oracle(truth):
    def answer(request: ChatRequest) -> str:
        user = next(m["content"] for m in request.messages if m["role"] == "user")
        shown = re.findall(r"^\[\d+\] (.*)$", user, flags=re.MULTILINE)
        order = sorted(range(len(shown)), key=lambda j: -truth[shown[j]])
        return "[" + ", ".join(str(j + 1) for j in order) + "]"
    return answer


def test_llm_judge_end_to_end_resumable_and_shuffled(synthetic, tmp_workspace) -> None:
    texts = synthetic["texts"][:8]
    backend = ScriptedBackend("oracle", fn=_oracle(synthetic["truth"]))
    judge = LLMRankingJudge(LLMClient(backend, tmp_workspace))
    out = score_texts(texts, "benevolence", judge, synthetic["anchors"], k=4, m=3,
                      workspace=tmp_workspace, progress=False)
    assert len(backend.requests) == 8 * 3
    assert np.corrcoef(out["intensity"], synthetic["latent"][:8])[0, 1] > 0.9
    # the scored text is shown at different positions
    positions = set()
    for req in backend.requests:
        user = req.messages[-1]["content"]
        shown = re.findall(r"^\[\d+\] (.*)$", user, flags=re.MULTILINE)
        positions |= {j for j, t in enumerate(shown) if t.startswith("response number")}
    assert len(positions) >= 3
    # a rerun (a fresh process would build a fresh backend) sends nothing: all cached
    again = ScriptedBackend("oracle", fn=_oracle(synthetic["truth"]))
    out2 = score_texts(texts, "benevolence", LLMRankingJudge(LLMClient(again, tmp_workspace)),
                       synthetic["anchors"], k=4, m=3, workspace=tmp_workspace, progress=False)
    assert again.requests == []
    pd.testing.assert_series_equal(out["intensity"], out2["intensity"])
    from valueflow.evaluate import load_scores

    stored = load_scores(tmp_workspace)
    assert stored["run_id"].nunique() == 2 and len(stored) == 16


def test_unreadable_answers_are_counted_not_dropped(synthetic) -> None:
    backend = ScriptedBackend("mute", fn=lambda r: "I prefer not to say.")
    judge = LLMRankingJudge(LLMClient(backend))
    out = score_texts(synthetic["texts"][:3], "benevolence", judge, synthetic["anchors"],
                      k=4, m=2, design="bucket", progress=False)
    assert (out["n_failures"] == 2).all() and (out["n_windows"] == 0).all()
    assert out["intensity"].isna().all()
    assert len(backend.requests) == 3 * 2 * 2  # each window asked, then re-asked once


def test_rating_with_llm_judge(synthetic) -> None:
    backend = ScriptedBackend("rater", fn=lambda r: "Rating: 4")
    out = score_texts(synthetic["texts"][:3], "benevolence", LLMRatingJudge(LLMClient(backend)),
                      method="rating", progress=False)
    assert out["intensity"].tolist() == [4.0, 4.0, 4.0]


def test_direct_scorer_skips_windows() -> None:
    class Fixed:
        name = "fixed-scorer"
        description = "returns 1 for every text"

        def score(self, texts, value):
            return np.tile([1.0, 0.0, 2.0], (len(texts), 1))

    out = score_texts(["a", "b"], "benevolence", Fixed(), progress=False)
    assert out["intensity"].tolist() == [1.0, 1.0] and (out["n_windows"] == 0).all()
    assert (out["judge"] == "fixed-scorer").all() and out["high"].tolist() == [2.0, 2.0]


def test_dry_run_estimate_counts_calls(synthetic, tmp_workspace) -> None:
    backend = ScriptedBackend("est", fn=_oracle(synthetic["truth"]))
    judge = LLMRankingJudge(LLMClient(backend, tmp_workspace))
    job = prepare_score(synthetic["texts"][:5], "benevolence", judge, synthetic["anchors"], k=4,
                        m=3, design="bucket")
    cost = estimate_score_cost(job)
    assert cost["windows"] == 15 and cost["calls"] == 15 and cost["prompt_tokens"] > 0
    assert backend.requests == []


def test_seed_vidb_default_and_local_unavailable(monkeypatch) -> None:
    import valueflow.judges._factory as factory

    monkeypatch.setattr(factory, "LOCAL_SCORER_FACTORY", "valueflow.nothing_here:load")
    with pytest.raises(ConfigError, match="local intensity scorer is not available"):
        score_texts(["a"], "benevolence", progress=False)


# -- bad input -------------------------------------------------------------------------


def test_bad_inputs(synthetic) -> None:
    opts = _sim(synthetic)
    with pytest.raises(DataError, match="no column 'text'"):
        score_texts(pd.DataFrame({"txt": ["a"]}), "benevolence", "sim", judge_options=opts)
    with pytest.raises(DataError, match=r"empty text \(row 2"):
        score_texts(["fine", "  "], "benevolence", "sim", judge_options=opts)
    with pytest.raises(UnknownNameError, match=r"(?s)benevolense.*benevolence"):
        score_texts(["a"], "benevolense", "sim", judge_options=opts)
    only_care = synthetic["anchors"][synthetic["anchors"]["value"] == "mft:care_harm"]
    with pytest.raises(DataError, match="no anchors for schwartz:benevolence"):
        score_texts(synthetic["texts"], "benevolence", "sim", only_care, judge_options=opts)
    with pytest.raises(ConfigError, match="k=200 needs 199 anchors"):
        score_texts(synthetic["texts"], "benevolence", "sim", synthetic["anchors"], k=200,
                    judge_options=opts)
    with pytest.raises(DataError, match="truth table lacks"):
        score_texts(["unknown text"], "benevolence", "sim", synthetic["anchors"],
                    judge_options=opts)
    with pytest.raises(ConfigError, match="exactly one"):
        score_texts(["a"], judge="sim", judge_options=opts)
