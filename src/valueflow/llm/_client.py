"""LLMClient: cached, concurrent, resumable generation over any backend."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from valueflow.errors import BackendError, ConfigError
from valueflow.llm._cache import CacheRow, CacheWriter, LLMCache, UsageDelta
from valueflow.llm._http import close_loop_transports
from valueflow.llm._registry import get_backend
from valueflow.llm._types import Backend, ChatRequest, ChatResult
from valueflow.workspace import Workspace

__all__ = ["Estimate", "LLMClient", "run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code, also where an event loop already runs
    (a notebook), in which case it runs on a fresh loop in a worker thread.

    Connection pools opened on the loop are closed before it ends.
    """

    async def main() -> T:
        try:
            return await coro
        finally:
            # No loop is running when the coroutine is closed after an interrupt that
            # escaped the loop: its connections go with the loop then.
            with contextlib.suppress(RuntimeError):
                await close_loop_transports()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


@dataclass(frozen=True)
class Estimate:
    """What :meth:`LLMClient.generate` would spend on a batch (see ``--dry-run``).

    Attributes:
        requests: Requests given.
        unique: Distinct requests (duplicates are generated once).
        cached: Distinct requests already in the cache.
        calls: Calls that would be made (``unique - cached``).
        prompt_tokens: Approximate prompt tokens of those calls (a tokenizer when the
            backend has one loaded, else about 4 characters per token).
        max_completion_tokens: Upper bound on generated tokens (sum of ``max_tokens``).
    """

    backend: str
    requests: int
    unique: int
    cached: int
    calls: int
    prompt_tokens: int
    max_completion_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LLMClient:
    """Generate with a backend: cached per request, concurrent, retried, resumable.

    Args:
        backend: A :class:`Backend` or a spec string for :func:`get_backend`.
        workspace: Where the cache lives. ``None`` keeps a private in-memory cache that
            lives as long as the client.
        cache: Read and write the cache. With ``False`` every request is a call (results
            are still counted in :meth:`stats`).
        max_concurrency: Requests kept in flight (default: the backend's own bound, which
            remains the hard limit).
        run_id: Recorded with every cached row (which run produced it).
        max_consecutive_failures: Stop with :class:`BackendError` after this many requests
            in a row failed after all their retries (a server that is down); completed work
            is kept.

    A request that fails after its retries comes back with ``error`` set and is not
    cached, so running the same batch again retries only the failures.
    """

    def __init__(
        self,
        backend: Backend | str,
        workspace: Workspace | None = None,
        cache: bool = True,
        max_concurrency: int | None = None,
        *,
        run_id: str | None = None,
        max_consecutive_failures: int = 50,
    ) -> None:
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        if max_concurrency is not None and max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency or self.backend.max_concurrency
        self.use_cache = cache
        self._own_workspace = workspace is None
        self.workspace = workspace if workspace is not None else Workspace(":memory:")
        self.cache = LLMCache(self.workspace)
        self.run_id = run_id
        self.max_consecutive_failures = max_consecutive_failures
        self._writer: CacheWriter | None = None
        self._totals = UsageDelta(self.backend.kind, self.backend.model)

    # -- accounting -------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, int]]:
        """This client's counts, keyed by backend spec: calls, cache_hits, failures,
        retries, prompt_tokens, completion_tokens."""
        return {self.backend.spec: self._totals.as_dict()}

    def _writer_(self) -> CacheWriter:
        if self._writer is None:
            self._writer = CacheWriter(self.cache)
        return self._writer

    def estimate(self, requests: Sequence[ChatRequest]) -> Estimate:
        """Calls and tokens :meth:`generate` would spend, without calling anything."""
        _, keys, _ = LLMCache.keys_for(self.backend, requests)
        first: dict[str, ChatRequest] = {}
        for k, r in zip(keys, requests, strict=True):
            first.setdefault(k, r)
        hits = self.cache.get_many(first) if self.use_cache else {}
        todo = [r for k, r in first.items() if k not in hits]
        prompt = 0
        for r in todo:
            for m in r.messages:
                n = self.backend.count_tokens(m["content"])
                prompt += (n if n is not None else math.ceil(len(m["content"]) / 4)) + 4
        return Estimate(self.backend.spec, len(requests), len(first), len(hits), len(todo),
                        prompt, sum(r.max_tokens for r in todo))

    # -- generation -------------------------------------------------------------------
    async def generate(self, requests: Sequence[ChatRequest], progress: bool = True, *,
                       accept: Callable[[int, ChatResult], bool] | None = None
                       ) -> list[ChatResult]:
        """Results for ``requests``, in order.

        Cache hits cost no call; identical requests are generated once. Each result is
        queued for commit as it arrives and the batch is committed before this returns
        (also on errors and Ctrl-C), so a repeated run resumes where this one stopped.

        Args:
            requests: The requests.
            progress: Show a progress bar on an interactive terminal.
            accept: ``accept(i, result) -> bool`` for ``requests[i]``: only answers it
                accepts are cached (a judge passes its parser, so an unreadable answer is
                asked again by a rerun instead of being replayed from the cache). It sees
                successful calls only.
        """
        requests = list(requests)
        if not requests:
            return []
        backend = self.backend
        # Small batches are looked up inline (well under a millisecond); large ones in a
        # thread so the event loop keeps serving other work.
        small = len(requests) <= 64
        if small:
            ident, keys, req_json = LLMCache.keys_for(backend, requests)
        else:
            ident, keys, req_json = await asyncio.to_thread(LLMCache.keys_for, backend, requests)
        slots: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            slots.setdefault(k, []).append(i)
        hits: dict[str, ChatResult] = {}
        if self.use_cache:
            hits = (self.cache.get_many(slots) if small
                    else await asyncio.to_thread(self.cache.get_many, slots))
        results: list[ChatResult | None] = [None] * len(requests)
        for k, res in hits.items():
            for i in slots[k]:
                results[i] = res
        todo = [k for k in slots if k not in hits]
        writer = self._writer_()
        hit_usage = UsageDelta(backend.kind, backend.model, cache_hits=len(hits))
        self._totals.add(hit_usage)
        if hits:
            writer.put(None, hit_usage)

        bar = _Progress(len(slots), backend.spec, enabled=progress)
        bar.advance(len(hits))
        state = _RunState()
        chunk = max(1, backend.batch_size)
        chunks = iter([todo[s:s + chunk] for s in range(0, len(todo), chunk)])
        n_workers = max(1, min(math.ceil(self.max_concurrency / chunk),
                               math.ceil(len(todo) / chunk)))

        wrote = False

        def record(key: str, res: ChatResult) -> None:
            nonlocal wrote
            for i in slots[key]:
                results[i] = res
            delta = UsageDelta(backend.kind, backend.model, calls=res.attempts,
                               retries=max(0, res.attempts - 1))
            if res.ok:
                delta.prompt_tokens = res.usage.prompt_tokens
                delta.completion_tokens = res.usage.completion_tokens
                state.consecutive_failures = 0
                keep = self.use_cache and (accept is None or accept(slots[key][0], res))
                row = CacheRow(key, backend.kind, backend.model, ident,
                               req_json[slots[key][0]], res, self.run_id)
                writer.put(row if keep else None, delta)
                wrote = True
            else:
                delta.failures = 1
                state.consecutive_failures += 1
                state.last_error = res.error
                writer.put(None, delta)
            self._totals.add(delta)
            bar.advance(1)

        async def worker() -> None:
            for part in chunks:
                outs = await backend.generate([requests[slots[k][0]] for k in part])
                if len(outs) != len(part):
                    raise BackendError(f"{backend.spec} returned {len(outs)} results for "
                                       f"{len(part)} requests")
                for k, res in zip(part, outs, strict=True):
                    record(k, res)
                if state.consecutive_failures >= self.max_consecutive_failures:
                    raise BackendError(
                        f"{backend.spec}: {state.consecutive_failures} requests in a row "
                        f"failed; last error: {state.last_error}",
                        hint="completed results are saved; fix the cause and run again "
                        "to resume")

        try:
            if todo:
                try:
                    async with asyncio.TaskGroup() as tg:
                        for _ in range(n_workers):
                            tg.create_task(worker())
                except* BackendError as group:
                    raise group.exceptions[0] from None
        finally:
            bar.close()
            # Synchronous on purpose: it must also finish while the task is being
            # cancelled (Ctrl-C); it takes milliseconds. Hits and failures add only usage
            # counts, which the writer commits in its own time.
            if wrote:
                writer.flush()
        return [r if r is not None else ChatResult.failure("not run") for r in results]

    def generate_sync(self, requests: Sequence[ChatRequest], progress: bool = True
                      ) -> list[ChatResult]:
        """:meth:`generate` from synchronous code."""
        return run_sync(self.generate(requests, progress=progress))

    # -- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Commit pending results and stop the writer (and the private workspace)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._own_workspace:
            self.workspace.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.backend.aclose()
        self.close()


@dataclass
class _RunState:
    consecutive_failures: int = 0
    last_error: str | None = None


class _Progress:
    """A rich progress bar on stderr when it is a terminal; otherwise nothing."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled or not sys.stderr.isatty() or total == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task(label, total=total)
        self._bar.start()

    def advance(self, n: int) -> None:
        if self._bar is not None and n:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
