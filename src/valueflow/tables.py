"""Reading and writing tables (CSV, JSONL, Parquet) with precise errors and atomic writes.

Shared by every command that takes an input file or writes an output file. Writes go to a
temporary file beside the target and are renamed into place, so an interrupted or failed
command never leaves a half-written output.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from valueflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_FORMATS", "read_table", "require_columns", "table_format", "write_table"]

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def table_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` from its extension, or a :class:`DataError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise DataError(
            f"cannot tell the format of {str(path)!r} from its extension {suffix or '(none)'!r}",
            hint="use one of " + ", ".join(sorted(TABLE_FORMATS)),
        )
    return TABLE_FORMATS[suffix]


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV, TSV, JSONL, JSON (list of records) or Parquet file into a DataFrame."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(f"input file {str(p)!r} does not exist")
    if p.is_dir():
        raise DataError(f"input {str(p)!r} is a folder, not a file")
    fmt = table_format(p)
    try:
        if fmt == "csv":
            return pd.read_csv(p, keep_default_na=False, na_values=[""])
        if fmt == "tsv":
            return pd.read_csv(p, sep="\t", keep_default_na=False, na_values=[""])
        if fmt == "jsonl":
            return pd.read_json(p, lines=True, dtype=False)
        if fmt == "json":
            return pd.read_json(p, dtype=False)
        return pd.read_parquet(p)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"cannot read {str(p)!r}: it is not UTF-8 text ({exc.reason})",
            hint="save it as UTF-8 (e.g. iconv -f cp1252 -t utf-8 in.csv > out.csv)",
        ) from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(
            f"cannot read {str(p)!r} as {fmt}: {exc}",
            hint="check that the file is complete and in the format its extension says",
        ) from exc
    except Exception as exc:  # pyarrow raises its own types for corrupt parquet
        raise DataError(f"cannot read {str(p)!r} as {fmt}: {exc}") from exc


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` atomically in the format given by ``path``'s extension."""
    p = Path(path)
    fmt = table_format(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        elif fmt == "tsv":
            df.to_csv(tmp, index=False, sep="\t")
        elif fmt == "jsonl":
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif fmt == "json":
            df.to_json(tmp, orient="records", force_ascii=False, indent=1)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def require_columns(df: pd.DataFrame, columns: list[str], *, source: str) -> None:
    """Raise a :class:`DataError` naming the missing columns and the ones present."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        from valueflow.errors import close_matches

        hints = []
        for m in missing:
            near = close_matches(m, [str(c) for c in df.columns])
            if near:
                hints.append(f"{m!r} (did you mean {near[0]!r}?)")
        present = ", ".join(repr(str(c)) for c in df.columns) or "none"
        raise DataError(
            f"{source} has no column {', '.join(repr(m) for m in missing)}; its columns are "
            f"{present}",
            hint="; ".join(hints) if hints else "rename the column, or pass the option that maps "
            "your column name",
        )
