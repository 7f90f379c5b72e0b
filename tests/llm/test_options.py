"""Command flags to backend options: one place, the same for every command."""

from __future__ import annotations

import pytest

from tests.conftest import run_main
from valueflow.errors import ConfigError
from valueflow.llm import backend_options


def test_server_flags_reach_openai_backends_and_a_fleet_stays_a_list():
    opts = backend_options("openai/m", base_url=("http://a/v1", "http://b/v1"),
                           api_key_env="MY_KEY", timeout=5.0, max_concurrency=4)
    assert opts == {"base_url": ["http://a/v1", "http://b/v1"], "api_key_env": "MY_KEY",
                    "timeout": 5.0, "max_concurrency": 4}
    assert backend_options("openai/m", base_url="http://a/v1")["base_url"] == ["http://a/v1"]
    assert backend_options("openai/m") == {}
    # other backends get their concurrency from the client, not the constructor
    assert backend_options("llamacpp/smollm2", max_concurrency=2) == {}


@pytest.mark.parametrize("flag,kwargs", [("--base-url", {"base_url": ["http://a/v1"]}),
                                         ("--api-key-env", {"api_key_env": "K"}),
                                         ("--timeout", {"timeout": 3.0})])
def test_a_server_flag_for_a_local_backend_is_one_line(flag, kwargs):
    with pytest.raises(ConfigError, match=f"{flag} applies to openai/ models .*not "
                       "llamacpp/x.gguf"):
        backend_options("llamacpp/x.gguf", **kwargs)


def test_score_with_a_local_llm_and_a_base_url_is_refused_in_one_line(tmp_path, capsys):
    inp = tmp_path / "in.csv"
    inp.write_text("text\nI help my friend move.\n")
    status = run_main("score", str(inp), "--value", "benevolence", "--judge",
                      "llamacpp/model.gguf", "--base-url", "http://127.0.0.1:9/v1")
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert err.startswith("Error: --base-url applies to openai/ models")


def test_steer_run_takes_a_fleet_for_its_served_models(tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    assert run_main("steer", "init", str(cfg)) == 0
    # the example steers llamacpp/smollm2 only: a server flag has nothing to apply to
    assert run_main("steer", "run", str(cfg), "--base-url", "http://a/v1", "--dry-run") == 2
    assert "applies to openai/ models, and this run has none" in capsys.readouterr().err


def test_steer_run_puts_the_fleet_and_server_flags_on_its_served_models(tmp_path):
    from valueflow.cli._common import LLMFlags
    from valueflow.cli._steer import _apply_llm_flags
    from valueflow.steer import apply_overrides, example_config_path, load_config

    cfg = apply_overrides(load_config(example_config_path("small")),
                          models=["openai/m", "llamacpp/smollm2"])
    _apply_llm_flags(cfg, LLMFlags(base_url=("http://a/v1", "http://b/v1"), timeout=9.0))
    served, local = cfg.models
    assert served.base_url == ["http://a/v1", "http://b/v1"]
    assert served.options == {"timeout": 9.0}
    assert local.base_url is None and local.options == {}
