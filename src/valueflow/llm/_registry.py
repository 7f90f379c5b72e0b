"""Backends by spec string (``openai/gpt-4o-mini``, ``llamacpp/smollm2`` ...), built lazily.

The registry maps a prefix to ``"module:Class"``; the module is imported only when a spec
with that prefix is used, so optional dependencies (llama-cpp-python, transformers, vLLM)
are needed only by those who use them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from valueflow.errors import BackendError, ConfigError, UnknownNameError, close_matches
from valueflow.llm._types import Backend

__all__ = ["DEFAULT_MODEL", "available_backends", "get_backend", "register_backend"]

DEFAULT_MODEL = "llamacpp/smollm2"
"""The offline default: SmolLM2-135M-Instruct through llama.cpp."""

_REGISTRY: dict[str, str | Callable[..., Backend]] = {
    "openai": "valueflow.llm._openai:OpenAIBackend",
    "llamacpp": "valueflow.llm._llamacpp:LlamaCppBackend",
    "hf": "valueflow.llm._hf:HFBackend",
    "vllm": "valueflow.llm._vllm:VLLMBackend",
    "scripted": "valueflow.llm._scripted:ScriptedBackend",
}

_EXAMPLES = {
    "openai": "openai/gpt-4o-mini  (with --base-url for vLLM, Ollama, ...)",
    "llamacpp": "llamacpp/smollm2 or llamacpp/path/to/model.gguf",
    "hf": "hf/path/to/model-folder or hf/path/to/model.gguf",
    "vllm": "vllm/Qwen/Qwen2.5-7B-Instruct",
}


def register_backend(prefix: str, factory: str | Callable[..., Backend]) -> None:
    """Add a backend: ``factory`` is ``"module:Class"`` or a callable ``(model, **options)``."""
    if not prefix or "/" in prefix:
        raise ConfigError(f"a backend prefix must be a non-empty word, got {prefix!r}")
    _REGISTRY[prefix] = factory


def available_backends() -> list[str]:
    """The registered prefixes."""
    return sorted(_REGISTRY)


def get_backend(spec: str, **options: Any) -> Backend:
    """Build the backend named by ``spec``: ``<prefix>/<model>``.

    Args:
        spec: ``openai/<model>``, ``llamacpp/<gguf path|smollm2>``, ``hf/<folder|gguf>``,
            ``vllm/<model>`` or ``scripted`` (tests only).
        **options: Passed to the backend's constructor (``base_url=``, ``max_concurrency=``,
            ``outputs=`` ...).

    Raises:
        UnknownNameError: the prefix is not registered (close matches are listed).
        BackendError: the backend's optional dependency is missing (the message names the
            ``pip install`` extra).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("a model spec is required", hint=f"e.g. {DEFAULT_MODEL}")
    prefix, _, model = spec.strip().partition("/")
    if prefix not in _REGISTRY:
        near = close_matches(prefix, _REGISTRY)
        hint = f"did you mean {', '.join(near)}?" if near else (
            f"use one of: {', '.join(available_backends())}")
        raise UnknownNameError(f"unknown LLM backend {prefix!r} in {spec!r}", hint=hint)
    if not model and prefix != "scripted":
        raise ConfigError(f"model spec {spec!r} names no model",
                          hint=f"e.g. {_EXAMPLES.get(prefix, prefix + '/<model>')}")
    factory = _REGISTRY[prefix]
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # pragma: no cover - our modules import lazily
            raise BackendError(f"cannot load the {prefix} backend: {exc}") from exc
        factory = getattr(module, attr)
    _check_options(prefix, factory, options)
    return factory(model, **options)


def _check_options(prefix: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    """A one-line error for an option the backend does not take (not a TypeError later)."""
    import inspect

    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: let it judge for itself
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n, p in params.items() if n != "model" and n != "self"
             and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                            inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for name in options:
        if name not in known:
            near = close_matches(name, known)
            raise ConfigError(
                f"the {prefix} backend does not take the option {name!r}",
                hint=(f"did you mean {near[0]!r}? " if near else "")
                + f"it takes: {', '.join(sorted(known))}")
