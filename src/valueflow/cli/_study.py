"""``valueflow study``: studies of judges and methods."""

from __future__ import annotations

import sys
from typing import Any

import click

from valueflow.cli._common import (
    LLMFlags,
    echo_json,
    json_option,
    llm_options,
    open_cli_workspace,
    read_sim_truth,
)

STUDY_FILES = ("scores.csv", "metrics.csv", "judge_stability.png")
"""The files ``study judges`` writes into its --out folder."""


@click.group()
def study() -> None:
    """Studies of judges and methods."""


@study.command("judges")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True),
              help="Texts with reference intensities: a file with text, value and intensity "
              "(or final_rating), or a folder of per-value files named after their value.")
@click.option("--value", "data_value", default=None,
              help="The value of every --data row, when the file has no value column.")
@click.option("--intensity-column", default=None,
              help="Reference intensity column of --data [intensity, final_rating, rating].")
@click.option("--judge", "judges", multiple=True, required=True,
              help="Judge spec (an LLM such as openai/<model>, or sim/<beta>); repeatable.")
@click.option("--paraphrases", type=int, default=3, show_default=True,
              help="Wordings of each prompt to try.")
@click.option("--vidb", "vidb_source", default="auto", show_default=True,
              help="Anchors for the ranking method: auto, seed, workspace or a file.")
@click.option("--k", "k", type=int, default=6, show_default=True, help="Window size.")
@click.option("--m", "m", type=int, default=3, show_default=True, help="Windows per text.")
@click.option("--design", type=click.Choice(["adaptive", "bucket", "random"]),
              default="adaptive", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="judge-study",
              show_default=True, help="Folder for scores.csv, metrics.csv and the plot.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sim-truth", type=click.Path(dir_okay=False), default=None,
              help="Latent intensities for sim judges (default: the references and anchors).")
@click.option("--sim-noise", type=float, default=2.0, show_default=True,
              help="Rating noise of sim judges.")
@llm_options
@click.option("--no-progress", is_flag=True)
@click.option("--overwrite", is_flag=True,
              help="Replace the files of an earlier study in the --out folder.")
@click.option("--dry-run", is_flag=True,
              help="Print the judge calls and tokens the study would spend, call nothing.")
