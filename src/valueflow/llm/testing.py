"""A local OpenAI-compatible chat server with injectable faults, for tests and benchmarks.

It speaks enough of ``POST /v1/chat/completions`` (HTTP/1.1, keep-alive) to drive the
real ``openai/`` backend: latency, 429s, 5xx, dropped connections and slow responses can
be injected per test, and it records every request it receives. Use it to test a setup
without a network::

    with FakeOpenAIServer(latency=0.05) as server:
        backend = get_backend("openai/fake", base_url=server.url)

Run ``python -m valueflow.llm.testing --latency 0.1`` to serve from another process; it
prints its base URL on the first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeOpenAIServer", "Fault"]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}


@dataclass
class Fault:
    """One injected misbehaviour.

    Attributes:
        kind: ``"status"`` (answer with ``status``), ``"drop"`` (close the connection
            without answering) or ``"slow"`` (wait ``delay`` seconds, then answer normally).
        status: HTTP status for ``"status"`` faults.
        delay: Extra seconds for ``"slow"`` faults.
        retry_after: ``Retry-After`` header (seconds) sent with a status fault.
        times: How many requests it hits (then it is used up).
        match: Only requests whose last user message contains this text (``None``: any).
        message: Error text sent with a status fault.
    """

    kind: str = "status"
    status: int = 500
    delay: float = 0.0
    retry_after: float | None = None
    times: int = 1
    match: str | None = None
    message: str | None = None


@dataclass
class _Record:
    body: dict[str, Any]
    headers: dict[str, str]
    prompt: str
    at: float = field(default_factory=time.monotonic)


def _last_user(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            return str(m.get("content", ""))
    return ""


class FakeOpenAIServer:
    """An OpenAI chat-completions server on 127.0.0.1, run in a background thread.

    Args:
        latency: Seconds every response waits (a model's generation time).
        respond: ``respond(body) -> str`` makes the answer text (default: ``"echo: "`` plus
            the last user message; with a JSON schema, ``{"echo": ...}`` as JSON).
        api_key: If set, requests must carry ``Authorization: Bearer <api_key>`` (else 401).
        model: If set, other model names get a 404.
        rates: Random faults per request, e.g. ``{"429": 0.1, "500": 0.05, "drop": 0.05}``.
        seed: Seed for the random faults.
        port: Port to listen on (0: a free one).
        first_logprobs: ``first_logprobs(body) -> {token: logprob}`` gives the first
            token's alternatives when a request asks for ``top_logprobs`` (at most that
            many are sent); by default they are the token itself and ``alt0``, ``alt1`` ...
    """

    def __init__(
        self,
        latency: float = 0.0,
        respond: Callable[[dict[str, Any]], str] | None = None,
        *,
        api_key: str | None = None,
        model: str | None = None,
        rates: dict[str, float] | None = None,
        seed: int = 0,
        port: int = 0,
        record: bool = True,
        first_logprobs: Callable[[dict[str, Any]], dict[str, float]] | None = None,
    ) -> None:
        self.latency = latency
        self.respond = respond
        self.api_key = api_key
        self.model = model
        self.rates = dict(rates or {})
        self.port = port
        self.record = record
        self.first_logprobs = first_logprobs
        self.requests: list[_Record] = []
        self.counts: Counter[str] = Counter()
        """Requests received per prompt (last user message)."""
        self.completed = 0
        """Responses fully sent with status 200."""
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    # -- control ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def add_fault(self, fault: Fault | None = None, **kwargs: Any) -> None:
        """Inject a fault (a :class:`Fault` or its fields as keywords)."""
        with self._lock:
            self._faults.append(dataclasses.replace(fault) if fault else Fault(**kwargs))

    def reset(self) -> None:
        """Forget recorded requests, counts and pending faults."""
        with self._lock:
            self.requests.clear()
            self.counts.clear()
            self._faults.clear()
            self.completed = 0
            self.max_in_flight = 0

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._serve_forever, name="fake-openai",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection, then the thread."""
        loop = self._loop
        if loop is not None and self._server is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._server = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve_forever(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # -- protocol ---------------------------------------------------------------------
    def _take_fault(self, prompt: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.times > 0 and (f.match is None or f.match in prompt):
                    f.times -= 1
                    return f
            for kind, p in self.rates.items():
                if self._rng.random() < p:
                    return Fault("drop") if kind == "drop" else Fault("status", int(kind))
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, *_ = [*lines[0].split(" "), "", ""]
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (ln.partition(":") for ln in lines[1:] if ln)}
                body_bytes = await reader.readexactly(int(headers.get("content-length", 0)))
                if not await self._respond(method, path, headers, body_bytes, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(self, method: str, path: str, headers: dict[str, str], raw: bytes,
                       writer: asyncio.StreamWriter) -> bool:
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            await self._send(writer, 404, {"error": {"message": f"no route {path}"}})
            return True
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            await self._send(writer, 400, {"error": {"message": "invalid JSON"}})
            return True
        prompt = _last_user(body)
        with self._lock:
            if self.record:
                self.requests.append(_Record(body, headers, prompt))
            self.counts[prompt] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
                await self._send(writer, 401, {"error": {"message": "invalid API key"}})
                return True
            if self.model is not None and body.get("model") != self.model:
                await self._send(writer, 404, {"error": {
                    "message": f"model {body.get('model')!r} does not exist"}})
                return True
            fault = self._take_fault(prompt)
            if self.latency:
                await asyncio.sleep(self.latency)
            if fault is not None:
                if fault.kind == "drop":
                    writer.transport.abort()
                    return False
                if fault.kind == "slow":
                    await asyncio.sleep(fault.delay)
                else:
                    extra = ({"Retry-After": f"{fault.retry_after:g}"}
                             if fault.retry_after is not None else {})
                    msg = fault.message or f"injected {fault.status}"
                    await self._send(writer, fault.status, {"error": {"message": msg}}, extra)
                    return True
            await self._send(writer, 200, self._completion(body, prompt))
            with self._lock:
                self.completed += 1
            return True
        finally:
            with self._lock:
                self.in_flight -= 1

    def _completion(self, body: dict[str, Any], prompt: str) -> dict[str, Any]:
        structured = body.get("response_format") or body.get("guided_json")
        if self.respond is not None:
            text = self.respond(body)
        elif structured:
            text = json.dumps({"echo": prompt})
        else:
            text = f"echo: {prompt}"
        limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or 10**9)
        words = text.split(" ")
        finish = "stop"
        if len(words) > limit:
            text, finish = " ".join(words[:limit]), "length"
            words = words[:limit]
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish,
                                  "message": {"role": "assistant", "content": text}}
        if body.get("logprobs"):
            n = int(body.get("top_logprobs") or 0)
            choice["logprobs"] = {"content": [
                {"token": w, "logprob": -0.1 * (i + 1),
                 "top_logprobs": [{"token": w, "logprob": -0.1 * (i + 1)}]
                 + [{"token": f"alt{j}", "logprob": -2.0 - j} for j in range(max(0, n - 1))]}
                for i, w in enumerate(words)]}
            if self.first_logprobs is not None and choice["logprobs"]["content"]:
                alts = sorted(self.first_logprobs(body).items(), key=lambda kv: -kv[1])[:n]
                choice["logprobs"]["content"][0]["top_logprobs"] = [
                    {"token": t, "logprob": lp} for t, lp in alts]
        n_prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "choices": [choice],
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": len(words),
                          "total_tokens": n_prompt + len(words)}}

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any],
                    extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                "Content-Type: application/json", f"Content-Length: {len(data)}",
                "Connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()


def _main() -> None:  # pragma: no cover - exercised by the benchmark
    ap = argparse.ArgumentParser(description="Serve a fake OpenAI chat-completions API.")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args()
    server = FakeOpenAIServer(latency=args.latency, port=args.port, record=False).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    _main()
