from __future__ import annotations

import pytest

from valueflow.llm import RetryPolicy
from valueflow.llm.testing import FakeOpenAIServer

FAST_RETRY = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def server():
    """A fake OpenAI server on a random local port, fresh for each test."""
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def make_backend(server):
    """Build an openai/ backend pointed at the fake server, with fast retries."""
    from valueflow.llm import get_backend

    def make(model: str = "fake-model", **options):
        options.setdefault("base_url", server.url)
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("timeout", 5.0)
        return get_backend(f"openai/{model}", **options)

    return make
