"""Reading and writing tables (CSV, JSONL, Parquet) with precise errors and atomic writes.

Shared by every command that takes an input file or writes an output file. Inputs are read by
:func:`read_table` (a ``.txt`` file is one text per line), tables of texts with reference
intensities by :func:`read_references`; :func:`text_key` is the one way texts are compared
(whitespace flattened, case folded). Output paths are
checked before any work (:func:`check_output`): the folder exists and is writable, the
extension is one the command writes, an existing file is replaced only when asked, and an
input is never overwritten. Writes go to a temporary file beside the target and are renamed
into place (:func:`atomic_output`), so an interrupted or failed command never leaves a
half-written output; the file gets the mode an ordinary ``open()`` would give it (the
process umask for a new file, the old mode for a replaced one).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from valueflow.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["INTENSITY_COLUMNS", "PLOT_EXTENSIONS", "TABLE_FORMATS", "TEXT_EXTENSION",
           "atomic_output", "check_output", "check_output_folder", "read_references",
           "read_table", "read_texts", "require_columns", "table_format", "text_key",
           "write_table"]

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}

TEXT_EXTENSION = ".txt"
"""An input file with this extension holds one text per line (blank lines are skipped)."""

INTENSITY_COLUMNS = ("intensity", "final_rating", "rating", "score")
"""Columns :func:`read_references` takes as the intensity, in this order, when none is named
(the published VIDB calls it ``final_rating``)."""

PLOT_EXTENSIONS = (".png", ".svg", ".pdf", ".jpg", ".jpeg")
"""Image files the commands' ``--plot`` options write (matplotlib, by extension)."""


def table_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` from its extension, or a :class:`DataError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise DataError(
            f"cannot tell the format of {str(path)!r} from its extension {suffix or '(none)'!r}",
            hint="use one of " + ", ".join(sorted(TABLE_FORMATS)),
        )
    return TABLE_FORMATS[suffix]


def text_key(text: str) -> str:
    """The form in which two texts count as the same: whitespace runs flattened to one space,
    ends trimmed, case folded (``"  Be  KIND "`` and ``"be kind"`` share a key)."""
    return " ".join(text.split()).lower()


def read_table(path: str | os.PathLike[str], *, text_column: str = "text") -> pd.DataFrame:
    """Read a CSV, TSV, JSONL, JSON (list of records) or Parquet file into a DataFrame.

    A ``.txt`` file is one text per line: a one-column frame named ``text_column``, blank
    lines skipped.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(f"input file {str(p)!r} does not exist")
    if p.is_dir():
        raise DataError(f"input {str(p)!r} is a folder, not a file")
    fmt = "txt" if p.suffix.lower() == TEXT_EXTENSION else table_format(p)
    try:
        if fmt == "txt":
            lines = p.read_text(encoding="utf-8").splitlines()
            return pd.DataFrame({text_column: [ln for ln in lines if ln.strip()]}, dtype=object)
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


def read_texts(path: str | os.PathLike[str], text_column: str = "text",
               group_column: str | None = None) -> pd.DataFrame:
    """An input of texts (any :func:`read_table` file, ``.txt`` included), checked to have
    the text column (and the group column) and a text in every row; texts become ``str``."""
    df = read_table(path, text_column=text_column)
    require_columns(df, [c for c in (text_column, group_column) if c is not None],
                    source=str(path))
    missing = df[text_column].isna()
    if missing.any():
        rows = ", ".join(str(int(i) + 1) for i in missing[missing].index[:5])
        raise DataError(f"{int(missing.sum())} rows of {path} have no text (rows {rows})",
                        hint="drop or fill them first")
    df[text_column] = df[text_column].astype(str)
    return df


def read_references(
    path: str | os.PathLike[str],
    *,
    source: str | None = None,
    intensity_column: str | None = None,
    skip_missing: bool = False,
    limit: float | None = None,
) -> pd.DataFrame:
    """A table of texts with reference intensities: ``text``, ``intensity`` (a float) and,
    where the file has one, ``value`` as canonical value ids.

    Args:
        path: A table file (see :func:`read_table`).
        source: How messages name the file (default: its path), e.g. ``"--sim-truth x.csv"``.
        intensity_column: The intensity column; default the first of
            :data:`INTENSITY_COLUMNS` the file has.
        skip_missing: Drop rows whose intensity is missing or not a number (otherwise they
            are an error); a file with no number at all is an error either way.
        limit: Refuse intensities whose magnitude exceeds this (e.g. 10).

    Raises:
        DataError: a column is missing, an intensity is not a number or out of range.
        UnknownNameError: a value name is not known.
    """
    import numpy as np
    import pandas as pd

    name = source or str(path)
    df = read_table(path)
    column = intensity_column or next((c for c in INTENSITY_COLUMNS if c in df.columns),
                                      "intensity")
    require_columns(df, ["text", column], source=name)
    y = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(y)
    if bad.all() and len(y):
        raise DataError(f"{name} has no numeric intensities in {column!r}")
    if bad.any() and not skip_missing:
        raise DataError(f"{name}: intensity is missing or not a number in {int(bad.sum())} "
                        f"row(s) of {column!r}", hint="fill or drop those rows")
    if limit is not None and (np.abs(y[~bad]) > limit).any():
        raise DataError(f"{name}: intensity must be a number in [-{limit:g}, {limit:g}] in "
                        "every row")
    out = pd.DataFrame({"text": df["text"].astype(str), "intensity": y})
    if "value" in df.columns:
        from valueflow.theories import resolve_value

        ids = {v: resolve_value(v).id for v in set(df["value"].astype(str))}
        out["value"] = [ids[v] for v in df["value"].astype(str)]
    return out[~bad].reset_index(drop=True)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    extensions: Iterable[str] | None = None,
    option: str = "--out",
) -> Path:
    """Check, before any work, that a command can write ``path``; return it.

    Args:
        path: The output file.
        overwrite: Replace an existing file (otherwise an existing file is an error).
        inputs: Files the command reads (and the workspace): never written over, even with
            ``overwrite``.
        extensions: The extensions (with the dot) the command can write; default: the table
            formats of :func:`write_table`.
        option: The option that named the path, for the messages.

    Raises:
        ConfigError: one line saying what is wrong with the path.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{option} {str(p)!r} is a folder, not a file")
    if extensions is None:
        table_format(p)  # a table: the same message as every table option
    exts = [e.lower() for e in (extensions if extensions is not None else TABLE_FORMATS)]
    if p.suffix.lower() not in exts:
        raise ConfigError(
            f"{option} {str(p)!r}: cannot write a {p.suffix or 'file without an extension'!r} "
            "file here",
            hint="use one of " + ", ".join(sorted(set(exts))))
    for src in inputs:
        if src is not None and str(src) != ":memory:" and (
                _same_file(p, Path(src)) or p.resolve() == Path(src).resolve()):
            raise ConfigError(f"{option} {str(p)!r} is an input of this command",
                              hint="write the output to another file")
    _check_folder(p.parent if str(p.parent) else Path("."), option, str(p))
    if p.exists() and not overwrite:
        raise ConfigError(f"{option} {str(p)!r} exists",
                          hint="pass --overwrite to replace it, or choose another file")
    return p


