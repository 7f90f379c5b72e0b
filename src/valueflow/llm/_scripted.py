"""``scripted``: a backend whose outputs come from a list or a function. For tests only.

It lets the evaluator, the steering runner and the CLI be tested end to end without a
network or a model. It is never chosen by default.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

from valueflow.errors import ConfigError
from valueflow.llm._types import Backend, ChatRequest, ChatResult, Usage

__all__ = ["ScriptedBackend"]

Script = Callable[[ChatRequest], "str | ChatResult"]


class ScriptedBackend(Backend):
    """Answers from a script and records every request it saw.

    Args:
        model: A name for the script (part of cache keys, so two scripts sharing one
            workspace should have different names).
        outputs: Texts returned in order, one per request; running out is an error.
        fn: ``fn(request) -> str | ChatResult``; an exception it raises becomes the
            request's ``error``.
        latency: Seconds each request takes (to exercise concurrency).
        max_concurrency: Requests in flight at once.
        batch_size: Requests per ``generate`` call the client should send.
        supports_json_schema: What the script claims about structured output.
    """

    kind = "scripted"

    def __init__(
        self,
        model: str = "",
        *,
        outputs: Sequence[str] | None = None,
        fn: Script | None = None,
        latency: float = 0.0,
        max_concurrency: int = 8,
        batch_size: int = 1,
        supports_json_schema: bool = False,
    ) -> None:
        if (outputs is None) == (fn is None):
            raise ConfigError("the scripted backend needs exactly one of outputs= or fn=",
                              hint='get_backend("scripted", outputs=["a", "b"])')
        self.model = model or "script"
        self._outputs = list(outputs) if outputs is not None else None
        self._fn = fn
        self._next = 0
        self._lock = threading.Lock()
        self.latency = float(latency)
        self.max_concurrency = max_concurrency
        self.batch_size = batch_size
        self.supports_json_schema = supports_json_schema
        self.requests: list[ChatRequest] = []
        """Every request received, in arrival order."""

    @property
    def spec(self) -> str:
        return f"scripted/{self.model}"

    def cache_identity(self) -> dict[str, Any]:
        return {}

    def _answer(self, request: ChatRequest) -> ChatResult:
        with self._lock:
            self.requests.append(request)
            if self._outputs is not None:
                if self._next >= len(self._outputs):
                    return ChatResult.failure(
                        f"scripted backend ran out of outputs after {len(self._outputs)}")
                out: str | ChatResult = self._outputs[self._next]
                self._next += 1
        if self._outputs is None:
            assert self._fn is not None
            try:
                out = self._fn(request)
            except Exception as exc:
                return ChatResult.failure(f"{type(exc).__name__}: {exc}")
        if isinstance(out, ChatResult):
            return out
        prompt = sum(len(m["content"].split()) for m in request.messages)
        return ChatResult(text=str(out), usage=Usage(prompt, len(str(out).split())),
                          finish_reason="stop", latency_s=self.latency)

    async def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        if self.latency:
            await asyncio.sleep(self.latency)
        return [self._answer(r) for r in requests]
