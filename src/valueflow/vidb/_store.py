"""The VIDB store in the workspace, and loading a VIDB from any source."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from valueflow.errors import DataError
from valueflow.vidb._frame import normalize_vidb_frame
from valueflow.vidb._schema import COMPONENT, VIDB_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.workspace import Workspace

__all__ = ["OnConflict", "VIDBStore", "load_vidb", "read_vidb_source"]

OnConflict = Literal["error", "skip", "replace"]


def read_vidb_source(
    path: str | os.PathLike[str],
    *,
    split: str = "train",
) -> pd.DataFrame:
    """Read a raw table: CSV/TSV/JSONL/JSON/Parquet file, a saved Hugging Face dataset
    folder, or ``hf://OWNER/NAME`` (a hub id; needs ``datasets`` and a network)."""
    from valueflow.tables import read_table

    spec = str(path)
    if spec.startswith("hf://") or (Path(spec).is_dir() and (Path(spec) / "dataset_info.json").exists()
                                    ) or (Path(spec).is_dir() and (Path(spec) / "dataset_dict.json").exists()):
        try:
            import datasets
        except ImportError as exc:
            raise DataError(
                "reading a Hugging Face dataset needs the 'datasets' package",
                hint="pip install 'valueflow[hub]'",
            ) from exc
        try:
            if spec.startswith("hf://"):
                ds: Any = datasets.load_dataset(spec.removeprefix("hf://"), split=split)
            else:
                ds = datasets.load_from_disk(spec)
                if isinstance(ds, datasets.DatasetDict):
                    if split not in ds:
                        raise DataError(
                            f"dataset {spec!r} has no split {split!r}",
                            hint=f"choose one of {', '.join(ds)}",
                        )
                    ds = ds[split]
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"cannot load Hugging Face dataset {spec!r}: {exc}") from exc
        return ds.to_pandas()
    return read_table(path)