def _check_folder(folder: Path, option: str, target: str) -> None:
    if not folder.exists():
        raise ConfigError(f"{option} {target!r}: the folder {str(folder)!r} does not exist",
                          hint=f"create it first (mkdir -p {folder})")
    if not folder.is_dir():
        raise ConfigError(f"{option} {target!r}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {target!r}: the folder {str(folder)!r} is not writable")


def check_output_folder(
    folder: str | os.PathLike[str],
    names: Iterable[str],
    *,
    overwrite: bool = False,
    option: str = "--out",
) -> Path:
    """Check an output folder before any work: it is a folder (or can be made in an
    existing, writable one) and none of the files ``names`` the command writes into it
    exists unless ``overwrite``. Creates the folder; returns it."""
    d = Path(folder)
    if d.exists() and not d.is_dir():
        raise ConfigError(f"{option} {str(d)!r} is a file, not a folder")
    if not d.exists():
        _check_folder(d.parent if str(d.parent) else Path("."), option, str(d))
    else:
        _check_folder(d, option, str(d))
    clash = [n for n in names if (d / n).exists()]
    if clash and not overwrite:
        raise ConfigError(f"{option} {str(d)!r} already holds {', '.join(clash)}",
                          hint="pass --overwrite to replace them, or choose another folder")
    d.mkdir(exist_ok=True)
    return d


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Write a file atomically: yields a temporary path beside ``path`` (same extension, so
    writers that go by the extension still work) and renames it into place when the block
    succeeds; on any error the temporary file is removed and ``path`` is untouched.

    The file gets the mode a plain ``open()`` would give it: that of the file it replaces,
    or ``0666`` less the process umask for a new file (``mkstemp`` alone would give 0600).
    """
    p = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=f".tmp{p.suffix}",
                                    dir=p.parent if str(p.parent) else ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        mode = stat.S_IMODE(p.stat().st_mode) if p.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` atomically in the format given by ``path``'s extension (see
    :func:`atomic_output`; check the path with :func:`check_output` before the work)."""
    p = Path(path)
    fmt = table_format(p)
    p.parent.mkdir(parents=True, exist_ok=True)  # library callers; commands check first
    with atomic_output(p) as tmp:
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
