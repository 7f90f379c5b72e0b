"""The persistent LLM call cache and usage accounting, stored in the workspace.

Cache key
    sha256 over the backend kind, the backend's :meth:`~Backend.cache_identity` (model,
    weights file, endpoint group) and the request's payload: messages, max_tokens,
    temperature, top_p, seed, sample_index, json_schema, logprobs, stop and extra
    parameters. Timeouts, concurrency, retries and which replica served a call are not in
    it: they do not change what the model says.

Durability
    Results are written by one background thread that commits, in one transaction, every
    result queued since its last commit (group commit, at most one commit per
    ``CacheWriter.interval``, 50 ms by default, since each commit costs milliseconds of CPU
    whatever its size). A call counts as *completed* once its row is committed; a process
    killed with SIGKILL loses only results that had arrived but were not yet committed
    (those of the last ~50 ms), and a restarted run makes exactly those calls again. Usage
    counters (``llm_usage``) are committed every 2 s and on every flush, so a SIGKILL may
    also lose up to 2 s of accounting, never a result. Ctrl-C, errors and normal returns flush the queue
    first, so they lose nothing.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from valueflow.errors import WorkspaceError
from valueflow.llm._types import Backend, ChatRequest, ChatResult, Usage, canonical_json
from valueflow.workspace import Migration, Workspace, register_migrations

__all__ = ["CacheRow", "CacheWriter", "LLMCache", "UsageDelta", "cache_key"]

COMPONENT = "llm"

register_migrations(
    COMPONENT,
    [
        Migration(
            1,
            """
            CREATE TABLE IF NOT EXISTS llm_cache (
                key VARCHAR PRIMARY KEY,
                backend VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                identity JSON NOT NULL,
                request JSON NOT NULL,
                text VARCHAR NOT NULL,
                finish_reason VARCHAR,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                logprobs JSON,
                latency_s DOUBLE,
                run_id VARCHAR,
                created_at TIMESTAMP NOT NULL
            );
            CREATE TABLE IF NOT EXISTS llm_usage (
                backend VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                calls BIGINT NOT NULL DEFAULT 0,
                cache_hits BIGINT NOT NULL DEFAULT 0,
                failures BIGINT NOT NULL DEFAULT 0,
                retries BIGINT NOT NULL DEFAULT 0,
                prompt_tokens BIGINT NOT NULL DEFAULT 0,
                completion_tokens BIGINT NOT NULL DEFAULT 0,
                updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (backend, model)
            )
            """,
            "LLM call cache and per-model usage accounting",
        )
    ],
)

_CACHE_COLUMNS = ("key", "backend", "model", "identity", "request", "text", "finish_reason",
                  "prompt_tokens", "completion_tokens", "logprobs", "latency_s", "run_id",
                  "created_at")
#: Parameter types of the insert (JSON columns are cast from text by DuckDB).
_CACHE_TYPES = {"prompt_tokens": "INTEGER", "completion_tokens": "INTEGER",
                "latency_s": "DOUBLE", "created_at": "TIMESTAMP"}
_CACHE_TYPES.update({c: "VARCHAR" for c in _CACHE_COLUMNS if c not in _CACHE_TYPES})
_USAGE_FIELDS = ("calls", "cache_hits", "failures", "retries", "prompt_tokens",
                 "completion_tokens")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def cache_key(kind: str, identity_json: str, request_json: str) -> str:
    """The cache key (32 hex digits) of a request on a backend."""
    h = hashlib.sha256(f"v1\n{kind}\n{identity_json}\n{request_json}".encode())
    return h.hexdigest()[:32]


@dataclass
class CacheRow:
    """One completed call, ready to be committed."""

    key: str
    backend: str
    model: str
    identity: str
    request: str
    result: ChatResult
    run_id: str | None = None


@dataclass
class UsageDelta:
    """Counts to add to a backend/model's usage totals."""

    backend: str
    model: str
    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: UsageDelta) -> None:
        for f in _USAGE_FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def as_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in _USAGE_FIELDS}


