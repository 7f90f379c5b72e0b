"""``valueflow embed``: one HiVES vector per input row, in input order."""

from __future__ import annotations

import click


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output .npy file: an (n, d) float32 array, row i for input row i.")
@click.option("--text-column", default="text", show_default=True, help="Column with the texts.")
@click.option("--model", default="default", show_default=True,
              help="'default' (shipped HiVES), 'base' (MiniLM alone) or a model folder.")
@click.option("--batch-size", default=32, show_default=True, help="Texts per encoder batch.")
def embed(input_path: str, out: str, text_column: str, model: str, batch_size: int) -> None:
    """Embed the texts of INPUT (CSV, JSONL, Parquet or .txt) in the HiVES value space."""
    import numpy as np

    from valueflow.embed import load_hives
    from valueflow.embed._io import read_input

    df = read_input(input_path, text_column)
    hives = load_hives(model)
    emb = hives.encode(df[text_column].tolist(), batch_size=batch_size)
    np.save(out, emb.astype(np.float32))
    click.echo(f"wrote {emb.shape[0]} x {emb.shape[1]} embeddings ({hives.name}) to {out}")
