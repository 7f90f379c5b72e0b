"""``valueflow report``: the self-contained HTML steerability report."""

from __future__ import annotations

import click

from valueflow.cli._common import open_cli_workspace


@click.command("report")
@click.option("--out", default="report.html", show_default=True,
              type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--run", "run_id", default=None, help="Run id (default: the latest steering run).")
@click.option("--title", default="Steerability report", show_default=True)
@click.option("--n-boot", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Bootstrap resamples (at least 1).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def report(out: str, run_id: str | None, title: str, n_boot: int, overwrite: bool) -> None:
    """Write one HTML file with plots, tables, the run spec and a summary of findings."""
    from valueflow.analysis import analyze, write_report
    from valueflow.steer import load_results
    from valueflow.tables import check_output
    from valueflow.workspace import default_workspace_path

    check_output(out, overwrite=overwrite, extensions=(".html", ".htm"),
                 inputs=[str(default_workspace_path())])

    from valueflow.steer import load_target_result, target_runs
    from valueflow.steer._target import merge_results

    with open_cli_workspace(read_only=True) as ws:
        results = load_results(ws, run_id)
        targets = [load_target_result(ws, r)
                   for r in target_runs(ws, parent=results.attrs.get("run_id"))]
    analysis = analyze(results, n_boot=n_boot)
    analysis.targets = merge_results(targets)
    path = write_report(analysis, out, title=title)
    click.echo(f"wrote {path}")