class LLMCache:
    """The ``llm_cache`` and ``llm_usage`` tables of a workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        workspace.ensure_schema(COMPONENT)

    @staticmethod
    def keys_for(backend: Backend, requests: Sequence[ChatRequest]
                 ) -> tuple[str, list[str], list[str]]:
        """``(identity_json, keys, request_jsons)`` for ``requests`` on ``backend``."""
        ident = canonical_json({"model": backend.model, **backend.cache_identity()})
        reqs = [canonical_json(r.payload()) for r in requests]
        return ident, [cache_key(backend.kind, ident, rj) for rj in reqs], reqs

    def get_many(self, keys: Iterable[str]) -> dict[str, ChatResult]:
        """Cached results for those of ``keys`` that are present."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, ChatResult] = {}
        select = ("SELECT c.key, c.text, c.finish_reason, c.prompt_tokens, "
                  "c.completion_tokens, c.logprobs FROM llm_cache c ")
        for start in range(0, len(wanted), 20000):
            part = wanted[start:start + 20000]
            cur = self.workspace.cursor()
            try:
                if len(part) <= 256:  # a parameter list beats a join here
                    rows = cur.execute(select + f"WHERE c.key IN ({', '.join('?' * len(part))})",
                                       part).fetchall()
                else:  # one list parameter, unnested and joined: no pyarrow on the hot path
                    rows = cur.execute(select + "JOIN (SELECT unnest(?::VARCHAR[]) AS k) w "
                                       "ON c.key = w.k", [part]).fetchall()
            finally:
                cur.close()
            for key, text, finish, pt, ct, lp in rows:
                found[key] = ChatResult(
                    text=text, usage=Usage(pt or 0, ct or 0),
                    logprobs=json.loads(lp) if lp else None, cached=True,
                    finish_reason=finish, attempts=0)
        return found

    def write(self, rows: Sequence[CacheRow], usage: Iterable[UsageDelta]) -> None:
        """Commit ``rows`` and add ``usage`` to the totals, in one transaction.

        Rows whose key is already cached (another client in this process wrote it first)
        are skipped.
        """
        import duckdb

        usage = list(usage)
        try:
            self._write(rows, usage, skip_existing=False)
        except duckdb.ConstraintException:
            # A plain INSERT costs a fifth of an ON CONFLICT one, and conflicts are rare
            # (keys were looked up first), so only a failed batch pays for the check.
            self._write(rows, usage, skip_existing=True)

    def _write(self, rows: Sequence[CacheRow], usage: Sequence[UsageDelta],
               skip_existing: bool) -> None:
        now = _now()
        cols: dict[str, list[Any]] = {c: [] for c in _CACHE_COLUMNS}
        for r in rows:
            res = r.result
            values = (r.key, r.backend, r.model, r.identity, r.request, res.text,
                      res.finish_reason, res.usage.prompt_tokens, res.usage.completion_tokens,
                      json.dumps(res.logprobs) if res.logprobs is not None else None,
                      res.latency_s, r.run_id, now)
            for c, v in zip(_CACHE_COLUMNS, values, strict=True):
                cols[c].append(v)
        with self.workspace.transaction() as con:
            if rows:
                # One list parameter per column, unnested side by side: as fast as an Arrow
                # table for group-commit batches, and no pyarrow import in a run's first
                # second.
                con.execute(f"INSERT INTO llm_cache ({', '.join(_CACHE_COLUMNS)}) SELECT "
                            + ", ".join(f"unnest(?::{_CACHE_TYPES[c]}[])" for c in _CACHE_COLUMNS)
                            + (" ON CONFLICT DO NOTHING" if skip_existing else ""),
                            [cols[c] for c in _CACHE_COLUMNS])
            for u in usage:
                con.execute(
                    "INSERT INTO llm_usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (backend, model) DO UPDATE SET "
                    + ", ".join(f"{f} = llm_usage.{f} + EXCLUDED.{f}" for f in _USAGE_FIELDS)
                    + ", updated_at = EXCLUDED.updated_at",
                    [u.backend, u.model, *(getattr(u, f) for f in _USAGE_FIELDS), now],
                )

    # -- inspection -------------------------------------------------------------------
    def stats(self) -> list[dict[str, Any]]:
        """Per backend/model: cached entries, their tokens and size, plus lifetime usage."""
        cached = self.workspace.execute(
            "SELECT backend, model, count(*), sum(prompt_tokens), sum(completion_tokens), "
            "sum(length(request) + length(text)), min(created_at), max(created_at) "
            "FROM llm_cache GROUP BY backend, model").fetchall()
        usage = {(r[0], r[1]): r[2:] for r in self.workspace.execute(
            f"SELECT backend, model, {', '.join(_USAGE_FIELDS)} FROM llm_usage").fetchall()}
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for b, m, n, pt, ct, size, first, last in cached:
            out[(b, m)] = {"backend": b, "model": m, "entries": int(n),
                           "cached_prompt_tokens": int(pt or 0),
                           "cached_completion_tokens": int(ct or 0),
                           "bytes": int(size or 0), "first": first, "last": last}
        for (b, m), vals in usage.items():
            row = out.setdefault((b, m), {"backend": b, "model": m, "entries": 0,
                                          "cached_prompt_tokens": 0,
                                          "cached_completion_tokens": 0, "bytes": 0,
                                          "first": None, "last": None})
            row.update({f: int(v) for f, v in zip(_USAGE_FIELDS, vals, strict=True)})
        for row in out.values():
            for f in _USAGE_FIELDS:
                row.setdefault(f, 0)
        return sorted(out.values(), key=lambda r: (r["backend"], r["model"]))

    def count(self, backend: str | None = None, model: str | None = None) -> int:
        where, params = _filter(backend, model)
        row = self.workspace.execute(f"SELECT count(*) FROM llm_cache{where}", params).fetchone()
        return int(row[0]) if row else 0

    def clear(self, backend: str | None = None, model: str | None = None) -> int:
        """Delete cached entries (all, or one backend's / model's); returns how many."""
        n = self.count(backend, model)
        where, params = _filter(backend, model)
        with self.workspace.transaction() as con:
            con.execute(f"DELETE FROM llm_cache{where}", params)
        return n


