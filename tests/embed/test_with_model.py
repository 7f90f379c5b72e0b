"""Tests that load the bundled MiniLM (marked ``model``; they run in CI)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("sentence_transformers")

from valueflow.cli._main import cli
from valueflow.embed import load_hives
from valueflow.errors import DataError

pytestmark = pytest.mark.model

TEXTS = [
    "I stayed up all night to look after my sick sister.",
    "Whatever.",
    "The committee postponed the vote on the new budget until next spring.",
    "He lied to his best friend to get the promotion they both wanted.",
    "Tea.",
]


def test_embed_cli_keeps_row_order(tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": range(5), "body": TEXTS}).to_csv(src, index=False)
    out = tmp_path / "o.npy"
    res = CliRunner().invoke(cli, ["embed", str(src), "--out", str(out), "--text-column",
                                   "body", "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    emb = np.load(out)
    model = load_hives()
    assert emb.shape == (5, 384)
    for i, t in enumerate(TEXTS):  # encoded alone, each text gives its own row back
        assert np.allclose(emb[i], model.encode([t])[0], atol=1e-4)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # The shipped head changes the space (it is not the base encoder).
    assert not np.allclose(emb, load_hives("base").encode(TEXTS), atol=1e-3)


def test_embed_cli_bad_column(tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"txt": TEXTS}).to_csv(src, index=False)
    res = CliRunner().invoke(cli, ["embed", str(src), "--out", str(tmp_path / "o.npy")])
    assert isinstance(res.exception, DataError)
    assert "no column 'text'" in res.exception.message and "txt" in res.exception.hint


def test_profile_cli_json_and_files(tmp_path):
    src = tmp_path / "in.jsonl"
    pd.DataFrame({"text": TEXTS, "who": ["a", "a", "b", "b", "b"]}).to_json(
        src, orient="records", lines=True)
    out, plot = tmp_path / "p.csv", tmp_path / "p.png"
    res = CliRunner().invoke(cli, ["profile", str(src), "--group-column", "who", "--json",
                                   "--out", str(out), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)  # stderr may carry the encoder's loading bar
    assert "seed VIDB" in payload["scorer"]
    prof = pd.DataFrame(payload["profile"])
    assert len(prof) == 2 * 32 and set(prof.group) == {"a", "b"}
    assert set(prof[prof.group == "b"].n_texts) == {3}
    known = prof.dropna(subset=["intensity"])  # values no text bears on are unknown (NaN)
    assert len(known) >= 3 and (known.evidence >= 0.5).all()
    a = known[known.group == "a"].set_index("value")
    assert a.loc["schwartz:benevolence", "intensity"] > 2  # looking after a sick sister
    assert (prof[prof.intensity.isna()].evidence < 0.5).all()
    assert (known.low <= known.intensity + 1e-9).all()
    assert (known.intensity <= known.high + 1e-9).all()
    assert pd.read_csv(out).shape[0] == 64 and plot.stat().st_size > 1000


def test_profile_cli_learns_a_vidb_file(tmp_path, monkeypatch):
    import valueflow.embed._shipped as shipped
    from valueflow.vidb import load_seed

    # 20 seed texts per other value as negatives instead of 150: the same refit path, far
    # fewer texts to encode on a CI machine
    frame_of = shipped.scorer_training_frame
    monkeypatch.setattr(shipped, "scorer_training_frame",
                        lambda *a, **k: frame_of(*a, **k, off_value_texts=20))
    seed = load_seed()
    caring = seed[seed.value == "schwartz:benevolence"].assign(value="benevolence caring")
    caring = caring.sample(n=300, random_state=0)
    vidb = tmp_path / "mine.jsonl"
    caring[["text", "value", "intensity"]].to_json(vidb, orient="records", lines=True)
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(src, index=False)
    res = CliRunner().invoke(cli, ["profile", str(src), "--vidb", str(vidb), "--json",
                                   "--value", "benevolence_caring", "--value", "power"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)  # stderr may carry the encoder's loading bar
    # the user's texts refit the head they are for; the other values keep the shipped heads
    assert "mine.jsonl" in payload["scorer"] and "refitted" in payload["scorer"]
    assert "keep the shipped heads" in payload["scorer"]
    assert [r["value"] for r in payload["profile"]] == ["schwartz:benevolence_caring",
                                                         "schwartz:power"]


def test_hives_cli_train_then_evaluate_on_the_models_own_split(tmp_path):
    from tests.embed.test_evaluate_train import toy_vidb

    vidb = tmp_path / "toy.csv"
    toy_vidb(12).to_csv(vidb, index=False)
    out = tmp_path / "m"
    runner = CliRunner()
    res = runner.invoke(cli, ["hives", "train", "--mode", "head", "--vidb", str(vidb),
                              "--out", str(out), "--epochs", "1", "--epochs-stage2", "1",
                              "--seed", "3",
                              "--holdout", "0.25"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["hives", "evaluate", "--model", str(out), "--vidb", str(vidb),
                              "--json", "--plot", str(tmp_path / "eval.png")])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.stderr  # the split defaults to the one trained with
    assert (tmp_path / "eval.png").stat().st_size > 1000
    metrics = json.loads(res.stdout)["metrics"]
    assert set(metrics) == {"base", str(out)}
    res = runner.invoke(cli, ["hives", "evaluate", "--model", str(out), "--vidb", str(vidb),
                              "--seed", "4", "--json"])
    assert res.exit_code == 0, res.output
    assert "trained with split seed 3 and holdout 0.25" in res.stderr
