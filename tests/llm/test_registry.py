from __future__ import annotations

import importlib.util
import re

import pytest

from valueflow.errors import BackendError, ConfigError, UnknownNameError
from valueflow.llm import ScriptedBackend, available_backends, get_backend, register_backend


def test_unknown_prefix_lists_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown LLM backend 'opneai'.*\n.*openai"):
        get_backend("opneai/gpt-4o")
    with pytest.raises(UnknownNameError, match="use one of: hf, llamacpp, openai"):
        get_backend("zzz/model")


def test_spec_without_model_is_rejected():
    with pytest.raises(ConfigError, match="names no model"):
        get_backend("openai/")
    with pytest.raises(ConfigError, match="a model spec is required"):
        get_backend("")


def test_scripted_needs_outputs_or_fn():
    with pytest.raises(ConfigError, match="exactly one of outputs= or fn="):
        get_backend("scripted")
    b = get_backend("scripted", outputs=["a"])
    assert isinstance(b, ScriptedBackend)
    assert b.spec == "scripted/script"


@pytest.mark.parametrize(("spec", "module", "extra"), [
    ("llamacpp/smollm2", "llama_cpp", "valueflow[local]"),
    ("hf/some/folder", "transformers", "valueflow[hf]"),
    ("vllm/Qwen/Qwen2.5-7B-Instruct", "vllm", "valueflow[vllm]"),
])
def test_missing_optional_dependency_names_the_extra(monkeypatch, spec, module, extra):
    real = importlib.util.find_spec

    def fake(name, *args, **kwargs):
        return None if name == module else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(BackendError, match=re.escape(f"pip install '{extra}'")):
        get_backend(spec)


def test_register_backend_with_a_factory():
    register_backend("echo", lambda model, **kw: ScriptedBackend(model, fn=lambda r: model))
    try:
        assert "echo" in available_backends()
        assert get_backend("echo/abc").model == "abc"
    finally:
        from valueflow.llm import _registry

        _registry._REGISTRY.pop("echo")
    with pytest.raises(ConfigError, match="non-empty word"):
        register_backend("a/b", "x:y")


def test_llamacpp_rejects_missing_file(tmp_path):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    with pytest.raises(ConfigError, match="no GGUF model file"):
        get_backend(f"llamacpp/{tmp_path / 'nope.gguf'}")


def test_openai_base_url_validation(monkeypatch):
    with pytest.raises(ConfigError, match="must start with http"):
        get_backend("openai/m", base_url="localhost:8000/v1")
    monkeypatch.setenv("VALUEFLOW_OPENAI_BASE_URL", "http://a:1/v1, http://b:2/v1/")
    b = get_backend("openai/m")
    assert b.endpoints == ["http://a:1/v1", "http://b:2/v1"]
    assert b.max_concurrency == 64  # 32 per endpoint by default


def test_openai_identity_has_no_secrets_or_credentials(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123456")
    b = get_backend("openai/m", base_url="https://user:pw@example.com/v1?token=abc")
    ident = repr(b.cache_identity()) + repr(b.endpoints)
    assert "sk-secret" not in ident and "pw" not in ident and "token" not in ident
    assert b.cache_identity() == {"endpoint": ["https://example.com/v1"]}
