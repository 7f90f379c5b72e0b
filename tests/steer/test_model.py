from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from valueflow.steer import (
    apply_overrides,
    example_config_path,
    load_config,
    load_results,
    run_steering,
)


class LengthScorer:
    """Stand-in judge used only while the local scorer is not importable."""

    name = "length-stub"
    description = "test double"

    def score(self, texts, value):
        x = np.array([min(10.0, len(t.split()) / 10) for t in texts])
        return np.stack([x, x - 1, x + 1], axis=1)


@pytest.mark.model
def test_small_config_on_smollm2(tmp_workspace):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed; the model tests need the `local` extra")
    try:
        from valueflow.embed import load_local_scorer  # noqa: F401

        judge = None  # the config's own judge: local
    except ImportError:
        judge = LengthScorer()
    cfg = apply_overrides(load_config(example_config_path()), queries=1, max_tokens=24)
    summary = run_steering(cfg, tmp_workspace, judge=judge, progress=False)
    n = summary["trials_per_model"]
    assert summary["models"]["llamacpp/smollm2"]["generated"] == n
    res = load_results(tmp_workspace)
    assert res["response"].str.len().gt(0).mean() > 0.8
    assert res["intensity"].notna().mean() > 0.8
