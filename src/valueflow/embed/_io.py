"""Reading the text column of an input table for the ``embed`` and ``profile`` commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from valueflow.errors import DataError, close_matches

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_input"]


def read_input(path: str, text_column: str = "text",
               group_column: str | None = None) -> pd.DataFrame:
    """The input table (CSV/TSV/JSONL/JSON/Parquet; a ``.txt`` file is one text per line),
    checked to have the text column (and the group column) with no missing texts."""
    import pandas as pd

    from valueflow.tables import read_table

    if path.endswith(".txt"):
        with open(path, encoding="utf-8") as fh:
            df = pd.DataFrame({text_column: [ln.rstrip("\n") for ln in fh if ln.strip()]})
    else:
        df = read_table(path)
    for col in (text_column, group_column):
        if col is not None and col not in df.columns:
            hits = close_matches(col, map(str, df.columns))
            raise DataError(f"{path} has no column {col!r}",
                            hint=f"did you mean {', '.join(hits)}?" if hits else
                            f"columns: {', '.join(map(str, df.columns))}")
    missing = df[text_column].isna()
    if missing.any():
        rows = ", ".join(str(int(i) + 1) for i in missing[missing].index[:5])
        raise DataError(f"{int(missing.sum())} rows of {path} have no text (rows {rows})",
                        hint="drop or fill them first")
    df[text_column] = df[text_column].astype(str)
    return df
