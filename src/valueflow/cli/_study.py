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


OPINIONQA_FILES = ("alignment.csv", "per_question.csv", "alignment.png")
"""The files ``study opinionqa`` writes into its --out folder."""


@study.command("opinionqa")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True),
              help="OpinionQA data: the release folder (survey subfolders with info.csv and "
              "responses.csv), one survey folder, or a JSON/JSONL file of pre-aggregated "
              "items (question, options, group, distribution).")
@click.option("--model", "model", required=True,
              help="The model to ask (openai/<model>, hf/<folder>, llamacpp/<gguf> ...).")
@click.option("--profiles", "profiles_dir", type=click.Path(exists=True), default=None,
              help="Group profiles: a folder of per-group files, each named after its group "
              "(POLPARTY=Democrat.csv from `valueflow profile --out`, or a prompt in "
              "POLPARTY=Democrat.txt; characters other than letters, digits and . = - _ "
              "become _), or one file for all groups (a profile table with a group column, "
              "or the .json of `valueflow profile --prompt-out`). A group without a profile "
              "runs with its persona only.")
@click.option("--groups", "groups_text", default=None,
              help="Groups as CATEGORY=label, comma-separated (POLPARTY=Democrat,"
              "POLPARTY=Republican) [the groups of --profiles; all groups of an item file].")
@click.option("--questions", type=click.IntRange(min=1), default=None,
              help="Use at most N questions (a seeded choice among those every group has).")
@click.option("--method", type=click.Choice(["auto", "logprobs", "samples"]), default="auto",
              show_default=True,
              help="Read answers from the option letters' log-probabilities, from sampled "
              "answers, or from log-probabilities where the backend gives them.")
@click.option("--samples", type=click.IntRange(min=1), default=10, show_default=True,
              help="Sampled answers per question and condition (when sampling).")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sampling temperature.")
@click.option("--theories", default=None,
              help="Prompts made from profile tables keep only values of these theories "
              "(comma-separated, e.g. schwartz,mft) [all].")
@click.option("--top", type=click.IntRange(min=1), default=None,
              help="Prompts made from profile tables keep the N values of largest absolute "
              "intensity [all].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="opinionqa-study",
              show_default=True, help="Folder for alignment.csv, per_question.csv and the plot.")
@click.option("--seed", type=int, default=0, show_default=True)
@llm_options
@click.option("--no-progress", is_flag=True)
@click.option("--overwrite", is_flag=True,
              help="Replace the files of an earlier study in the --out folder.")
@json_option
def opinionqa_(data_path: str, model: str, profiles_dir: str | None, groups_text: str | None,
               questions: int | None, method: str, samples: int, temperature: float,
               theories: str | None, top: int | None, out_dir: str, seed: int, llm: LLMFlags,
               no_progress: bool, overwrite: bool, as_json: bool) -> None:
    """Group alignment on OpinionQA survey questions, with and without profile prompts.

    OpinionQA (Santurkar et al. 2023) pairs Pew survey questions with the answers of
    demographic groups. Each question is asked with the group's persona ("In terms of political party, you are
    Democrat.") and again with the group's profile prompt added; alignment is
    1 - W1/(K-1) between the model's and the group's answer distributions over the K
    ordered options, averaged over questions with a 90% bootstrap interval. Model calls are
    cached in the workspace: run the same command again to resume.
    """
    from valueflow.llm import get_backend
    from valueflow.steer import (
        OpinionQASettings,
        load_group_profiles,
        load_opinionqa,
        plot_opinionqa,
        resolve_groups,
        split_groups,
        study_opinionqa,
    )
    from valueflow.tables import check_output_folder, write_table

    settings = OpinionQASettings(method=method,  # type: ignore[arg-type]
                                 samples=samples, temperature=temperature,
                                 questions=questions, seed=seed)
    data = load_opinionqa(data_path)
    groups, files, notes = resolve_groups(
        data, split_groups(groups_text) if groups_text else None, profiles_dir)
    keep = [t.strip() for t in theories.split(",") if t.strip()] if theories else None
    prompts = load_group_profiles(files, theories=keep, top=top)
    backend = get_backend(model, **llm.backend_options(model))
    check_output_folder(out_dir, OPINIONQA_FILES, overwrite=overwrite)  # inputs are good
    with open_cli_workspace() as ws:
        result = study_opinionqa(
            data, groups, backend, profiles=prompts, settings=settings, workspace=ws,
            max_concurrency=llm.max_concurrency,
            progress=not no_progress and sys.stderr.isatty(),
            echo=None if as_json else (lambda m: click.echo(m, err=True)))
    notes += result.notes
    from pathlib import Path

    out = Path(out_dir)
    write_table(result.alignment, out / "alignment.csv")
    write_table(result.per_question, out / "per_question.csv")
    plot = plot_opinionqa(result.alignment, out / "alignment.png")
    files_written = [str(out / "alignment.csv"), str(out / "per_question.csv"), str(plot)]
    if as_json:
        echo_json({"alignment": result.alignment.to_dict(orient="records"),
                   "method": result.method, "run_id": result.run_id,
                   "profiles": {g: str(p) for g, p in files.items()}, "notes": notes,
                   "files": files_written})
    else:
        _print_opinionqa(result.alignment, model, result.method)
        for n in notes:
            click.echo(f"note: {n}", err=True)
        click.echo(f"wrote {', '.join(files_written)}", err=True)
    if result.failed:
        from valueflow.errors import IncompleteRunError

        raise IncompleteRunError(
            f"{result.failed} prompts got no usable answer and are left out of the means; "
            f"last error: {result.last_error}",
            hint="answers that worked are cached; fix the cause and run the same command "
            "again (with --overwrite) to ask again for the rest", run_id=result.run_id)


def _print_opinionqa(table: Any, model: str, method: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"OpinionQA group alignment of {model} (answers from {method}; 90% "
              "bootstrap intervals over questions)")
    t.add_column("group", overflow="fold")
    for c in ("questions", "persona", "persona + profile", "difference"):
        t.add_column(c, justify="right")

    def cell(rows: Any, cond: str) -> str:
        r = rows[rows["condition"] == cond]
        if r.empty:
            return "-"
        a, lo, hi = (float(r[c].iloc[0]) for c in ("alignment", "low", "high"))
        if a != a:
            return "n/a"
        sign = "+" if cond == "difference" else ""
        return f"{a:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]"

    for g, rows in table.groupby("group", sort=False):
        n = int(rows["n_questions"].max())
        t.add_row(str(g), str(n), cell(rows, "persona"), cell(rows, "profile"),
                  cell(rows, "difference"))
    Console().print(t)
