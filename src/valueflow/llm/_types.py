"""Requests, results and the backend interface every LLM backend implements."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from valueflow.errors import ConfigError

__all__ = [
    "Backend",
    "ChatRequest",
    "ChatResult",
    "Usage",
    "canonical_json",
    "request_seed",
]

_ROLES = frozenset({"system", "user", "assistant", "tool"})


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat generation: messages in, text out.

    Attributes:
        messages: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``.
        max_tokens: Upper bound on generated tokens.
        temperature: 0 is greedy decoding.
        top_p: Nucleus sampling mass (``None``: the backend's default).
        seed: Sampling seed. Local backends derive one from the request when it is unset,
            so a repeated sample (see ``sample_index``) is reproducible yet distinct.
        sample_index: Which of several samples of the same request this is; part of the
            cache key, so samples at temperature > 0 stay distinct.
        json_schema: A JSON schema the output must follow (structured output).
        logprobs: Return per-token log-probabilities.
        top_logprobs: With ``logprobs``, also the ``n`` most likely alternatives per token.
        stop: Strings that end generation.
        extra: Backend-specific generation parameters (sent as-is; part of the cache key).
    """

    messages: Sequence[Mapping[str, str]]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    sample_index: int = 0
    json_schema: Mapping[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    stop: Sequence[str] | None = None
    extra: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.messages, str) or not self.messages:
            raise ConfigError(
                "a chat request needs a non-empty list of messages",
                hint='use ChatRequest.from_prompt("...") or [{"role": "user", "content": "..."}]',
            )
        msgs = []
        for m in self.messages:
            role, content = m.get("role"), m.get("content")
            if role not in _ROLES:
                raise ConfigError(
                    f"unknown message role {role!r}", hint=f"use one of {sorted(_ROLES)}"
                )
            if not isinstance(content, str):
                raise ConfigError(f"message content must be a string, got {type(content).__name__}")
            msgs.append({"role": role, "content": content})
        object.__setattr__(self, "messages", tuple(msgs))
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if self.sample_index < 0:
            raise ConfigError(f"sample_index must be >= 0, got {self.sample_index}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif self.stop is not None:
            object.__setattr__(self, "stop", tuple(self.stop))

    @classmethod
    def from_prompt(cls, prompt: str, system: str | None = None, **kwargs: Any) -> ChatRequest:
        """A single-turn request, with an optional system message."""
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        return cls(messages=messages, **kwargs)

    def settings(self) -> dict[str, Any]:
        """Everything except the messages that changes the output (for cache keys)."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": float(self.temperature),
            "top_p": self.top_p,
            "seed": self.seed,
            "sample_index": self.sample_index,
            "json_schema": self.json_schema,
            "logprobs": bool(self.logprobs),
            "top_logprobs": self.top_logprobs if self.logprobs else None,
            "stop": list(self.stop) if self.stop else None,
            "extra": dict(self.extra) if self.extra else None,
        }

    def payload(self) -> dict[str, Any]:
        """Messages and settings as plain JSON-able data."""
        return {"messages": [dict(m) for m in self.messages], **self.settings()}

    def fingerprint(self) -> str:
        """A stable hash of :meth:`payload` (no backend identity)."""
        return hashlib.sha256(canonical_json(self.payload()).encode()).hexdigest()


def request_seed(request: ChatRequest) -> int:
    """The seed a local backend uses: the request's own, else one derived from its content.

    Deriving it from the payload (which holds ``sample_index``) keeps a sample reproducible
    while making sample 0 and sample 1 of the same prompt differ.
    """
    if request.seed is not None:
        return int(request.seed)
    return int(request.fingerprint()[:8], 16) & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(slots=True)
class ChatResult:
    """The outcome of one :class:`ChatRequest`.

    Attributes:
        text: The generated text ("" when ``error`` is set).
        usage: Token counts reported by the backend (or counted locally).
        logprobs: With ``logprobs=True``: a list of ``{"token", "logprob", "top"}`` dicts,
            ``top`` mapping alternative tokens to their log-probabilities.
        cached: Whether the result came from the cache (no call was made).
        error: Why the request failed after its retries; ``None`` on success.
        finish_reason: ``"stop"``, ``"length"`` ... when the backend reports it.
        attempts: Calls made for this result (1 + retries); 0 for a cache hit.
        latency_s: Seconds the successful call took.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    logprobs: list[dict[str, Any]] | None = None
    cached: bool = False
    error: str | None = None
    finish_reason: str | None = None
    attempts: int = 1
    latency_s: float | None = None

    @property
    def ok(self) -> bool:
        """True when the request succeeded."""
        return self.error is None

    @classmethod
    def failure(cls, error: str, attempts: int = 1) -> ChatResult:
        return cls(text="", error=error, attempts=attempts)

    def json(self) -> Any:
        """The text parsed as JSON (for structured output); raises ``ValueError`` if invalid."""
        return json.loads(self.text)


class Backend(ABC):
    """A chat model behind one narrow async interface.

    Subclasses set :attr:`kind`, :attr:`model`, :attr:`max_concurrency` (how many requests
    may be in flight at once) and :attr:`batch_size` (how many requests one call of
    :meth:`generate` should ideally receive), and implement :meth:`generate` and
    :meth:`cache_identity`. Heavy resources (weights, HTTP pools) load on first use.
    """

    kind: ClassVar[str] = ""
    model: str = ""
    max_concurrency: int = 1
    batch_size: int = 1
    supports_json_schema: bool = False
    """Whether ``ChatRequest.json_schema`` constrains the output."""

    @property
    def spec(self) -> str:
        """The spec string this backend answers to, e.g. ``"openai/gpt-4o-mini"``."""
        return f"{self.kind}/{self.model}" if self.model else self.kind

    @abstractmethod
    def cache_identity(self) -> dict[str, Any]:
        """What, besides the request, determines the output (model file, endpoint group).

        Must never contain secrets, and must leave out settings that do not change outputs
        (timeouts, concurrency, which replica of a fleet served a call).
        """

    @abstractmethod
    async def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Run ``requests``; one result per request, in order.

        A request that fails after retries comes back with ``error`` set. Problems that
        doom every request (bad credentials, unknown model) raise
        :class:`~valueflow.errors.BackendError` instead.
        """

    async def ping(self) -> None:
        """Check, with one cheap call, that the backend can answer at all; raise
        :class:`~valueflow.errors.BackendError` when it cannot. Local backends have nothing
        to check (the default does nothing); servers override it."""
        return None

    def count_tokens(self, text: str) -> int | None:
        """Exact token count when a tokenizer is at hand without loading a model."""
        return None

    async def aclose(self) -> None:
        """Release network connections or model memory."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"
