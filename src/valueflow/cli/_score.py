"""``valueflow score``: calibrated value intensities of texts, against VIDB anchors."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
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

EXAMPLE = ("data", "examples", "responses.csv")
"""The example responses shipped with the package (``--example``)."""


def example_path() -> Path:
    """Path of the bundled example file of assistant responses."""
    return Path(str(resources.files("valueflow").joinpath(*EXAMPLE)))


@click.command()
@click.argument("input_path", metavar="INPUT", required=False,
                type=click.Path(dir_okay=False))
@click.option("--value", "values", multiple=True,
              help="Value to score every text against (any spelling); repeatable.")
@click.option("--value-column", default=None,
              help="Score each row against the value named in this column instead.")
@click.option("--judge", default="local", show_default=True,
              help="local (embedded scorer), sim (simulated), or an LLM spec such as "
              "openai/<model>, llamacpp/<path.gguf>, vllm/<model>.")
@click.option("--vidb", "vidb_source", default="auto", show_default=True,
              help="auto (workspace VIDB where it has anchors for a value, else the bundled "
              "seed), seed, workspace, a file with text, value, intensity, or a folder of "
              "per-value files. --judge local refits on it (seed texts fill in values it "
              "lacks; fits are cached).")
@click.option("--intensity-column", default=None, help="Intensity column of a --vidb file.")
@click.option("--text-column", default="text", show_default=True, help="Text column of INPUT.")
@click.option("--k", "k", type=int, default=6, show_default=True,
              help="Window size: the text plus k-1 anchors.")
@click.option("--m", "m", type=int, default=3, show_default=True, help="Windows per text.")
@click.option("--design", type=click.Choice(["adaptive", "bucket", "random"]),
              default="adaptive", show_default=True, help="How anchors are chosen.")
@click.option("--method", type=click.Choice(["ranking", "rating"]), default="ranking",
              show_default=True, help="Rank among anchors, or the rating baseline.")
@click.option("--estimator", type=click.Choice(["bayes", "reference"]), default="bayes",
              show_default=True,
              help="bayes: anchored Plackett-Luce with estimated judge noise and 90% interval; "
              "reference: the paper's reference method (for comparison).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the scores here (CSV, JSONL or Parquet); default: print them.")
@click.option("--example", is_flag=True, help="Score the example responses shipped with "
              "ValueFlow (INPUT is then optional).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of window choice and display order.")
@click.option("--sim-truth", type=click.Path(dir_okay=False), default=None,
              help="--judge sim: table of text,intensity covering the texts and the anchors.")
@click.option("--sim-beta", type=float, default=1.0, show_default=True,
              help="--judge sim: judge sharpness.")
@click.option("--sim-seed", type=int, default=0, show_default=True,
              help="--judge sim: noise seed.")
@llm_options
@click.option("--paraphrase", type=int, default=0, show_default=True,
              help="Which wording of the judge prompt to use.")
@click.option("--no-cache", is_flag=True, help="Do not reuse or store judge answers.")
@click.option("--dry-run", is_flag=True, help="Print the judge calls and tokens, then stop.")
@click.option("--run-id", default=None, help="Name (or resume) the run in the workspace.")
@click.option("--no-progress", is_flag=True, help="No progress display.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@json_option
def score(input_path: str | None, values: tuple[str, ...], value_column: str | None,
          judge: str, vidb_source: str, intensity_column: str | None, text_column: str,
          k: int, m: int, design: str, method: str, estimator: str, out: str | None,
          example: bool, seed: int, sim_truth: str | None, sim_beta: float, sim_seed: int,
          llm: LLMFlags, paraphrase: int,
          no_cache: bool, dry_run: bool, run_id: str | None, no_progress: bool,
          overwrite: bool, as_json: bool) -> None:
    """Score how strongly each text in INPUT expresses a value, from -10 to 10.

    INPUT is a CSV, JSONL or Parquet file with a `text` column; its other columns are
    carried to the output. The output adds value, intensity, low and high (a 90% interval),
    n_windows and n_failures. Judge answers are cached in the workspace: an interrupted
    run resumes where it stopped when the same command is run again.

    Exit status 3: some rows got no intensity (they are written without one and not
    stored); 4: none did, or the judge could not be reached (nothing is written). Failed
    judge calls are never cached: running the command again asks the judge again.

    Example: valueflow score --example --value benevolence
    """
    from valueflow.errors import ConfigError
    from valueflow.evaluate import estimate_score_cost, prepare_score, run_score
    from valueflow.tables import read_table, write_table

    if example and input_path:
        raise ConfigError("give INPUT or --example, not both")
    if not example and not input_path:
        raise ConfigError("no INPUT file", hint="valueflow score FILE --value V, or try "
                          "valueflow score --example --value benevolence")
    if values and value_column:
        raise ConfigError("give --value or --value-column, not both")
    if not values and not value_column:
        raise ConfigError("no value to score", hint="--value benevolence (repeatable), or "
                          "--value-column COLUMN to read each row's value")
    if out is not None:
        from valueflow.tables import check_output
        from valueflow.workspace import default_workspace_path

        # A bad path fails now, not after the judge calls.
        check_output(out, overwrite=overwrite or dry_run, inputs=[
            input_path, sim_truth, str(default_workspace_path()),
            vidb_source if vidb_source not in ("auto", "seed", "workspace", "workspace:all")
            else None])
    if sim_truth is not None and judge != "sim":
        raise ConfigError("--sim-truth is only used with --judge sim")
    if judge in ("local", "sim"):
        # Options only an LLM judge uses would be silently ignored: refuse them instead.
        llm_only = llm.given() + [flag for flag, given in (
            ("--paraphrase", paraphrase != 0), ("--no-cache", no_cache)) if given]
        if llm_only:
            raise ConfigError(f"{llm_only[0]} applies to LLM judges, not to --judge {judge}",
                              hint="drop it, or choose an LLM judge such as "
                              "--judge openai/<model>")
    frame = read_table(example_path() if example else str(input_path))
    judge_options: dict[str, Any] = {"cache": not no_cache, "paraphrase": paraphrase}
    if judge == "sim":
        if sim_truth is None:
            raise ConfigError("--judge sim needs --sim-truth FILE (text,intensity of every "
                              "scored text and anchor)")
        judge_options = {"truth": read_sim_truth(sim_truth), "beta": sim_beta,
                         "seed": sim_seed}
    elif judge != "local":
        judge_options["backend_options"] = llm.backend_options(judge)
        if llm.max_concurrency is not None:
            judge_options["max_concurrency"] = llm.max_concurrency
    else:
        judge_options = {}
    progress = not no_progress and sys.stderr.isatty()
    with open_cli_workspace() as ws:
        job = prepare_score(frame, list(values) or None, judge, vidb_source, k=k, m=m,
                            design=design,  # type: ignore[arg-type]
                            method=method,  # type: ignore[arg-type]
                            estimator=estimator,  # type: ignore[arg-type]
                            value_column=value_column, text_column=text_column,
                            intensity_column=intensity_column, workspace=ws, seed=seed,
                            judge_options=judge_options)
        for vid, pool in job.pools.items():
            click.echo(f"{vid}: {len(pool)} anchors from the {pool.source} VIDB", err=True)
        for note in job.notes:
            click.echo(note, err=True)
        description = getattr(job.judge, "description", None)
        if job.method == "direct" and description:
            # The embedded default must say plainly what it is and what it was trained on.
            click.echo(f"judge {job.judge_name}: {description}", err=True)
        if dry_run:
            cost = estimate_score_cost(job)
            if as_json:
                echo_json(cost)
            elif job.method == "direct":
                n_pairs = sum(len(texts) for _n, _r, texts in job.groups().values())
                click.echo(f"{cost['judge']}: no model calls; {n_pairs} text-value pair(s) "
                           "scored on this machine (the encoder reads ~300 texts/s on 2 cores)")
            else:
                approx = "" if cost["exact"] else " (adaptive: estimated with strata windows)"
                click.echo(f"{cost['judge']}: {cost['windows']} windows, {cost['calls']} judge "
                           f"calls to make ({cost['cached']} cached), about "
                           f"{cost['prompt_tokens']} prompt tokens and at most "
                           f"{cost['max_completion_tokens']} completion tokens{approx}; corrective "
                           "re-asks not counted")
            return
        result = run_score(job, workspace=ws, progress=progress, run_id=run_id)
    failures = int(result["n_failures"].sum())
    status = result.attrs.get("status", "done")
    if status == "failed":
        # Nothing usable: no results file (a table of NaNs would pass for results).
        _raise_incomplete(result)
    if failures:
        click.echo(f"{failures} judge window(s) failed (see n_failures); texts without any "
                   "successful window have no intensity", err=True)
    if out is not None:
        write_table(result, out)
        click.echo(f"wrote {len(result)} scores to {out} (run {result.attrs.get('run_id')})",
                   err=True)
    elif as_json:
        echo_json(result.to_dict(orient="records"))
    else:
        _print_table(result)
    if status != "done":
        _raise_incomplete(result)


def _raise_incomplete(result: Any) -> None:
    """Exit 3 (partial) or 4 (failed) with one line saying why."""
    from valueflow.errors import IncompleteRunError, RunFailedError

    bad = int((~result["intensity"].notna()).sum())
    rid = result.attrs.get("run_id")
    last = result.attrs.get("last_error") or "no judge error was reported"
    hint = ("judge answers that worked are cached; fix the cause and run the same command "
            "again" + (f" (--run-id {rid} replaces this run's stored scores)" if rid else ""))
    if result.attrs.get("status") == "failed":
        raise RunFailedError(f"no text got an intensity ({bad} of {len(result)} rows failed; "
                             f"nothing written); last judge error: {last}", hint=hint,
                             run_id=rid)
    raise IncompleteRunError(f"{bad} of {len(result)} rows have no intensity (run {rid} is "
                             f"recorded as partial); last judge error: {last}", hint=hint,
                             run_id=rid)


def _print_table(df: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    direct = bool((df["method"] == "direct").all())
    multi_value = df["value"].nunique() > 1
    judges = ", ".join(sorted(set(df["judge"].astype(str))))
    table = Table(title=f"value intensity in [-10, 10] (judge: {judges})", title_justify="left")
    table.add_column("text", ratio=1, overflow="fold" if len(df) <= 30 else "ellipsis",
                     no_wrap=len(df) > 30)
    if multi_value:
        table.add_column("value", no_wrap=True)
    table.add_column("intensity", justify="right", no_wrap=True)
    table.add_column("90% interval", justify="right", no_wrap=True)
    if not direct:
        table.add_column("windows", justify="right", no_wrap=True)
        table.add_column("failed", justify="right", no_wrap=True)

    def num(x: float) -> str:
        return f"{x:+.1f}" if x == x else "-"

    for row in df.itertuples(index=False):
        cells = [str(row.text)]
        if multi_value:
            cells.append(str(row.value))
        cells += [num(row.intensity), f"[{num(row.low)}, {num(row.high)}]"]
        if not direct:
            cells += [str(row.n_windows), str(row.n_failures)]
        table.add_row(*cells)
    Console().print(table)
