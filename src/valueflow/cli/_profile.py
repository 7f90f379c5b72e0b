"""``valueflow profile``: a person's or group's profile over the 32 values."""

from __future__ import annotations

from typing import Any

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
              "items, else the bundled seed), seed, workspace (both without simulated or flagged "
              "items), workspace:all, or a VIDB file or folder.")
@click.option("--intensity-column", default=None, help="Intensity column of a --vidb file.")
@click.option("--prompt-out", type=click.Path(dir_okay=False), default=None,
              help="Save the profile prompt (the values in five priority bins, grouped by "
              "theory): a .txt file holds the prompt of one group; a .json file maps each "
              "group to its prompt (needed with several groups).")
@click.option("--prompt-top", type=click.IntRange(min=1), default=None,
              help="Only the N values of largest absolute intensity in --prompt-out [all].")
@click.option("--weighting", type=click.Choice(["auto", "relevance", "equal"]),
              default="auto", show_default=True,
              help="How texts count on a value: by how much they say about it (relevance; "
              "auto uses it when the scorer can tell) or all alike (equal).")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@click.option("--overwrite", is_flag=True,
              help="Replace --out/--plot/--prompt-out files that exist.")
@json_option
def profile(input_path: str, text_column: str, group_column: str | None,
            values: tuple[str, ...], out: str | None, plot: str | None, prompt_out: str | None,
            prompt_top: int | None, vidb_source: str, intensity_column: str | None,
            weighting: str, seed: int, overwrite: bool, as_json: bool) -> None:
    """Value profile of the texts in INPUT: mean intensity per value with a 90% interval.

    Texts are scored by the local scorer (by default trained on the seed VIDB, not on
    measured judgments; with --vidb, refitted on that VIDB). Each text counts on a value as
    much as it says something about it (the scorer's relevance), so a value none of the
    texts touches is "unknown" rather than 0. The interval is a bootstrap over the group's
    texts; a group of one text has no interval (n/a).
    """
    from pathlib import Path

    from valueflow.embed import plot_profile, value_profile
    from valueflow.errors import ConfigError
    from valueflow.evaluate import left_out_note, user_vidb_frame
    from valueflow.judges import make_judge
    from valueflow.tables import PLOT_EXTENSIONS, atomic_output, check_output, read_texts
    from valueflow.theories import evaluation_values, resolve_value
    from valueflow.workspace import default_workspace_path

    inputs = [input_path, str(default_workspace_path()),
              None if vidb_source in ("auto", "seed", "workspace", "workspace:all")
              else vidb_source]
    if out:
        check_output(out, overwrite=overwrite, inputs=inputs)
    if plot:
        check_output(plot, overwrite=overwrite, inputs=inputs, extensions=PLOT_EXTENSIONS,
                     option="--plot")
    if prompt_out:
        check_output(prompt_out, overwrite=overwrite, inputs=inputs,
                     extensions=(".txt", ".json"), option="--prompt-out")
    named = [Path(p).resolve() for p in (out, plot, prompt_out) if p]
    if len(set(named)) < len(named):
        raise ConfigError("--out, --plot and --prompt-out must name different files")
    df = read_texts(input_path, text_column, group_column)
    if prompt_out and Path(prompt_out).suffix.lower() == ".txt" and group_column:
        n_groups = df[group_column].astype(str).nunique()
        if n_groups > 1:
            raise ConfigError(f"--prompt-out {prompt_out!r}: a .txt file holds one prompt, "
                              f"and --group-column {group_column} makes {n_groups} groups",
                              hint="write a .json file, which maps each group to its prompt")
    nodes = [resolve_value(v) for v in values] if values else evaluation_values()
    from valueflow.workspace import default_workspace_path

    if vidb_source == "seed" or (vidb_source == "auto"
                                 and not default_workspace_path().exists()):
        user = None
    elif vidb_source in ("auto", "workspace", "workspace:all"):
        with open_cli_workspace(read_only=True) as ws:
            user = user_vidb_frame(vidb_source, nodes, workspace=ws)
    else:
        user = user_vidb_frame(vidb_source, nodes, intensity_column=intensity_column)
    note = left_out_note(user)
    if note:
        click.echo(f"local scorer refit on the workspace VIDB, {note}", err=True)
    scorer = make_judge("local", local_vidb=user,
                        local_values=None if user is None else [n.id for n in nodes])
    groups = df[group_column].tolist() if group_column else None
    prof = value_profile(df[text_column].tolist(), groups, scorer=scorer,
                         values=list(values) or None, seed=seed, weighting=weighting)
    # A bootstrap over one text has zero width: that would claim certainty it lacks.
    single = prof["n_texts"] < 2
    prof.loc[single, ["low", "high"]] = float("nan")
    if out:
        from valueflow.tables import write_table

        write_table(prof, out)
    if plot:
        drawn = prof.copy()  # a group of one text: a dot without a whisker
        drawn.loc[single, "low"] = drawn.loc[single, "intensity"]
        drawn.loc[single, "high"] = drawn.loc[single, "intensity"]
        with atomic_output(plot) as tmp:
            plot_profile(drawn, str(tmp))
    if prompt_out:
        _write_prompts(prof, prompt_out, prompt_top)
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
            low, high = float(r.low), float(r.high)  # type: ignore[arg-type]
            x = float(r.intensity)  # type: ignore[arg-type]
            if x != x:  # no text says anything about this value
                t.add_row(str(r.value), "unknown", "[dim]no text about it[/dim]")
                continue
            interval = "n/a" if low != low else f"[{low:+.2f}, {high:+.2f}]"
            t.add_row(str(r.value), f"{x:+.2f}", interval)
        console.print(t)
    if single.any():
        n_groups = prof.loc[single, "group"].nunique()
        console.print(f"[dim]{n_groups} group(s) of one text: no interval (n/a); a profile "
                      "interval needs at least 2 texts[/dim]")
    console.print(f"[dim]{scorer.description}[/dim]")
    if out:
        console.print(f"saved {out}")
    if plot:
        console.print(f"saved {plot}")
    if prompt_out:
        console.print(f"saved {prompt_out}")


def _write_prompts(prof: Any, path: str, top: int | None) -> None:
    """The profile prompt of each group: the prompt itself in a .txt file (one group), a
    JSON object of group -> prompt in a .json file."""
    import json
    from pathlib import Path

    from valueflow.steer import profile_prompts
    from valueflow.tables import atomic_output

    prompts = profile_prompts(prof, top=top)
    with atomic_output(path) as tmp:
        if Path(path).suffix.lower() == ".txt":
            (only,) = prompts.values()
            tmp.write_text(only + "\n", encoding="utf-8")
        else:
            tmp.write_text(json.dumps(prompts, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
