"""Backend options from command-line flags: one place that decides which flag reaches which
backend, so every command that calls a model takes the same flags the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from valueflow.errors import ConfigError

__all__ = ["SERVER_OPTIONS", "backend_options"]

SERVER_OPTIONS = {
    "base_url": "--base-url",
    "api_key_env": "--api-key-env",
    "cache_namespace": "--cache-namespace",
    "timeout": "--timeout",
    "max_retries": "--max-retries",
}
"""Options only a server backend (``openai/``) takes, with the flag that sets each."""


def backend_options(
    spec: str,
    *,
    base_url: str | Sequence[str] | None = None,
    api_key_env: str | None = None,
    cache_namespace: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    max_concurrency: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword options for ``get_backend(spec, **options)`` from a command's flags.

    Flags left at ``None`` (or an empty ``base_url``) are not passed, so the backend's
    defaults hold. ``base_url`` may name a fleet (several URLs serving one model); the API
    key is read at call time from the environment variable ``api_key_env`` names.
    ``max_concurrency`` becomes the backend's bound only for ``openai/`` (the bound over
    all endpoints); other backends get it from the client.

    Args:
        spec: The backend spec (``openai/<model>``, ``llamacpp/<file>`` ...).
        base_url, api_key_env, cache_namespace, timeout, max_retries: Server options
            (``openai/`` only).
        max_concurrency: Requests in flight (at least 1).
        extra: Further options as given (``--option KEY=VALUE``); checked by
            :func:`~valueflow.llm.get_backend` against what the backend takes.

    Raises:
        ConfigError: a server option for a backend that is not a server, or a
            concurrency below 1 — one line naming the flag.
    """
    if max_concurrency is not None and max_concurrency < 1:
        raise ConfigError(f"--max-concurrency must be at least 1, got {max_concurrency}")
    if isinstance(base_url, str):
        base_url = [base_url]
    given = {"base_url": list(base_url) if base_url else None, "api_key_env": api_key_env,
             "cache_namespace": cache_namespace, "timeout": timeout,
             "max_retries": max_retries}
    server = {k: v for k, v in given.items() if v is not None}
    is_server = spec.strip().startswith("openai/")
    if server and not is_server:
        flag = SERVER_OPTIONS[next(iter(server))]
        raise ConfigError(f"{flag} applies to openai/ models (a server), not {spec}",
                          hint="drop it, or name the served model as openai/<model>")
    opts: dict[str, Any] = dict(extra or {})
    opts.update(server)
    if is_server and max_concurrency is not None:
        opts.setdefault("max_concurrency", max_concurrency)
    return opts
