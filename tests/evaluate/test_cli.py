"""``valueflow score`` end to end with the simulated judge, and its one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from valueflow.cli import cli
from valueflow.errors import ConfigError, DataError, UnknownNameError


def run(*args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture
def files(tmp_path, synthetic):
    anchors = tmp_path / "anchors.parquet"
    synthetic["anchors"].to_parquet(anchors)
    truth = tmp_path / "truth.csv"
    pd.DataFrame({"text": list(synthetic["truth"]),
                  "intensity": list(synthetic["truth"].values())}).to_csv(truth, index=False)
    inp = tmp_path / "in.jsonl"
    pd.DataFrame({"id": range(len(synthetic["texts"])), "text": synthetic["texts"],
                  "value": ["benevolence"] * 12 + ["care_harm"] * 12}).to_json(
        inp, orient="records", lines=True)
    return {"anchors": str(anchors), "truth": str(truth), "input": str(inp), "dir": tmp_path}


def _sim(files, *extra: str) -> list[str]:
    return ["--judge", "sim", "--sim-truth", files["truth"], "--sim-beta", "2",
            "--vidb", files["anchors"], *extra]


@pytest.mark.parametrize("estimator", ["bayes", "reference"])
def test_score_cli_writes_output(tmp_workspace, files, synthetic, estimator) -> None:
    out = files["dir"] / "scores.csv"
    run("score", files["input"], "--value", "benevolence", "--value", "mft:care_harm",
        *_sim(files), "--k", "5", "--m", "3", "--design", "bucket", "--estimator", estimator,
        "--out", str(out))
    df = pd.read_csv(out)
    assert len(df) == 48 and {"id", "text", "value", "intensity", "low", "high", "n_windows",
                              "n_failures"} <= set(df.columns)
    assert (df["n_windows"] == 3).all()
    bene = df[df["value"] == "schwartz:benevolence"]
    assert bene["intensity"].corr(pd.Series(synthetic["latent"], index=bene.index)) > 0.85


def test_score_cli_value_column_and_json(tmp_workspace, files) -> None:
    out = run("score", files["input"], "--value-column", "value", *_sim(files), "--k", "4",
              "--m", "2", "--json")
    rows = json.loads(out[out.index("["):])
    assert [r["value"] for r in rows] == ["schwartz:benevolence"] * 12 + ["mft:care_harm"] * 12


def test_dry_run_spends_nothing(tmp_workspace, files) -> None:
    out = run("score", files["input"], "--value", "benevolence", *_sim(files), "--dry-run",
              "--json", "--design", "random")
    cost = json.loads(out[out.index("{"):])
    assert cost["windows"] == 24 * 3 and cost["calls"] == 0  # a simulated judge costs nothing
    from valueflow.evaluate import load_scores

    assert load_scores(tmp_workspace).empty


def test_example_file_is_shipped() -> None:
    from valueflow.cli._score import example_path

    df = pd.read_csv(example_path())
    assert len(df) >= 20 and df["text"].str.len().min() > 40


def _fails(exc: type[Exception] | tuple[type[Exception], ...], match: str, *args: str
           ) -> None:
    with pytest.raises(exc, match=match):
        CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_score_cli_errors_write_nothing(tmp_workspace, files, tmp_path) -> None:
    out = tmp_path / "never.csv"
    sim = _sim(files, "--out", str(out))
    no_text = tmp_path / "notext.csv"
    no_text.write_text("response\nhello\n")
    _fails(DataError, "no column 'text'", "score", str(no_text), "--value", "benevolence", *sim)
    empty = tmp_path / "empty.csv"
    empty.write_text("text\nhello\n\n\"\"\n")
    _fails(DataError, "empty text", "score", str(empty), "--value", "benevolence", *sim)
    _fails(UnknownNameError, "did you mean schwartz:benevolence", "score", files["input"],
           "--value", "benevolense", *sim)
    _fails(DataError, "no anchors for ross:fidelity", "score", files["input"], "--value",
           "fidelity", *sim)
    _fails(ConfigError, "only 120 usable anchor", "score", files["input"], "--value",
           "benevolence", *sim, "--k", "500")
    _fails(DataError, "does not exist", "score", str(tmp_path / "missing.csv"), "--value",
           "benevolence", *sim)
    corrupt = tmp_path / "bad.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    _fails(DataError, "cannot read", "score", str(corrupt), "--value", "benevolence", *sim)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\nCaf\u00e9 owner gave free meals\n".encode("cp1252"))
    _fails(DataError, "not UTF-8 text", "score", str(latin), "--value", "benevolence", *sim)
    short_truth = tmp_path / "short.csv"
    short_truth.write_text("text,intensity\nresponse number 0,1\n")
    _fails(DataError, "truth table lacks", "score", files["input"], "--value", "benevolence",
           "--judge", "sim", "--sim-truth", str(short_truth), "--vidb", files["anchors"])
    _fails(ConfigError, "needs --sim-truth", "score", files["input"], "--value", "benevolence",
           "--judge", "sim")
    _fails(ConfigError, "--value or --value-column, not both", "score", files["input"],
           "--value", "benevolence", "--value-column", "value", *sim)
    _fails((ConfigError, DataError), r"\.docx", "score", files["input"], "--value",
           "benevolence", *_sim(files, "--out", str(tmp_path / "x.docx")))
    assert not out.exists()


def test_published_style_anchor_file_with_stray_rows(files, tmp_path):
    """A per-value file with only text and final_rating, one missing rating and a repeated
    row: the bad rows are left out and said so; the sim truth reads final_rating too."""
    import numpy as np

    anchors = pd.read_parquet(files["anchors"])
    bene = anchors[anchors["value"] == "schwartz:benevolence"]
    vidb = bene.rename(columns={"intensity": "final_rating"})[["text", "final_rating"]]
    vidb = pd.concat([vidb, vidb.iloc[[0]]], ignore_index=True)
    vidb.loc[1, "final_rating"] = np.nan
    path = tmp_path / "Benevolence_pvq_flag_aggregated.csv"
    vidb.to_csv(path, index=False)
    truth = pd.read_csv(files["truth"]).rename(columns={"intensity": "final_rating"})
    truth_path = tmp_path / "truth_fr.csv"
    truth.to_csv(truth_path, index=False)
    res = CliRunner().invoke(cli, [
        "score", files["input"], "--value", "benevolence", "--judge", "sim", "--sim-truth",
        str(truth_path), "--vidb", str(path), "--m", "2", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "left out: 1 row(s) with missing intensity, 1 row(s) with repeated text" in res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 24 and all(r["n_windows"] == 2 for r in rows)
