"""``valueflow workspace``: what a workspace holds."""

from __future__ import annotations

import click

from valueflow.cli._common import echo_json, json_option, open_cli_workspace


@click.group()
def workspace() -> None:
    """Inspect the workspace database."""


@workspace.command("info")
@json_option
def info(as_json: bool) -> None:
    """Path, schema versions and row counts of every table (reads only; works while
    another process writes the workspace, from its last checkpoint)."""
    with open_cli_workspace(read_only=True) as ws:
        versions = ws.query_df(
            "SELECT component, max(version) AS version FROM schema_migrations GROUP BY 1 ORDER BY 1"
        )
        tables = [r[0] for r in ws.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' ORDER BY 1").fetchall()]
        counts = {t: int(ws.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}
        data = {
            "path": ws.path,
            "schema": dict(zip(versions["component"], versions["version"].astype(int), strict=True)),
            "tables": counts,
            "snapshot": ws.snapshot is not None,
        }
        _snapshot_note(ws)
    if as_json:
        echo_json(data)
        return
    click.echo(f"workspace: {data['path']}")
    for comp, ver in data["schema"].items():
        click.echo(f"  schema {comp}: v{ver}")
    for t, n in counts.items():
        click.echo(f"  {t}: {n} rows")


def _snapshot_note(ws: object) -> None:
    if getattr(ws, "snapshot", None) is not None:
        click.echo("note: another process is writing the workspace; this is its state as of "
                   "its last checkpoint", err=True)


@workspace.command("runs")
@click.option("--kind", default=None, help="Only runs of this kind (score, steer, vidb-build...).")
@json_option
def runs(kind: str | None, as_json: bool) -> None:
    """Recorded runs with their full specs, newest first."""
    import json

    with open_cli_workspace(read_only=True) as ws:
        df = ws.runs(kind)
        _snapshot_note(ws)
    rows = [
        {**{k: (str(v) if k.endswith("_at") else v) for k, v in r.items() if k != "spec"},
         "spec": json.loads(r["spec"])}
        for r in df.to_dict("records")
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no runs recorded")
    for r in rows:
        click.echo(f"{r['run_id']}  {r['kind']:<12} {r['status']:<11} {r['created_at']}")
