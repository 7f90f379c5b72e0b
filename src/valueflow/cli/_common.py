"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["LLMFlags", "echo_json", "json_option", "llm_options", "open_cli_workspace",
           "read_sim_truth"]


def json_option(f: F) -> F:
    """``--json``: print machine-readable JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)  # type: ignore[return-value]


def _finite(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def echo_json(obj: Any) -> None:
    """Write ``obj`` as indented, strictly valid JSON to stdout (NaN becomes null)."""
    sys.stdout.write(json.dumps(_finite(obj), indent=2, default=str, ensure_ascii=False,
                                allow_nan=False) + "\n")


def open_cli_workspace(read_only: bool = False) -> Any:
    """Open the workspace chosen by ``--workspace`` / ``$VALUEFLOW_WORKSPACE``."""
    from valueflow.workspace import open_workspace

    return open_workspace(read_only=read_only)


def read_sim_truth(path: str) -> dict[str, float]:
    """A simulated judge's latent intensities (``--sim-truth``): ``{text: intensity}`` from a
    reference table (:func:`valueflow.tables.read_references`). Rows without a number are
    skipped: a text the run needs and the table lacks is reported by name when the judge is
    built."""
    from valueflow.errors import DataError
    from valueflow.tables import read_references

    refs = read_references(path, source=f"--sim-truth {path}", skip_missing=True)
    truth: dict[str, float] = {}
    for t, v in zip(refs["text"], refs["intensity"], strict=True):
        if t in truth and truth[t] != v:
            raise DataError(f"--sim-truth {path} gives the text {t[:50]!r} two intensities")
        truth[t] = float(v)
    return truth


@dataclass(frozen=True)
class LLMFlags:
    """The model-calling flags of a command (see :func:`llm_options`)."""

    base_url: tuple[str, ...] = ()
    api_key_env: str | None = None
    cache_namespace: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    max_concurrency: int | None = None

    def given(self) -> list[str]:
        """The flags given on the command line, as typed (``--base-url`` ...)."""
        return [flag for flag, value in (
            ("--base-url", self.base_url), ("--api-key-env", self.api_key_env),
            ("--cache-namespace", self.cache_namespace), ("--timeout", self.timeout),
            ("--max-retries", self.max_retries),
            ("--max-concurrency", self.max_concurrency)) if value not in (None, ())]

    def backend_options(self, spec: str, extra: dict[str, Any] | None = None
                        ) -> dict[str, Any]:
        """Options for ``get_backend(spec, ...)``; a flag the backend does not take is a
        one-line error (:func:`valueflow.llm.backend_options`)."""
        from valueflow.llm import backend_options

        return backend_options(spec, base_url=self.base_url, api_key_env=self.api_key_env,
                               cache_namespace=self.cache_namespace, timeout=self.timeout,
                               max_retries=self.max_retries,
                               max_concurrency=self.max_concurrency, extra=extra)


_LLM_FLAGS = ("base_url", "api_key_env", "cache_namespace", "timeout", "max_retries",
              "max_concurrency")


def llm_options(f: F) -> F:
    """The flags of every command that calls models, passed to it as ``llm: LLMFlags``.

    ``--base-url`` (repeatable: a fleet serving one model), ``--api-key-env``,
    ``--cache-namespace``, ``--timeout``, ``--max-retries`` (servers) and
    ``--max-concurrency`` (also spelt ``--concurrency``).
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in _LLM_FLAGS}
        flags["base_url"] = tuple(flags["base_url"] or ())
        return f(*args, llm=LLMFlags(**flags), **kwargs)

    options = [
        click.option("--base-url", "base_url", multiple=True,
                     help="OpenAI-compatible server URL for openai/ models; repeat it for a "
                     "fleet serving one model."),
        click.option("--api-key-env", default=None,
                     help="Environment variable holding the API key [OPENAI_API_KEY]."),
        click.option("--cache-namespace", default=None,
                     help="Name the server group in cache keys (keeps hits when fleet URLs "
                     "change)."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Seconds per server call before it is retried."),
        click.option("--max-retries", type=click.IntRange(min=0), default=None,
                     help="Retries of a failed server call."),
        click.option("--max-concurrency", "--concurrency", "max_concurrency",
                     type=click.IntRange(min=1), default=None,
                     help="Model calls in flight (at least 1; default: the backend's)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
