from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from valueflow.cli import cli
from valueflow.errors import ConfigError, DataError
from valueflow.evaluate import METRICS, stability_metrics


def _table(method: str, ref: np.ndarray, fn, judges=3, paraphrases=3, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(judges):
        for p in range(paraphrases):
            scores = fn(ref, j, p, rng)
            for i, (s, r) in enumerate(zip(scores, ref, strict=True)):
                rows.append({"method": method, "judge": f"j{j}", "paraphrase": p,
                             "text": f"t{i}", "value": "schwartz:benevolence", "score": s,
                             "reference": r})
    return pd.DataFrame(rows)


REF = np.linspace(-9, 9, 40)


def test_perfect_judges_are_perfectly_stable() -> None:
    m = stability_metrics(_table("ranking", REF, lambda r, j, p, rng: r.copy()))
    row = m.loc["ranking"]
    assert row["mean_variance"] == pytest.approx(0, abs=1e-12) and row["mean_max_range"] == 0
    assert row["sign_flip_rate"] == 0 and row["paraphrase_change"] == 0
    assert row["sign_accuracy"] == 1 and row["pairwise_accuracy"] == 1
    assert row["n_judges"] == 3 and row["n_texts"] == 40


def test_noisy_rater_is_worse_than_consistent_ranker() -> None:
    ranker = _table("ranking", REF, lambda r, j, p, rng: r + rng.normal(0, 0.5, r.size))
    # raters disagree by a judge-specific offset and react to wording
    rater = _table("rating", REF, lambda r, j, p, rng: r + 2.0 * (j - 1) + 1.5 * p
                   + rng.normal(0, 3.0, r.size))
    m = stability_metrics(pd.concat([ranker, rater]))
    for metric in ("mean_variance", "mean_max_range", "sign_flip_rate", "paraphrase_change"):
        assert m.loc["ranking", metric] < m.loc["rating", metric], metric
    for metric in ("sign_accuracy", "pairwise_accuracy"):
        assert m.loc["ranking", metric] > m.loc["rating", metric], metric
    # known values without noise: offsets -2, 0, 2 across judges, +1.5 per paraphrase
    exact = stability_metrics(_table("rating", REF, lambda r, j, p, rng: r + 2.0 * (j - 1)
                                     + 1.5 * p)).loc["rating"]
    assert exact["mean_max_range"] == pytest.approx(4.0)
    assert exact["mean_variance"] == pytest.approx(8 / 3)
    assert exact["paraphrase_change"] == pytest.approx(2.25)  # mean of 1.5 and 3.0


def test_metric_edge_cases() -> None:
    reversed_ = stability_metrics(_table("rating", REF, lambda r, j, p, rng: -r, judges=1,
                                         paraphrases=1))
    assert reversed_.loc["rating", "pairwise_accuracy"] == 0
    assert reversed_.loc["rating", "sign_accuracy"] == 0
    assert np.isnan(reversed_.loc["rating", "mean_variance"])  # one judge: no spread
    ties = stability_metrics(_table("rating", REF, lambda r, j, p, rng: np.zeros_like(r)))
    assert ties.loc["rating", "pairwise_accuracy"] == 0.5
    failed = _table("rating", REF, lambda r, j, p, rng: np.where(r > 0, np.nan, r))
    assert stability_metrics(failed).loc["rating", "n_failed"] == 9 * 20
    with pytest.raises(DataError, match="no column 'reference'"):
        stability_metrics(failed.drop(columns="reference"))


def test_study_cli_with_simulated_judges(tmp_workspace, tmp_path) -> None:
    from valueflow.vidb import load_seed

    data = load_seed(["benevolence"]).head(16)[["text", "value", "intensity"]]
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    out = tmp_path / "study"
    res = CliRunner().invoke(cli, ["study", "judges", "--data", str(path), "--judge", "sim/1",
                                   "--judge", "sim/3", "--paraphrases", "2", "--k", "4",
                                   "--m", "2", "--design", "bucket", "--out", str(out),
                                   "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output[res.output.index("{"):])
    metrics = {r["method"]: r for r in payload["metrics"]}
    assert set(metrics) == {"ranking", "rating"} and set(METRICS) <= set(metrics["ranking"])
    assert metrics["ranking"]["n_judges"] == 2 and metrics["ranking"]["n_paraphrases"] == 2
    assert (out / "judge_stability.png").stat().st_size > 1000
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 2 * 2 * 2 * 16
    with pytest.raises(ConfigError, match="paraphrases must be"):
        CliRunner().invoke(cli, ["study", "judges", "--data", str(path), "--judge", "sim",
                                 "--paraphrases", "9"], catch_exceptions=False)


def test_study_reads_the_published_per_value_layout(tmp_workspace, tmp_path) -> None:
    """A folder of `{value}_{theory}_flag_aggregated.csv` files with `text, final_rating`."""
    from valueflow.vidb import load_seed

    folder = tmp_path / "final_ratings"
    folder.mkdir()
    for name, value in (("Power_pvq", "power"), ("fidelity_duty", "fidelity")):
        rows = load_seed([value]).head(6)
        rows.rename(columns={"intensity": "final_rating"})[["text", "final_rating"]].to_csv(
            folder / f"{name}_flag_aggregated.csv", index=False)
    out = tmp_path / "study"
    res = CliRunner().invoke(cli, ["study", "judges", "--data", str(folder), "--judge", "sim/1",
                                   "--judge", "sim/2", "--paraphrases", "1", "--k", "4",
                                   "--m", "1", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["value"]) == {"schwartz:power", "ross:fidelity"}
    assert len(scores) == 2 * 2 * 12  # judges x methods x texts


def test_study_dry_run_counts_calls_and_calls_nothing(tmp_workspace, tmp_path) -> None:
    from valueflow.vidb import load_seed

    data = load_seed(["benevolence"]).head(7)[["text", "value", "intensity"]]
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    # Nothing listens on port 9: any real call would fail the command.
    res = CliRunner().invoke(cli, ["study", "judges", "--data", str(path), "--judge",
                                   "openai/judge-a", "--judge", "sim/1", "--base-url",
                                   "http://127.0.0.1:9/v1", "--paraphrases", "2", "--m", "3",
                                   "--design", "bucket", "--dry-run", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    # Per wording: 7 texts x 3 windows (ranking) + 7 ratings; the simulated judge is free.
    assert plan["calls"] == 2 * (7 * 3 + 7)
    assert {(r["judge"], r["method"]) for r in plan["plan"]} == {
        ("openai/judge-a", "ranking"), ("openai/judge-a", "rating")}
    assert not (tmp_path / "judge-study").exists()
