"""``openai/<model>``: any server speaking the OpenAI chat-completions protocol.

vLLM, SGLang, Ollama, llama.cpp's server and hosted APIs all do. Several base URLs for one
model are used as one fleet: each request goes to the endpoint with the fewest requests in
flight, and an endpoint that keeps failing is rested for a while as the others take its load.

The API key is read from the environment at call time and is only ever placed in the
``Authorization`` header: it is not stored on the backend, in cache keys or in messages
(any echo of it in a server's error text is masked).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from valueflow._redact import redact_url
from valueflow.errors import BackendError, ConfigError
from valueflow.llm._http import _OPEN as _OPEN_TRANSPORTS
from valueflow.llm._http import TransportFailure, TransportTimeout, make_transport
from valueflow.llm._messages import merge_system
from valueflow.llm._retry import RETRY_STATUS, RetryPolicy, parse_retry_after
from valueflow.llm._types import Backend, ChatRequest, ChatResult, Usage

__all__ = ["BASE_URL_ENV_VARS", "DEFAULT_BASE_URL", "OpenAIBackend", "redact_url"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV_VARS = ("VALUEFLOW_OPENAI_BASE_URL", "OPENAI_BASE_URL")
_STRUCTURED_MODES = ("response_format", "guided_json", "both", "none")
_log = logging.getLogger("valueflow.llm")


def _base_urls(base_url: str | Sequence[str] | None) -> list[str]:
    if base_url is None:
        for var in BASE_URL_ENV_VARS:
            if os.environ.get(var):
                base_url = os.environ[var]
                break
        else:
            base_url = DEFAULT_BASE_URL
    raw = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    urls = []
    for u in (u.strip().rstrip("/") for u in raw):
        if not u:
            continue
        if not u.startswith(("http://", "https://")):
            raise ConfigError(
                f"base URL {redact_url(u)!r} must start with http:// or https://",
                hint="e.g. http://localhost:8000/v1",
            )
        if u not in urls:
            urls.append(u)
    if not urls:
        raise ConfigError("no base URL given for the openai backend",
                          hint="pass --base-url URL or set $VALUEFLOW_OPENAI_BASE_URL")
    return urls


@dataclass
class _Endpoint:
    url: str
    label: str
    in_flight: int = 0
    failures: int = 0
    rest_until: float = 0.0
    served: int = 0


class _Transient(Exception):
    """A failure worth retrying (429, 5xx, timeout, dropped connection).

    ``unreachable`` marks a failure to reach the server at all (connection refused, DNS):
    when every request fails that way for ``unreachable_s`` the run stops.
    """

    def __init__(self, message: str, retry_after: float | None = None, *,
                 unreachable: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.unreachable = unreachable


class _Rejected(Exception):
    """The server refused this one request (e.g. 400: prompt too long); no retry."""


class OpenAIBackend(Backend):
    """A model behind one or more OpenAI-compatible chat-completions endpoints.

    Args:
        model: The model name the server knows.
        base_url: One URL, a list, or a comma-separated string (a fleet serving the same
            model). Default: ``$VALUEFLOW_OPENAI_BASE_URL``, ``$OPENAI_BASE_URL``, else
            OpenAI's API.
        api_key_env: Environment variable holding the API key (read at call time). Local
            servers need none: without the variable no ``Authorization`` header is sent.
        max_concurrency: Requests in flight at once, over all endpoints (default 32 per
            endpoint).
        timeout: Seconds before a call is abandoned (and retried).
        max_retries: Retries after the first try, on 429, 5xx, timeouts and dropped
            connections, with exponential backoff and jitter.
        cache_namespace: Identity of the server group in cache keys. By default it is the
            set of base URLs, so a model name served by two different servers (different
            weights or quantisation) never shares cache entries. Give a name of your own
            (e.g. ``"vllm-llama8b"``) to keep hits when the fleet's URLs change.
        structured_output: How ``json_schema`` is sent: ``"response_format"`` (OpenAI's
            ``json_schema`` format, also vLLM, SGLang, llama.cpp, Ollama), ``"guided_json"``
            (older vLLM), ``"both"``, or ``"none"`` (not sent; validate the text yourself).
        strict_schema: Ask for strict schema adherence (OpenAI then requires
            ``additionalProperties: false`` on every object).
        max_tokens_field: ``"max_tokens"`` or ``"max_completion_tokens"`` (newer OpenAI models).
        extra_body: Fields added to every request body (part of the cache key).
        merge_system: Fold system messages into the first user message (for served models
            whose template lacks a system role). Switched on automatically when the server
            rejects a system role.
        cooldown_s: How long an endpoint rests after ``failures_before_rest`` failures in a row.
        failures_before_rest: Consecutive failures that rest an endpoint (with several endpoints).
        transport: HTTP client: ``"aiohttp"``, ``"httpx"`` or ``"auto"`` (aiohttp if installed).
        unreachable_s: Stop with :class:`~valueflow.errors.BackendError` once no request has
            succeeded for this many seconds and every try failed to reach a server
            (connection refused, DNS): a server that is down ends the run within seconds
            instead of after minutes of retries. HTTP 401, 403 and 404 stop it at once.
    """

    kind = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | Sequence[str] | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        retry: RetryPolicy | None = None,
        cache_namespace: str | None = None,
        structured_output: str = "response_format",
        strict_schema: bool = True,
        max_tokens_field: str = "max_tokens",
        extra_body: dict[str, Any] | None = None,
        merge_system: bool = False,
        cooldown_s: float = 30.0,
        failures_before_rest: int = 3,
        transport: str = "auto",
        unreachable_s: float = 20.0,
    ) -> None:
        if not model:
            raise ConfigError("the openai backend needs a model name",
                              hint="e.g. openai/gpt-4o-mini or openai/meta-llama/Llama-3.1-8B")
        if structured_output not in _STRUCTURED_MODES:
            raise ConfigError(f"structured_output must be one of {_STRUCTURED_MODES}, "
                              f"got {structured_output!r}")
        if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError(f"max_tokens_field must be max_tokens or max_completion_tokens, "
                              f"got {max_tokens_field!r}")
        self.model = model
        self._urls = _base_urls(base_url)
        self._endpoints = [_Endpoint(u, redact_url(u)) for u in self._urls]
        self.api_key_env = api_key_env
        self.max_concurrency = int(32 * len(self._urls) if max_concurrency is None
                                   else max_concurrency)
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.batch_size = 1
        self.timeout = float(timeout)
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.cache_namespace = cache_namespace
        self.structured_output = structured_output
        self.supports_json_schema = structured_output != "none"
        self.strict_schema = strict_schema
        self.max_tokens_field = max_tokens_field
        self.extra_body = dict(extra_body or {})
        self.merge_system = merge_system
        self.cooldown_s = cooldown_s
        self.failures_before_rest = failures_before_rest
        self._rr = itertools.count()
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._slots: asyncio.Queue[int] | None = None
        self.transport = transport
        if unreachable_s <= 0:
            raise ConfigError(f"unreachable_s must be positive, got {unreachable_s}")
        self.unreachable_s = float(unreachable_s)
        self._down_since: float | None = None

    # -- identity ---------------------------------------------------------------------
    @property
    def endpoints(self) -> list[str]:
        """The base URLs, without credentials."""
        return [e.label for e in self._endpoints]

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per endpoint: requests served, in flight, consecutive failures, resting."""
        now = time.monotonic()
        return [{"endpoint": e.label, "served": e.served, "in_flight": e.in_flight,
                 "failures": e.failures, "resting": e.rest_until > now}
                for e in self._endpoints]

    def cache_identity(self) -> dict[str, Any]:
        group: Any = self.cache_namespace or sorted(self.endpoints)
        ident: dict[str, Any] = {"endpoint": group}
        if self.extra_body:
            ident["extra_body"] = self.extra_body
        return ident

    # -- plumbing ---------------------------------------------------------------------
    def _ensure_client(self) -> tuple[Any, asyncio.Queue[int]]:
        # Connection pools and queues belong to one event loop; run_sync may run several
        # loops in turn, so rebuild them when the loop changes.
        loop = asyncio.get_running_loop()
        if (self._client is None or self._loop is not loop or self._slots is None
                or self._client not in _open_transports()):
            self._client = make_transport(self.transport, self.max_concurrency, self.timeout)
            # A slot per request in flight: bounds concurrency like a semaphore and tells
            # the transport which connection pool to use.
            self._slots = asyncio.Queue()
            for i in range(self.max_concurrency):
                self._slots.put_nowait(i)
            self._loop = loop
        return self._client, self._slots

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
        self._slots = None

    def _mask(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        if key and len(key) >= 4:
            text = text.replace(key, "***")
        for url, ep in zip(self._urls, self._endpoints, strict=True):
            text = text.replace(url, ep.label)
        return text

    def _pick(self, avoid: _Endpoint | None) -> _Endpoint:
        now = time.monotonic()
        eps = self._endpoints
        start = next(self._rr) % len(eps)
        order = eps[start:] + eps[:start]
        awake = [e for e in order if e.rest_until <= now]
        if avoid is not None and len(awake) > 1:
            awake = [e for e in awake if e is not avoid]
        if not awake:  # everyone rests: use the one that wakes first
            return min(order, key=lambda e: e.rest_until)
        return min(awake, key=lambda e: e.in_flight)

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [dict(m) for m in request.messages]
        if self.merge_system:
            messages = merge_system(messages)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self.max_tokens_field: request.max_tokens,
            "temperature": request.temperature,
        }
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.logprobs:
            body["logprobs"] = True
            if request.top_logprobs:
                body["top_logprobs"] = request.top_logprobs
        if request.json_schema is not None:
            schema = dict(request.json_schema)
            if self.structured_output in ("response_format", "both"):
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": schema,
                                    "strict": self.strict_schema},
                }
            if self.structured_output in ("guided_json", "both"):
                body["guided_json"] = schema
        body.update(self.extra_body)
        if request.extra:
            body.update(request.extra)
        return body

    # -- calls ------------------------------------------------------------------------
    async def _post(self, client: Any, slot: int, ep: _Endpoint, body: dict[str, Any]
                    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            status, resp_headers, raw = await client.post(
                slot, f"{ep.url}/chat/completions", json.dumps(body).encode(), headers)
        except TransportTimeout as exc:
            raise _Transient(f"timed out after {self.timeout:g}s ({exc})") from None
        except TransportFailure as exc:
            raise _Transient(f"connection failed ({self._mask(str(exc)) or 'dropped'})",
                             unreachable=True) from None
        if status == 200:
            try:
                return dict(json.loads(raw))
            except (ValueError, TypeError):
                raise _Transient("the server sent a malformed JSON body") from None
        detail = self._mask(raw[:300].decode("utf-8", "replace").strip())
        if status in RETRY_STATUS:
            raise _Transient(f"HTTP {status}: {detail}",
                             parse_retry_after(resp_headers.get("retry-after")))
        if status in (401, 403):
            raise BackendError(
                f"{ep.label} refused the credentials (HTTP {status}): {detail}",
                hint=f"set ${self.api_key_env} to a valid API key",
            )
        if status == 404:
            raise BackendError(
                f"{ep.label}/chat/completions or model {self.model!r} not found "
                f"(HTTP 404): {detail}",
                hint="check --base-url (it usually ends in /v1) and the model name",
            )
        low = detail.lower()
        if status == 400 and "system" in low and "role" in low and not self.merge_system:
            raise _SystemRoleRejected(detail)
        raise _Rejected(f"HTTP {status}: {detail}")

    async def _one(self, request: ChatRequest) -> ChatResult:
        client, slots = self._ensure_client()
        body = self._body(request)
        last: _Endpoint | None = None
        attempts = 0
        slot = await slots.get()
        try:
            while True:
                attempts += 1
                ep = self._pick(last)
                ep.in_flight += 1
                t0 = time.perf_counter()
                try:
                    data = await self._post(client, slot, ep, body)
                    ep.failures = 0
                    ep.served += 1
                    self._down_since = None
                    return _parse(data, attempts, time.perf_counter() - t0)
                except _SystemRoleRejected:
                    if not any(m["role"] == "system" for m in request.messages):
                        return ChatResult.failure("HTTP 400: system role rejected", attempts)
                    self.merge_system = True
                    body = self._body(request)
                    continue
                except _Rejected as exc:
                    return ChatResult.failure(f"{ep.label}: {exc}", attempts)
                except _Transient as exc:
                    ep.failures += 1
                    if len(self._endpoints) > 1 and ep.failures >= self.failures_before_rest:
                        ep.rest_until = time.monotonic() + self.cooldown_s
                    left = self._unreachable_left(ep, exc)
                    if attempts > self.retry.max_retries:
                        return ChatResult.failure(
                            f"{ep.label}: gave up after {attempts} tries: {exc}", attempts)
                    last = ep
                    wait = self.retry.delay(attempts, exc.retry_after, self._rng)
                    if left is not None:  # look again when the window closes
                        wait = min(wait, left + 0.05)
                finally:
                    ep.in_flight -= 1
                await asyncio.sleep(wait)
        finally:
            slots.put_nowait(slot)

    def _unreachable_left(self, ep: _Endpoint, exc: _Transient) -> float | None:
        """Seconds left before an unreachable server stops the run (``None``: it answers).

        Raises :class:`BackendError` once no request has succeeded for ``unreachable_s``
        and the servers cannot be reached.
        """
        if not exc.unreachable:
            return None
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            # Said at once (stderr by default), not only when the run gives up.
            _log.warning("%s: cannot reach %s (%s); retrying, and stopping if no request "
                         "succeeds within %gs", self.spec, ", ".join(self.endpoints), exc,
                         self.unreachable_s)
        down = now - self._down_since
        if down >= self.unreachable_s:
            where = ", ".join(self.endpoints)
            raise BackendError(
                f"{self.spec}: no request succeeded for {down:.0f}s, the server cannot be "
                f"reached ({where}); last error: {exc}",
                hint="is the server running at that URL? Completed results are saved; run "
                "the same command again to resume")
        return self.unreachable_s - down

    async def ping(self) -> None:
        """One small request per endpoint, without retries, before a run pays for work.

        Raises:
            BackendError: no endpoint can be reached, or one refuses the credentials or
                does not know the model (HTTP 401, 403, 404).
        """
        client, slots = self._ensure_client()
        body = self._body(ChatRequest.from_prompt("Reply with OK.", max_tokens=1))
        errors = []
        slot = await slots.get()
        try:
            for ep in self._endpoints:
                try:
                    await self._post(client, slot, ep, body)
                    return
                except (_Transient, _Rejected) as exc:
                    # A busy (429, 503) or picky (400) server is up: only failing to reach
                    # every endpoint is a reason to stop.
                    if not getattr(exc, "unreachable", False):
                        return
                    errors.append(f"{ep.label}: {exc}")
        finally:
            slots.put_nowait(slot)
        raise BackendError(f"{self.spec} cannot be reached: {'; '.join(errors)}",
                           hint="start the server, or check --base-url / the judge's "
                           "base_url; nothing was generated yet")

    async def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        if not requests:
            return []
        if len(requests) == 1:
            return [await self._one(requests[0])]
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._one(r)) for r in requests]
        except* BackendError as group:
            raise group.exceptions[0] from None
        return [t.result() for t in tasks]


def _open_transports() -> Any:
    return _OPEN_TRANSPORTS


class _SystemRoleRejected(_Rejected):
    """HTTP 400 that names the system role: the served template has none."""


def _parse(data: dict[str, Any], attempts: int, latency: float) -> ChatResult:
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content") or ""
    except (KeyError, IndexError, TypeError):
        return ChatResult.failure(f"unexpected response shape: {str(data)[:200]}", attempts)
    usage = data.get("usage") or {}
    lp = None
    raw_lp = choice.get("logprobs")
    if isinstance(raw_lp, dict) and raw_lp.get("content") is not None:
        lp = [
            {
                "token": t.get("token"),
                "logprob": t.get("logprob"),
                "top": {a.get("token"): a.get("logprob") for a in t.get("top_logprobs") or []},
            }
            for t in raw_lp["content"]
        ]
    return ChatResult(
        text=text,
        usage=Usage(int(usage.get("prompt_tokens") or 0),
                    int(usage.get("completion_tokens") or 0)),
        logprobs=lp,
        finish_reason=choice.get("finish_reason"),
        attempts=attempts,
        latency_s=latency,
    )