def _filter(backend: str | None, model: str | None) -> tuple[str, list[str]]:
    conds, params = [], []
    if backend:
        conds.append("backend = ?")
        params.append(backend)
    if model:
        conds.append("model = ?")
        params.append(model)
    return (" WHERE " + " AND ".join(conds) if conds else ""), params


_STOP = object()


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)


class CacheWriter:
    """Commits queued results from a background thread (group commit).

    :meth:`put` never blocks the event loop; :meth:`flush` waits until everything queued
    before it is committed and re-raises a write failure.
    """

    def __init__(self, cache: LLMCache, max_batch: int = 5000, interval: float = 0.05
                 ) -> None:
        self.cache = cache
        self.max_batch = max_batch
        self.interval = interval
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self.commits = 0
        self.rows_written = 0
        self._thread = threading.Thread(target=self._loop, name="valueflow-cache-writer",
                                        daemon=True)
        self._thread.start()

    def put(self, row: CacheRow | None, usage: UsageDelta) -> None:
        """Queue a result (``None`` for a failure or a hit: usage only)."""
        self._q.put((row, usage))

    def _collect(self, last_commit: float) -> list[Any]:
        """Wait for work, then gather more until ``interval`` has passed since the last
        commit (each commit costs milliseconds of CPU whatever its size), a flush is
        asked for, or ``max_batch`` items are queued."""
        items = [self._q.get()]
        deadline = last_commit + self.interval
        while len(items) < self.max_batch and not isinstance(items[-1], _Flush) \
                and items[-1] is not _STOP:
            wait = deadline - time.monotonic()
            try:
                items.append(self._q.get(timeout=wait) if wait > 0 else self._q.get_nowait())
            except queue.Empty:
                break
        return items

    def _loop(self) -> None:
        last_commit = last_usage = 0.0
        usage: dict[tuple[str, str], UsageDelta] = {}
        while True:
            items = self._collect(last_commit)
            rows: list[CacheRow] = []
            flushes, stop = [], False
            for it in items:
                if it is _STOP:
                    stop = True
                elif isinstance(it, _Flush):
                    flushes.append(it)
                else:
                    row, u = it
                    if row is not None:
                        rows.append(row)
                    acc = usage.setdefault((u.backend, u.model), UsageDelta(u.backend, u.model))
                    acc.add(u)
            # Usage counters ride along every few seconds (and on flush): an upsert costs
            # as much as the row insert, and a lost second of counters harms no result.
            now = time.monotonic()
            with_usage = bool(usage) and (flushes or stop or now - last_usage >= 2.0)
            if rows or with_usage:
                last_commit = now
                try:
                    self.cache.write(rows, usage.values() if with_usage else ())
                    self.commits += 1
                    self.rows_written += len(rows)
                    if with_usage:
                        usage, last_usage = {}, now
                except BaseException as exc:  # reported by flush()
                    self._error = exc
            for f in flushes:
                f.done.set()
            if stop:
                return

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything queued so far is committed."""
        if not self._thread.is_alive():
            if self._error is not None:
                raise WorkspaceError(f"could not save LLM results: {self._error}")
            return
        marker = _Flush()
        self._q.put(marker)
        marker.done.wait(timeout)
        if self._error is not None:
            err, self._error = self._error, None
            raise WorkspaceError(f"could not save LLM results to the workspace: {err}",
                                 hint="is the disk full or the workspace read-only?")

    def close(self) -> None:
        """Commit what is queued and stop the thread."""
        if self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join()
        if self._error is not None:
            err, self._error = self._error, None
            raise WorkspaceError(f"could not save LLM results to the workspace: {err}")
