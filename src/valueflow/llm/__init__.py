"""One async chat interface over LLM backends, with a persistent cache.

Backends are named by spec strings and built lazily::

    from valueflow.llm import ChatRequest, LLMClient, get_backend, run_sync

    backend = get_backend("openai/meta-llama/Llama-3.1-8B-Instruct",
                          base_url=["http://gpu1:8000/v1", "http://gpu2:8000/v1"])
    client = LLMClient(backend, workspace)
    results = run_sync(client.generate([ChatRequest.from_prompt("Hello")]))

Specs: ``openai/<model>`` (any OpenAI-compatible server), ``llamacpp/<gguf|smollm2>``,
``hf/<folder|gguf>``, ``vllm/<model>``, and ``scripted`` for tests.
"""

from valueflow.llm._cache import LLMCache, cache_key
from valueflow.llm._client import Estimate, LLMClient, run_sync
from valueflow.llm._options import backend_options
from valueflow.llm._registry import (
    DEFAULT_MODEL,
    available_backends,
    get_backend,
    register_backend,
)
from valueflow.llm._retry import RetryPolicy
from valueflow.llm._scripted import ScriptedBackend
from valueflow.llm._types import Backend, ChatRequest, ChatResult, Usage

__all__ = [
    "DEFAULT_MODEL",
    "Backend",
    "ChatRequest",
    "ChatResult",
    "Estimate",
    "LLMCache",
    "LLMClient",
    "RetryPolicy",
    "ScriptedBackend",
    "Usage",
    "available_backends",
    "backend_options",
    "cache_key",
    "get_backend",
    "register_backend",
    "run_sync",
]
