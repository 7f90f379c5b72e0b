from __future__ import annotations

import pytest

from valueflow.errors import ConfigError, UnknownNameError
from valueflow.steer import apply_overrides, example_config_path, load_config


def base(**kw):
    d = {"models": ["scripted"], "values": ["benevolence"], "regimes": ["intensity"]}
    d.update(kw)
    return d


def test_example_config_loads_and_has_the_offline_default():
    cfg = load_config(example_config_path())
    assert [m.spec for m in cfg.models] == ["llamacpp/smollm2"]
    assert cfg.judge.spec == "local"
    assert cfg.resolved_values() == ["schwartz:benevolence", "schwartz:power"]


def test_unknown_value_lists_close_match():
    with pytest.raises(UnknownNameError, match="benevolence"):
        load_config(base(values=["benevolance"]))


def test_bad_level():
    with pytest.raises(ConfigError, match=r"levels: levels must be among \[-2, -1, 0, 1, 2\]"):
        load_config(base(levels=[-2, 3]))


def test_unknown_regime_suggests():
    with pytest.raises(ConfigError, match=r"unknown regime 'intensty'.*did you mean 'intensity'"):
        load_config(base(regimes=["intensty"]))


def test_unknown_field_suggests():
    with pytest.raises(ConfigError, match=r"sampels: unknown field .*did you mean 'samples'"):
        load_config(base(sampels=3))


def test_nested_unknown_field_suggests():
    with pytest.raises(ConfigError, match=r"generation.max_token: unknown field.*'max_tokens'"):
        load_config(base(generation={"max_token": 10}))


def test_regime_needs_its_settings():
    with pytest.raises(ConfigError, match="regime 'pairs' needs"):
        load_config(base(regimes=["pairs"]))
    with pytest.raises(ConfigError, match="one level per value"):
        load_config(base(regimes=["latin_square"],
                         latin_square={"values": ["benevolence", "power", "security"],
                                       "levels": [2, -2]}))
    with pytest.raises(ConfigError, match="need `values`"):
        load_config({"regimes": ["intensity"]})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_win_and_base_url_goes_to_openai_models():
    cfg = load_config(example_config_path())
    out = apply_overrides(cfg, models=["openai/m1"], base_url="http://h:1/v1", judge="sim",
                          queries=2, max_tokens=9)
    assert out.models[0].spec == "openai/m1" and out.models[0].base_url == "http://h:1/v1"
    assert out.judge.spec == "sim" and out.queries.limit == 2
    assert out.generation.max_tokens == 9
    assert cfg.judge.spec == "local"  # the original is untouched
