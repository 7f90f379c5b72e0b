"""``valueflow steer``: run steering experiments and analyse them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import click

from valueflow.cli._common import (
    LLMFlags,
    echo_json,
    json_option,
    llm_options,
    open_cli_workspace,
)


@click.group()
def steer() -> None:
    """Steer models to target value intensities, and analyse how well it worked."""


@steer.command("init")
@click.argument("path", type=click.Path(dir_okay=False), default="steer.yaml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_cmd(path: str, force: bool) -> None:
    """Write a small, documented example config to PATH (default steer.yaml)."""
    from valueflow.errors import ConfigError
    from valueflow.steer import example_config_path

    p = Path(path)
    if p.exists() and not force:
        raise ConfigError(f"{p} exists", hint="pass --force to overwrite it")
    shutil.copyfile(example_config_path("small"), p)
    click.echo(f"wrote {p}; run it with: valueflow steer run {p}")


@steer.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--model", "models", multiple=True,
              help="Model spec(s) to steer instead of the config's (repeatable).")
@llm_options
@click.option("--judge", default=None, help="Judge spec instead of the config's.")
@click.option("--queries", type=int, default=None, help="Use at most this many queries.")
@click.option("--samples", type=int, default=None, help="Samples per prompt.")
@click.option("--max-tokens", type=int, default=None, help="Max tokens per answer.")
@click.option("--dry-run", is_flag=True, help="Print what would be generated and scored, "
              "and the token estimate; call nothing.")
@json_option
def run_cmd(config: str, models: tuple[str, ...], llm: LLMFlags, judge: str | None,
            queries: int | None, samples: int | None, max_tokens: int | None, dry_run: bool,
            as_json: bool) -> None:
    """Run the steering experiment in CONFIG (YAML); resumable: rerun to continue.

    The server flags (--base-url, repeatable for a fleet, --api-key-env, --timeout ...)
    apply to every openai/ model of the run, not to its judge (set those in the config).

    Exit status 3: some answers were not generated or not scored; 4: none could be, or a
    server could not be reached. What failed is not stored: a rerun retries only that.
    """
    from valueflow.steer import apply_overrides, load_config, run_steering

    cfg = apply_overrides(load_config(config), models=list(models) or None, judge=judge,
                          queries=queries, samples=samples, max_tokens=max_tokens)
    _apply_llm_flags(cfg, llm)
    with open_cli_workspace() as ws:
        summary = run_steering(cfg, ws, dry_run=dry_run, progress=not as_json,
                               echo=None if as_json else lambda m: click.echo(m, err=True))
    if as_json:
        echo_json(summary)
        _exit_unless_done(summary)
        return
    click.echo(f"run {summary['run_id']}: {summary['conditions']} conditions × "
               f"{summary['queries']} queries = {summary['trials_per_model']} answers per model")
    for label, info in summary["models"].items():
        if dry_run:
            est = info["estimate"]
            click.echo(f"  {label}: {info['reused']} stored, {est['calls']} calls, "
                       f"~{est['prompt_tokens']} prompt tokens, "
                       f"≤ {est['max_completion_tokens']} completion tokens")
        else:
            click.echo(f"  {label}: {info['generated']} generated, {info['reused']} reused, "
                       f"{info['failed']} failed")
            if info.get("first_error"):
                click.echo(f"    first error: {info['first_error']}", err=True)
    sc = summary.get("scores", {})
    if dry_run:
        click.echo(f"  scoring: up to {sc.get('pairs_upper_bound_per_model')} (answer, value) "
                   f"pairs per model with judge {sc.get('judge')}")
    else:
        failed = f", {sc['failed']} failed" if sc.get("failed") else ""
        click.echo(f"  scores: {sc.get('scored', 0)} new, {sc.get('reused', 0)} reused{failed} "
                   f"(judge {sc.get('judge')}); status {summary['status']}")
        if summary["status"] == "done":
            click.echo("next: valueflow steer analyze   or   valueflow report --out report.html")
        _exit_unless_done(summary)


def _apply_llm_flags(cfg: Any, llm: LLMFlags) -> None:
    """Put the server flags into the options of every openai/ model of ``cfg`` (they win
    over the config); flags no model of the run can use are refused, not ignored."""
    from valueflow.errors import ConfigError

    if not llm.given():
        return
    served = [m for m in cfg.models if m.spec.strip().startswith("openai/")]
    if not served:
        raise ConfigError(f"{llm.given()[0]} applies to openai/ models, and this run has none "
                          f"({', '.join(m.spec for m in cfg.models)})",
                          hint="drop it, or steer a served model: --model openai/<model>")
    for m in served:
        opts = llm.backend_options(m.spec)
        if "base_url" in opts:
            m.base_url = opts.pop("base_url")
        m.options.update(opts)


def _exit_unless_done(summary: dict[str, Any]) -> None:
    """Exit 3 (partial) or 4 (failed) with the last error, after the summary is shown."""
    from valueflow.errors import IncompleteRunError, RunFailedError

    status = summary.get("status")
    if status in ("done", "dry-run", None):
        return
    sc = summary.get("scores", {})
    gen_failed = sum(m.get("failed", 0) for m in summary["models"].values())
    errors = [m["last_error"] for m in summary["models"].values() if m.get("last_error")]
    if sc.get("last_error"):
        errors.append(f"judge: {sc['last_error']}")
    parts = []
    if gen_failed:
        parts.append(f"{gen_failed} answer(s) not generated")
    if sc.get("failed"):
        parts.append(f"{sc['failed']} (answer, value) pair(s) not scored")
    what = " and ".join(parts) or "nothing usable"
    last = f"; last error: {errors[-1]}" if errors else ""
    hint = ("what failed is not stored as final: fix the cause and run the same command "
            "again to retry only that")
    cls = RunFailedError if status == "failed" else IncompleteRunError
    raise cls(f"run {summary['run_id']} is {status}: {what}{last}", hint=hint,
              run_id=summary["run_id"])


@steer.command("analyze")
@click.option("--run", "run_id", default=None, help="Run id (default: the latest steering run).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write every table as CSV (and findings.txt) into this folder.")
@click.option("--n-boot", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier --out.")
@json_option
def analyze_cmd(run_id: str | None, out_dir: str | None, n_boot: int, seed: int,
                overwrite: bool, as_json: bool) -> None:
    """Shifts Δ with intervals, value types, refusals and composition of a steering run."""
    from valueflow.analysis import SteeringAnalysis, analyze
    from valueflow.steer import load_results
    from valueflow.tables import atomic_output, check_output_folder, write_table

    out_files = [f"{name}.csv" for name in SteeringAnalysis.TABLES] + ["findings.txt"]
    if out_dir:
        check_output_folder(out_dir, out_files, overwrite=overwrite)
    with open_cli_workspace(read_only=True) as ws:
        results = load_results(ws, run_id)
    analysis = analyze(results, n_boot=n_boot, seed=seed)  # says first if the run is not done
    if out_dir:
        d = Path(out_dir)
        for name, df in analysis.tables().items():
            write_table(df, d / f"{name}.csv")
        with atomic_output(d / "findings.txt") as tmp:
            tmp.write_text("\n".join(analysis.findings) + "\n", encoding="utf-8")
    if as_json:
        echo_json(analysis.to_dict())
        return
    for line in analysis.findings:
        click.echo(line)
    st = analysis.steerability
    if len(st):
        cols = ["model", "regime", "value", "baseline", "delta_up", "delta_down", "asymmetry",
                "type"]
        click.echo("")
        click.echo(st[cols].to_string(index=False, float_format=lambda x: f"{x:+.2f}"))
    if out_dir:
        click.echo(f"tables written to {out_dir}", err=True)
    sys.stdout.flush()