class VIDBStore:
    """VIDB items kept in a workspace.

    Args:
        workspace: An open, writable :class:`~valueflow.workspace.Workspace`.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        workspace.ensure_schema(COMPONENT)

    def add(self, frame: pd.DataFrame, *, on_conflict: OnConflict = "error") -> int:
        """Add already-normalised rows (see :func:`normalize_vidb_frame`) in one transaction.

        Returns:
            The number of rows written.

        Raises:
            DataError: with ``on_conflict="error"``, when any (value, text) is already stored;
                nothing is written.
        """
        if on_conflict not in ("error", "skip", "replace"):
            raise DataError(f"on_conflict must be error, skip or replace, not {on_conflict!r}")
        if frame.empty:
            return 0
        ws = self.workspace
        with ws.transaction() as con:
            con.register("incoming_vidb", frame[VIDB_COLUMNS])
            try:
                clash = con.execute(
                    "SELECT i.item_id, i.value, i.text FROM incoming_vidb i "
                    "JOIN vidb_items v USING (item_id)"
                ).fetchall()
                if clash and on_conflict == "error":
                    shown = "; ".join(f"{v}: {t[:50]!r}" for _, v, t in clash[:5])
                    raise DataError(
                        f"{len(clash)} item(s) are already in the VIDB ({shown})",
                        hint="pass on_conflict='skip' (--on-conflict skip) to keep the stored "
                        "ones or 'replace' to overwrite them; nothing was imported",
                    )
                if clash and on_conflict == "replace":
                    con.execute(
                        "DELETE FROM vidb_items WHERE item_id IN (SELECT item_id FROM incoming_vidb)"
                    )
                cols = ", ".join(VIDB_COLUMNS)
                before = con.execute("SELECT count(*) FROM vidb_items").fetchall()[0][0]
                con.execute(
                    f"INSERT INTO vidb_items ({cols}) SELECT {cols} FROM incoming_vidb "
                    "WHERE item_id NOT IN (SELECT item_id FROM vidb_items)"
                )
                after = con.execute("SELECT count(*) FROM vidb_items").fetchall()[0][0]
            finally:
                con.unregister("incoming_vidb")
        return int(after - before)

    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        value: str | None = None,
        columns: Mapping[str, str] | None = None,
        source: str | None = None,
        license: str | None = None,
        dataset: str | None = None,
        on_conflict: OnConflict = "error",
        split: str = "train",
    ) -> int:
        """Validate and import a file or dataset; all rows or none. Returns rows written."""
        raw = read_vidb_source(path, split=split)
        frame = normalize_vidb_frame(
            raw,
            source_name=str(path),
            value=value,
            columns=columns,
            source=source or str(path),
            license=license,
            dataset=dataset or Path(str(path)).stem,
            provenance=f"imported from {path}",
        )
        return self.add(frame, on_conflict=on_conflict)

    def import_seed(self, *, on_conflict: OnConflict = "skip") -> int:
        """Copy the bundled seed VIDB into the workspace."""
        from valueflow.vidb._seed import load_seed

        return self.add(load_seed(), on_conflict=on_conflict)

    def to_frame(self, values: list[str] | None = None) -> pd.DataFrame:
        """Stored items (optionally only some values) with the canonical columns."""
        cols = ", ".join(VIDB_COLUMNS)
        if values:
            from valueflow.theories import resolve_value

            ids = sorted({resolve_value(v).id for v in values})
            return self.workspace.query_df(
                f"SELECT {cols} FROM vidb_items WHERE value IN ({', '.join('?' * len(ids))}) "
                "ORDER BY value, intensity",
                ids,
            )
        return self.workspace.query_df(f"SELECT {cols} FROM vidb_items ORDER BY value, intensity")

    def count(self) -> int:
        return int(self.workspace.execute("SELECT count(*) FROM vidb_items").fetchall()[0][0])

    def delete(self, *, values: list[str] | None = None, dataset: str | None = None) -> int:
        """Delete items of some values and/or one dataset; returns rows deleted."""
        where, params = [], []
        if values:
            from valueflow.theories import resolve_value

            ids = sorted({resolve_value(v).id for v in values})
            where.append(f"value IN ({', '.join('?' * len(ids))})")
            params += ids
        if dataset:
            where.append("dataset = ?")
            params.append(dataset)
        if not where:
            raise DataError("delete needs values or a dataset", hint="refusing to delete everything")
        with self.workspace.transaction() as con:
            n = con.execute(f"SELECT count(*) FROM vidb_items WHERE {' AND '.join(where)}",
                            params).fetchall()[0][0]
            con.execute(f"DELETE FROM vidb_items WHERE {' AND '.join(where)}", params)
        return int(n)

    def export(self, path: str | os.PathLike[str], values: list[str] | None = None) -> int:
        """Write stored items to CSV/JSONL/Parquet (by extension); returns rows written."""
        from valueflow.tables import write_table

        df = self.to_frame(values)
        write_table(df, path)
        return len(df)


def load_vidb(
    source: str | os.PathLike[str] | pd.DataFrame = "seed",
    *,
    values: list[str] | None = None,
    intensity_column: str | None = None,
    text_column: str | None = None,
    value_column: str | None = None,
    workspace: Workspace | None = None,
) -> pd.DataFrame:
    """Load a VIDB as a DataFrame with the canonical columns.

    Args:
        source: ``"seed"`` (bundled), ``"workspace"`` (the workspace's store), a file path
            (CSV/JSONL/Parquet with ``text``, ``value``, ``intensity`` or mapped columns), or a
            DataFrame.
        values: Keep only these values.
        intensity_column, text_column, value_column: Column names in a file or DataFrame.
        workspace: The workspace for ``"workspace"`` (default: the default workspace).
    """
    from valueflow.vidb._seed import load_seed

    if isinstance(source, str) and source == "seed":
        return load_seed(values)
    if isinstance(source, str) and source == "workspace":
        if workspace is None:
            from valueflow.workspace import open_workspace

            with open_workspace() as ws:
                return VIDBStore(ws).to_frame(values)
        return VIDBStore(workspace).to_frame(values)
    columns = {k: v for k, v in (("intensity", intensity_column), ("text", text_column),
                                 ("value", value_column)) if v}
    if isinstance(source, str | os.PathLike):
        raw = read_vidb_source(source)
        name = str(source)
    else:
        raw, name = source, "VIDB table"
    df = normalize_vidb_frame(raw, source_name=name, columns=columns, source=name)
    if values:
        from valueflow.theories import resolve_value

        ids = {resolve_value(v).id for v in values}
        df = df[df["value"].isin(ids)].reset_index(drop=True)
    return df
