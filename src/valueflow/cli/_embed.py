"""``valueflow embed``: one HiVES vector per input row, in input order."""

from __future__ import annotations

import click


def _check_txt_lines(path: str) -> None:
    """Row i of the output is line i of a .txt input: a blank line inside the file would
    silently shift every later row, so it is refused (blank lines at the very end are not
    rows and are ignored)."""
    from valueflow.errors import DataError

    if not path.lower().endswith(".txt"):
        return
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    blank = [i + 1 for i, ln in enumerate(lines) if not ln.strip()]
    if blank:
        shown = ", ".join(map(str, blank[:10])) + (" ..." if len(blank) > 10 else "")
        raise DataError(f"{path} has {len(blank)} blank line(s) (line {shown}); row i of the "
                        "output is line i of the input, so blank lines are not skipped",
                        hint="remove the blank lines, or put the texts in a CSV with a text "
                        "column")


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output .npy file: an (n, d) float32 array, row i for input row i.")
@click.option("--text-column", default="text", show_default=True, help="Column with the texts.")
@click.option("--model", default="default", show_default=True,
              help="'default' (shipped HiVES), 'base' (MiniLM alone) or a model folder.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Texts per encoder batch.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def embed(input_path: str, out: str, text_column: str, model: str, batch_size: int,
          overwrite: bool) -> None:
    """Embed the texts of INPUT (CSV, JSONL, Parquet or .txt) in the HiVES value space.

    A .txt input is one text per line and may not hold blank lines (row i of the output is
    line i of the input).
    """
    import numpy as np

    from valueflow.embed import load_hives
    from valueflow.tables import atomic_output, check_output, read_texts
    from valueflow.workspace import default_workspace_path

    check_output(out, overwrite=overwrite, extensions=(".npy",),
                 inputs=[input_path, str(default_workspace_path())])
    _check_txt_lines(input_path)
    df = read_texts(input_path, text_column)
    hives = load_hives(model)
    emb = hives.encode(df[text_column].tolist(), batch_size=batch_size)
    with atomic_output(out) as tmp, open(tmp, "wb") as fh:
        np.save(fh, emb.astype(np.float32))  # a file object: no ".npy" is appended
    click.echo(f"wrote {emb.shape[0]} x {emb.shape[1]} embeddings ({hives.name}) to {out}")