@json_option
def judges_(data_path: str, data_value: str | None, intensity_column: str | None,
            judges: tuple[str, ...], paraphrases: int, vidb_source: str,
            k: int, m: int, design: str, out_dir: str, seed: int, sim_truth: str | None,
            sim_noise: float, llm: LLMFlags, no_progress: bool, overwrite: bool,
            dry_run: bool, as_json: bool) -> None:
    """Judge stability of ranking vs rating: variance and range across judges, sign flips,
    change under prompt paraphrase, sign and pairwise accuracy against the reference.
    """
    from valueflow.evaluate import METRICS, PAPER_TABLE, plot_judge_stability, study_judges
    from valueflow.tables import check_output_folder, write_table
    from valueflow.vidb import load_vidb

    if not dry_run:
        check_output_folder(out_dir, STUDY_FILES, overwrite=overwrite)
    data = load_vidb(data_path, value=data_value, intensity_column=intensity_column)
    truth = read_sim_truth(sim_truth) if sim_truth is not None else None
    opts = _judge_options(judges, llm)
    if dry_run:
        from valueflow.evaluate import estimate_study_cost

        with open_cli_workspace() as ws:
            cost = estimate_study_cost(data, list(judges), paraphrases=paraphrases,
                                       vidb=vidb_source, k=k, m=m,
                                       design=design,  # type: ignore[arg-type]
                                       workspace=ws, seed=seed, judge_options=opts)
        if as_json:
            echo_json({"dry_run": True, "plan": cost.to_dict(orient="records"),
                       "calls": int(cost["calls"].sum()) if len(cost) else 0})
            return
        for r in cost.itertuples(index=False):
            click.echo(f"{r.judge} wording {r.paraphrase} {r.method}: {r.calls} calls "
                       f"({r.cached} cached), ~{r.prompt_tokens} prompt tokens, at most "
                       f"{r.max_completion_tokens} completion tokens")
        total = int(cost["calls"].sum()) if len(cost) else 0
        click.echo(f"in all {total} judge calls (simulated judges cost none); adaptive "
                   "ranking is estimated with strata windows; re-asks not counted")
        return
    with open_cli_workspace() as ws:
        scores, metrics = study_judges(
            data, list(judges), paraphrases=paraphrases, vidb=vidb_source, k=k, m=m,
            design=design,  # type: ignore[arg-type]
            workspace=ws, seed=seed, progress=not no_progress and sys.stderr.isatty(),
            sim_truth=truth, sim_noise=sim_noise, judge_options=opts)
    missing = int(scores["score"].isna().sum())
    if missing and missing == len(scores):
        _incomplete(scores, missing)  # nothing usable: no files
    out = check_output_folder(out_dir, STUDY_FILES, overwrite=True)  # still writable
    write_table(scores, out / "scores.csv")
    write_table(metrics.reset_index(), out / "metrics.csv")
    plot = plot_judge_stability(metrics, out / "judge_stability.png")
    if as_json:
        echo_json({"metrics": metrics.reset_index().to_dict(orient="records"),
                   "paper": PAPER_TABLE, "files": [str(out / "scores.csv"),
                                                   str(out / "metrics.csv"), str(plot)]})
        if missing:
            _incomplete(scores, missing)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Judge stability (paper values in brackets)")
    table.add_column("metric")
    for method in metrics.index:
        table.add_column(str(method), justify="right")
    pct = {"sign_flip_rate", "sign_accuracy", "pairwise_accuracy"}
    for metric in METRICS:
        cells = []
        for method in metrics.index:
            v, p = float(metrics.loc[method, metric]), PAPER_TABLE.get(str(method), {}).get(metric)
            fmt = (lambda x: f"{100 * x:.1f}%") if metric in pct else (lambda x: f"{x:.2f}")
            cells.append(f"{fmt(v) if v == v else '-'}" + (f" [{fmt(p)}]" if p is not None else ""))
        table.add_row(metric, *cells)
    Console().print(table)
    click.echo(f"wrote {out / 'scores.csv'}, {out / 'metrics.csv'} and {plot}", err=True)
    if missing:
        _incomplete(scores, missing)


def _judge_options(judges: tuple[str, ...], llm: LLMFlags) -> dict[str, Any]:
    """The LLM flags as options every LLM judge of the study shares; a flag no judge of the
    study can use is refused rather than ignored."""
    from valueflow.errors import ConfigError

    llm_specs = [j for j in judges if j != "local" and j != "sim" and not j.startswith("sim/")]
    if not llm_specs:
        if llm.given():
            raise ConfigError(f"{llm.given()[0]} applies to LLM judges; this study has none",
                              hint="drop it, or add a judge such as --judge openai/<model>")
        return {}
    options = [llm.backend_options(j) for j in llm_specs]  # each judge checks the flags
    opts: dict[str, Any] = {"backend_options": options[0]} if options[0] else {}
    if llm.max_concurrency is not None:
        opts["max_concurrency"] = llm.max_concurrency
    return opts


def _incomplete(scores: Any, missing: int) -> None:
    """Exit 3 when some judge scores are missing (the metrics leave them out), 4 when all."""
    from valueflow.errors import IncompleteRunError, RunFailedError

    last = scores.attrs.get("last_error") or "no judge error was reported"
    hint = ("answers that worked are cached; fix the cause and run the same command again "
            "to ask the judges again for the rest")
    if missing == len(scores):
        raise RunFailedError(f"no judge gave a usable score ({missing} of {len(scores)}; "
                             f"nothing written); last judge error: {last}", hint=hint)
    raise IncompleteRunError(f"{missing} of {len(scores)} judge scores are missing and left "
                             f"out of the metrics; last judge error: {last}", hint=hint)
