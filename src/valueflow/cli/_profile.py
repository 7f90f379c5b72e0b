"""``valueflow profile``: a person's or group's profile over the 32 values."""

from __future__ import annotations

import click

from valueflow.cli._common import echo_json, json_option, open_cli_workspace


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("--text-column", default="text", show_default=True, help="Column with the texts.")
@click.option("--group-column", default=None, help="Profile each group of this column apart.")
@click.option("--value", "values", multiple=True, help="Only this value; repeatable [all 32].")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Save the profile table (.csv, .jsonl or .parquet).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save a dot-and-whisker chart (.png, .svg, .pdf).")
@click.option("--vidb", "vidb_source", default="auto", show_default=True,
              help="What the local scorer learns from: auto (the workspace VIDB if it has "
              "items, else the bundled seed), seed, workspace, or a VIDB file or folder.")
@click.option("--intensity-column", default=None, help="Intensity column of a --vidb file.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@json_option
def profile(input_path: str, text_column: str, group_column: str | None,
            values: tuple[str, ...], out: str | None, plot: str | None, vidb_source: str,
            intensity_column: str | None, seed: int, as_json: bool) -> None:
    """Value profile of the texts in INPUT: mean intensity per value with a 90% interval.

    Texts are scored by the local scorer (by default trained on the seed VIDB, not on
    measured judgments; with --vidb, refitted on that VIDB); the interval is a bootstrap
    over the group's texts.
    """
    from valueflow.embed import load_local_scorer, plot_profile, value_profile
    from valueflow.embed._io import read_input
    from valueflow.evaluate._anchors import user_vidb_frame
    from valueflow.theories import evaluation_values, resolve_value

    df = read_input(input_path, text_column, group_column)
    nodes = [resolve_value(v) for v in values] if values else evaluation_values()
    from valueflow.workspace import default_workspace_path

    if vidb_source == "seed" or (vidb_source == "auto"
                                 and not default_workspace_path().exists()):
        user = None
    elif vidb_source in ("auto", "workspace"):
        with open_cli_workspace() as ws:
            user = user_vidb_frame(vidb_source, nodes, workspace=ws)
    else:
        user = user_vidb_frame(vidb_source, nodes, intensity_column=intensity_column)
    scorer = load_local_scorer() if user is None else load_local_scorer(
        vidb=user, values=[n.id for n in nodes])
    groups = df[group_column].tolist() if group_column else None
    prof = value_profile(df[text_column].tolist(), groups, scorer=scorer,
                         values=list(values) or None, seed=seed)
    if out:
        from valueflow.tables import write_table

        write_table(prof, out)
    if plot:
        plot_profile(prof, plot)
    if as_json:
        echo_json({"scorer": scorer.description, "profile": prof.to_dict(orient="records")})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for g, sub in prof.groupby("group", sort=False):
        t = Table(title=f"Value profile: {g} ({int(sub['n_texts'].iloc[0])} texts)")
        for c in ("value", "intensity", "90% interval"):
            t.add_column(c, justify="left" if c == "value" else "right")
        for r in sub.itertuples():
            t.add_row(str(r.value), f"{r.intensity:+.2f}", f"[{r.low:+.2f}, {r.high:+.2f}]")
        console.print(t)
    console.print(f"[dim]{scorer.description}[/dim]")
    if out:
        console.print(f"saved {out}")
    if plot:
        console.print(f"saved {plot}")
