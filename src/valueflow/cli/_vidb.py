"""``valueflow vidb``: import, export and summarise the value intensity database."""

from __future__ import annotations

import click

from valueflow.cli._common import echo_json, json_option, open_cli_workspace

SOURCE_HELP = "'workspace' (default), 'seed' (bundled), or a file with text/value/intensity."


@click.group()
def vidb() -> None:
    """The value intensity database (VIDB): texts with calibrated intensities per value."""


@vidb.command("import")
@click.argument("source", required=False)
@click.option("--seed", is_flag=True, help="Import the bundled seed VIDB.")
@click.option("--value", "value", default=None, help="Every row belongs to this value.")
@click.option("--text-column", default=None, help="Column holding the text [text].")
@click.option("--value-column", default=None, help="Column holding the value name [value].")
@click.option("--intensity-column", default=None,
              help="Column holding the intensity [intensity, final_rating, rating or score].")
@click.option("--source-name", "source_name", default=None, help="Provenance: where rows came from.")
@click.option("--license", "license_", default=None, help="License of the imported texts.")
@click.option("--dataset", default=None, help="Name of this import batch [file stem].")
@click.option("--split", default="train", show_default=True, help="Split of a Hugging Face dataset.")
@click.option("--on-conflict", type=click.Choice(["error", "skip", "replace"]), default="error",
              show_default=True, help="What to do with (value, text) pairs already stored.")
@click.option("--skip-invalid", is_flag=True,
              help="Leave out rows with an empty text, a missing intensity or a repeated text "
              "(and say how many) instead of refusing the import.")
def import_(source: str | None, seed: bool, value: str | None, text_column: str | None,
            value_column: str | None, intensity_column: str | None, source_name: str | None,
            license_: str | None, dataset: str | None, split: str, on_conflict: str,
            skip_invalid: bool) -> None:
    """Import SOURCE (CSV, JSONL, Parquet, a folder of such files, a saved HF dataset
    folder, or hf://OWNER/NAME).

    A table without a value column belongs to --value, or else to the value its file name
    names: the published VIDB's one-file-per-value layout
    (data/final_ratings/{value}_{theory}_flag_aggregated.csv, intensity column final_rating)
    imports as `valueflow vidb import data/final_ratings`. Validation reports the offending
    rows; an import writes all rows or none.
    """
    from valueflow.errors import ConfigError
    from valueflow.vidb import VIDBStore

    if bool(seed) == bool(source):
        raise ConfigError("give either SOURCE or --seed", hint="valueflow vidb import data.csv")
    columns = {k: v for k, v in (("text", text_column), ("value", value_column),
                                 ("intensity", intensity_column)) if v}
    with open_cli_workspace() as ws:
        store = VIDBStore(ws)
        if seed:
            n = store.import_seed(on_conflict="skip" if on_conflict == "error" else on_conflict)  # type: ignore[arg-type]
            click.echo(f"imported {n} seed items into {ws.path}")
            return
        assert source is not None
        n = store.import_file(source, value=value, columns=columns, source=source_name,
                              license=license_, dataset=dataset, on_conflict=on_conflict,  # type: ignore[arg-type]
                              split=split, skip_invalid=skip_invalid)
        for name, vid in store.last_values.items():
            click.echo(f"{name}: value {vid} (from the file name)", err=True)
        if store.last_skipped:
            click.echo("left out " + ", ".join(f"{n} row(s) with {why}" for why, n in
                                               store.last_skipped.items()), err=True)
        click.echo(f"imported {n} items from {source} into {ws.path} ({store.count()} in all)")


@vidb.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--value", "values", multiple=True, help="Only this value; repeatable.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def export(out: str, values: tuple[str, ...], overwrite: bool) -> None:
    """Export the workspace VIDB to OUT (.csv, .jsonl or .parquet), every item with its
    source_kind and flags."""
    from valueflow.tables import check_output
    from valueflow.vidb import VIDBStore
    from valueflow.workspace import default_workspace_path

    check_output(out, overwrite=overwrite, inputs=[str(default_workspace_path())], option="OUT")
    with open_cli_workspace(read_only=True) as ws:
        n = VIDBStore(ws).export(out, list(values) or None)
        if ws.snapshot is not None:
            click.echo("note: another process is writing the workspace; exported its items as "
                       "of its last checkpoint", err=True)
    click.echo(f"wrote {n} items to {out}")


@vidb.command("stats")
@click.option("--vidb", "source", default="workspace", show_default=True, help=SOURCE_HELP)
@click.option("--value", "values", multiple=True, help="Only this value; repeatable.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Also save intensity histograms to this image file (.png, .svg, .pdf).")
@click.option("--overwrite", is_flag=True, help="Replace the --plot file if it exists.")
@json_option
def stats(source: str, values: tuple[str, ...], plot: str | None, overwrite: bool,
          as_json: bool) -> None:
    """Counts per value and intensity histograms (of every stored item; items kept apart
    from anchors, simulated or flagged, are counted in a note)."""
    from rich.console import Console
    from rich.table import Table

    from valueflow.errors import DataError
    from valueflow.tables import PLOT_EXTENSIONS, atomic_output, check_output
    from valueflow.vidb import HIST_EDGES, load_vidb, plot_vidb_histograms, usable_items, vidb_stats

    if plot:
        check_output(plot, overwrite=overwrite, extensions=PLOT_EXTENSIONS, option="--plot",
                     inputs=[None if source in ("workspace", "workspace:all", "seed") else source])
    kept_apart: dict[str, int] = {}
    if source in ("workspace", "workspace:all"):
        # No workspace yet reads as an empty VIDB (the error below says how to fill it).
        df = load_vidb("workspace:all", values=list(values) or None)
        _keep, kept_apart = usable_items(df)
    else:
        df = load_vidb(source, values=list(values) or None)
    if df.empty:
        raise DataError(
            f"the VIDB ({source}) has no items" + (f" for {', '.join(values)}" if values else ""),
            hint="import some with 'valueflow vidb import FILE' or 'valueflow vidb import --seed', "
            "or use --vidb seed",
        )
    rows = vidb_stats(df)
    if plot:
        with atomic_output(plot) as tmp:
            plot_vidb_histograms(df, str(tmp))
    if as_json:
        echo_json({"source": source, "n_items": len(df), "histogram_edges": HIST_EDGES.tolist(),
                   "values": rows, "plot": plot, "not_anchors": kept_apart})
        return
    table = Table(title=f"VIDB ({source}): {len(df)} items, {len(rows)} values")
    for col in ("value", "n", "mean", "sd", "min", "max", "opp/neu/sup", "histogram -10..10"):
        table.add_column(col, justify="left" if col in ("value", "histogram -10..10") else "right")
    bars = " ▁▂▃▄▅▆▇█"
    for r in rows:
        top = max(r["histogram"]) or 1
        spark = "".join(bars[round(8 * h / top)] for h in r["histogram"])
        table.add_row(r["value"], str(r["n"]), f"{r['mean']:.2f}", f"{r['sd']:.2f}",
                      f"{r['min']:.1f}", f"{r['max']:.1f}",
                      f"{r['opposes']}/{r['neutral']}/{r['supports']}", spark)
    Console().print(table)
    if kept_apart:
        click.echo("not used as anchors or refit data (unless --vidb workspace:all): "
                   + ", ".join(f"{n} {why}" for why, n in kept_apart.items()))
    if plot:
        click.echo(f"histograms saved to {plot}")


from valueflow.cli._vidb_build import build as _build  # noqa: E402

vidb.add_command(_build)
