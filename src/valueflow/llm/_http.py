"""HTTP transports for the ``openai/`` backend: aiohttp when installed, else httpx.

A judge run keeps a server saturated with hundreds of short requests a second, so the
client's own cost per request matters. aiohttp spends about 0.15 ms of CPU per request;
httpx's connection pool scans every pooled connection for every queued request, which
grows with concurrency, so the httpx transport splits its connections over small pools,
each request holding one *slot* that maps to one pool.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import weakref
from typing import Any, Protocol

from valueflow.errors import ConfigError

__all__ = ["Transport", "TransportFailure", "TransportTimeout", "close_loop_transports",
           "make_transport"]

_POOL_SIZE = 8
_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()


async def close_loop_transports() -> None:
    """Close every transport opened on the running loop (before the loop ends)."""
    loop = asyncio.get_running_loop()
    for t in [t for t in list(_OPEN) if t.loop is loop]:
        await t.aclose()


class TransportTimeout(Exception):
    """The call did not finish within the timeout."""


class TransportFailure(Exception):
    """The connection failed or was dropped."""


class Transport(Protocol):
    async def post(self, slot: int, url: str, body: bytes, headers: dict[str, str]
                   ) -> tuple[int, dict[str, str], bytes]:
        """POST ``body``; returns status, lower-cased headers and the response body."""
        ...

    async def aclose(self) -> None: ...


def _proxy_configured() -> bool:
    names = ("http_proxy", "https_proxy", "all_proxy")
    return any(os.environ.get(n) or os.environ.get(n.upper()) for n in names)


class _AiohttpTransport:
    def __init__(self, concurrency: int, timeout: float) -> None:
        import aiohttp

        self.loop = asyncio.get_running_loop()
        _OPEN.add(self)
        self._aiohttp = aiohttp
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency + 4, limit_per_host=0,
                                           keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 15.0)),
            # Honouring the environment makes aiohttp look up proxies and .netrc in a
            # thread for every request; do it only where a proxy is configured.
            trust_env=_proxy_configured(),
        )

    async def post(self, slot: int, url: str, body: bytes, headers: dict[str, str]
                   ) -> tuple[int, dict[str, str], bytes]:
        try:
            async with self._session.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, data
        except TimeoutError as exc:
            raise TransportTimeout(type(exc).__name__) from None
        except self._aiohttp.ClientError as exc:
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        _OPEN.discard(self)
        await self._session.close()


class _HttpxTransport:
    def __init__(self, concurrency: int, timeout: float) -> None:
        import httpx

        self.loop = asyncio.get_running_loop()
        _OPEN.add(self)
        self._httpx = httpx
        n_pools = max(1, -(-concurrency // _POOL_SIZE))
        per_pool = -(-concurrency // n_pools)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool,
                              keepalive_expiry=60.0)
        self._pools = [httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(
            timeout, connect=min(timeout, 15.0))) for _ in range(n_pools)]

    async def post(self, slot: int, url: str, body: bytes, headers: dict[str, str]
                   ) -> tuple[int, dict[str, str], bytes]:
        httpx = self._httpx
        try:
            resp = await self._pools[slot % len(self._pools)].post(url, content=body,
                                                                   headers=headers)
        except httpx.TimeoutException as exc:
            raise TransportTimeout(type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None
        return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content

    async def aclose(self) -> None:
        _OPEN.discard(self)
        await asyncio.gather(*(p.aclose() for p in self._pools))


def make_transport(kind: str, concurrency: int, timeout: float) -> Any:
    """A transport: ``"aiohttp"``, ``"httpx"`` or ``"auto"`` (aiohttp if installed)."""
    if kind == "auto":
        kind = "aiohttp" if importlib.util.find_spec("aiohttp") is not None else "httpx"
    if kind == "aiohttp":
        return _AiohttpTransport(concurrency, timeout)
    if kind == "httpx":
        return _HttpxTransport(concurrency, timeout)
    raise ConfigError(f"unknown HTTP transport {kind!r}", hint="use auto, aiohttp or httpx")
