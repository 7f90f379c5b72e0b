from __future__ import annotations

import numpy as np
import pytest

from valueflow.llm import ChatRequest, ScriptedBackend


class KeywordScorer:
    """A DirectScorer test double: +6 for 'CARE', -6 for 'SELFISH', +0 otherwise,
    read from the answer text (the scripted backend writes those words)."""

    name = "kw"
    description = "test double: keyword intensities"

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def score(self, texts, value):
        self.calls.append((len(texts), value.id))
        out = []
        for t in texts:
            x = 6.0 if "CARE" in t else -6.0 if "SELFISH" in t else 0.0
            out.append((x, x - 1, x + 1))
        return np.array(out, dtype=float)


def scripted_answer(request: ChatRequest) -> str:
    system = " ".join(m["content"] for m in request.messages if m["role"] == "system")
    if "strongly value benevolence" in system:
        return "CARE for the people close to you, always."
    if "strongly oppose benevolence" in system:
        return "SELFISH choices first; let others fend for themselves."
    return "It depends on the situation and on what you want."


@pytest.fixture
def scripted():
    return ScriptedBackend("steer-test", fn=scripted_answer)


@pytest.fixture
def scorer():
    return KeywordScorer()
