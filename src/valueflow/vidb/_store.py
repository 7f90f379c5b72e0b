"""The VIDB store in the workspace, and loading a VIDB from any source."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from valueflow.errors import DataError
from valueflow.vidb._frame import normalize_vidb_frame
from valueflow.vidb._schema import COMPONENT, VIDB_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.workspace import Workspace

__all__ = [
    "UNRELIABLE_FLAGS",
    "BuildConflict",
    "OnConflict",
    "VIDBStore",
    "load_vidb",
    "read_vidb_source",
    "read_vidb_tables",
    "usable_items",
    "value_from_filename",
]

OnConflict = Literal["error", "skip", "replace"]
BuildConflict = Literal["error", "keep", "skip", "replace"]
"""What a build does with a text already stored from another source: refuse (``error``),
store both (``keep``), leave the stored item alone (``skip``), or overwrite it (``replace``)."""

#: Item flags that keep an item out of anchors and refit data unless the whole workspace
#: VIDB is asked for (``workspace:all``): a wide interval, or a build whose judges ranked
#: no better than chance.
UNRELIABLE_FLAGS = ("at_chance", "low_confidence")
_FLAG_REASONS = {"at_chance": "item(s) of a build at chance",
                 "low_confidence": "low-confidence item(s)"}

WORKSPACE_ALL = "workspace:all"
"""The whole workspace VIDB, simulated and unreliable items included."""

TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")


def value_from_filename(path: str | os.PathLike[str]) -> str | None:
    """The value a per-value VIDB file is named after, or None when the name says none.

    Understands the published VIDB's ``{value}_{theory}_flag_aggregated.csv`` and plainer
    names (``benevolence.csv``, ``pvq_achievement.jsonl``, ``Care-Harm_mft.parquet``): the
    longest run of name parts that resolves to exactly one value wins, qualified by a theory
    named next to it when there is one (``justice_mft`` -> ``mft:justice``).
    """
    from valueflow.errors import UnknownNameError
    from valueflow.theories import get_registry

    name = Path(str(path)).name
    for exts in ((".gz", ".zst"), TABLE_EXTENSIONS):
        for ext in exts:
            if name.lower().endswith(ext):
                name = name[: -len(ext)]
    parts = [p for p in re.split(r"[_\s.]+", name) if p]
    reg = get_registry()

    def theory_key(token: str) -> str | None:
        try:
            return reg.theory(token).key
        except UnknownNameError:
            return None

    theories = [theory_key(p) for p in parts]
    best: tuple[int, str] | None = None
    for i in range(len(parts)):
        for j in range(len(parts), i, -1):
            if any(t is not None for t in theories[i:j]) and j - i == 1:
                continue  # a lone theory name is not a value
            cand = "_".join(parts[i:j])
            near = [t for t in (theories[i - 1] if i > 0 else None,
                                theories[j] if j < len(parts) else None) if t]
            tries = [f"{t}:{cand}" for t in near] + [cand]
            for name_try in tries:
                try:
                    node = reg.resolve(name_try)
                except UnknownNameError:
                    continue
                if best is None or j - i > best[0]:
                    best = (j - i, node.id)
                break
    return best[1] if best else None


def _table_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and p.name.lower().endswith(TABLE_EXTENSIONS) and not p.name.startswith("."))


def read_vidb_tables(
    path: str | os.PathLike[str],
    *,
    split: str = "train",
) -> list[tuple[pd.DataFrame, str]]:
    """Raw tables of a VIDB source, each with the name to report it by.

    A file or a saved Hugging Face dataset is one table; a folder of table files (the
    published VIDB ships one CSV per value) is one table per file; ``hf://OWNER/NAME`` is
    downloaded (``huggingface_hub``) and read as such a folder when it holds table files.
    """
    spec = str(path)
    folder: Path | None = None
    if spec.startswith("hf://"):
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(spec.removeprefix("hf://"), repo_type="dataset"))
        except ImportError:
            folder = None
        except Exception as exc:
            raise DataError(f"cannot download Hugging Face dataset {spec!r}: {exc}",
                            hint="check the id and your network, or download it and import "
                            "the folder") from exc
        if folder is not None and not _table_files(folder):
            folder = None
    elif Path(spec).is_dir() and not ((Path(spec) / "dataset_info.json").exists()
                                      or (Path(spec) / "dataset_dict.json").exists()):
        folder = Path(spec)
        if not _table_files(folder):
            raise DataError(f"the folder {spec!r} holds no table files",
                            hint=f"put {', '.join(TABLE_EXTENSIONS)} files in it, or give a file")
    if folder is None:
        return [(read_vidb_source(path, split=split), spec)]
    return [(read_vidb_source(p), str(p)) for p in _table_files(folder)]


def _concat_tables(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Normalised tables as one frame; ``attrs["skipped"]`` sums their skipped-row counts."""
    import pandas as pd

    skipped: dict[str, int] = {}
    for f in frames:
        for reason, n in f.attrs.get("skipped", {}).items():
            skipped[reason] = skipped.get(reason, 0) + n
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df.attrs["skipped"] = skipped
    return df


def _value_for_table(raw: pd.DataFrame, name: str, value: str | None,
                     columns: Mapping[str, str] | None, *, override: bool = True) -> str | None:
    """The value every row of a table belongs to (None: its value column says): ``value``
    (when ``override``, even over a value column), else the value column, else the value
    its file name names."""
    has_column = (columns or {}).get("value", "value") in raw.columns
    if has_column and not override:
        return None
    if value is not None or has_column:
        return value
    inferred = value_from_filename(name)
    if inferred is None and Path(name).parent.name:  # data/achievement/train-0000.parquet
        inferred = value_from_filename(Path(name).parent.name)
    if inferred is None:
        raise DataError(
            f"{name} has no column 'value' and its file name names no value; its columns are "
            + ", ".join(repr(str(c)) for c in raw.columns),
            hint="pass --value NAME (every row is that value), --value-column COLUMN, or name "
            "the file after its value (e.g. benevolence_pvq.csv)")
    return inferred


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
        from valueflow.workspace._migrations import migrations_for

        self.workspace = workspace
        self._version = len(migrations_for(COMPONENT))
        if workspace.read_only:
            # Reading needs no migration: a workspace without VIDB tables reads as empty, one
            # of an older schema lacks the newer columns (read as missing).
            current = workspace.schema_version(COMPONENT)
            if current > self._version:
                workspace.ensure_schema(COMPONENT)  # the "newer than this ValueFlow" error
            self._version = current
        else:
            workspace.ensure_schema(COMPONENT)

    def _columns(self) -> list[str]:
        if self._version >= 2:
            return list(VIDB_COLUMNS)
        return [c for c in VIDB_COLUMNS if c != "source_kind"]

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
        skip_invalid: bool = False,
    ) -> int:
        """Validate and import a file, a folder of per-value files, or a dataset; all rows
        or none. Returns rows written.

        A table without a value column belongs to ``value``, or else to the value its file
        name names (see :func:`value_from_filename`). With ``skip_invalid``, rows with an
        empty text, a missing intensity or a repeated text are left out (counted in
        :attr:`last_skipped`) instead of failing the import.
        """
        frames = []
        self.last_values: dict[str, str] = {}
        for raw, name in read_vidb_tables(path, split=split):
            table_value = _value_for_table(raw, name, value, columns)
            frame = normalize_vidb_frame(
                raw,
                source_name=name,
                value=table_value,
                columns=columns,
                source=source or str(path),
                license=license,
                dataset=dataset or Path(str(path)).stem,
                provenance=f"imported from {name}",
                skip_invalid=skip_invalid,
            )
            if table_value is not None and value is None:
                self.last_values[name] = table_value
            frames.append(frame)
        frame = _concat_tables(frames)
        self.last_skipped: dict[str, int] = dict(frame.attrs["skipped"])
        dup = frame["item_id"].duplicated(keep="first")
        if dup.any():
            if not skip_invalid:
                shown = "; ".join(f"{v}: {t[:40]!r}" for v, t in
                                  frame.loc[dup, ["value", "text"]].head(3).itertuples(index=False))
                raise DataError(f"{int(dup.sum())} text(s) appear twice for the same value across "
                                f"the files of {path} ({shown})",
                                hint="remove the repeats, or pass --skip-invalid to keep the "
                                "first; nothing was imported")
            self.last_skipped["repeated text"] = (self.last_skipped.get("repeated text", 0)
                                                  + int(dup.sum()))
            frame = frame[~dup].reset_index(drop=True)
        return self.add(frame, on_conflict=on_conflict)

    def import_seed(self, *, on_conflict: OnConflict = "skip") -> int:
        """Copy the bundled seed VIDB into the workspace."""
        from valueflow.vidb._seed import load_seed

        return self.add(load_seed(), on_conflict=on_conflict)

    def to_frame(self, values: list[str] | None = None) -> pd.DataFrame:
        """Stored items (optionally only some values) with the canonical columns."""
        if self._version == 0:
            return _empty_frame()
        cols = ", ".join(self._columns())
        if values:
            from valueflow.theories import resolve_value

            ids = sorted({resolve_value(v).id for v in values})
            df = self.workspace.query_df(
                f"SELECT {cols} FROM vidb_items WHERE value IN ({', '.join('?' * len(ids))}) "
                "ORDER BY value, intensity",
                ids,
            )
        else:
            df = self.workspace.query_df(
                f"SELECT {cols} FROM vidb_items ORDER BY value, intensity")
        if "source_kind" not in df.columns:
            df["source_kind"] = None
        return df[VIDB_COLUMNS]

    def count(self) -> int:
        if self._version == 0:
            return 0
        return int(self.workspace.execute("SELECT count(*) FROM vidb_items").fetchall()[0][0])

    def foreign_items(self, ids: list[str], source: str | None) -> pd.DataFrame:
        """Stored items among ``ids`` whose source is not ``source``: ``item_id``, ``value``,
        ``text``, ``source``."""
        import pandas as pd

        if not ids or self._version == 0:
            return pd.DataFrame({"item_id": [], "value": [], "text": [], "source": []})
        # A list parameter, not a registered table: works on a read-only workspace too.
        return self.workspace.query_df(
            "SELECT item_id, value, text, source FROM vidb_items "
            "WHERE item_id IN (SELECT unnest(?::VARCHAR[])) AND source IS DISTINCT FROM ? "
            "ORDER BY value, text", [list(dict.fromkeys(ids)), source])

    def add_built(self, items: pd.DataFrame, *, on_conflict: BuildConflict = "error"
                  ) -> dict[str, int]:
        """Store the items of a build. An item whose (value, text) is stored from the same
        source (an earlier run of this build) is replaced; one stored from another source
        is handled by ``on_conflict`` (see :data:`BuildConflict`).

        Returns:
            Counts: ``stored``, ``conflicts`` (items from another source), ``skipped``.

        Raises:
            DataError: with ``on_conflict="error"`` and a conflict; nothing is stored.
        """
        if on_conflict not in ("error", "keep", "skip", "replace"):
            raise DataError(f"on_conflict must be error, keep, skip or replace, not "
                            f"{on_conflict!r}")
        counts = {"stored": 0, "conflicts": 0, "skipped": 0}
        if items.empty:
            return counts
        frame = items.copy()
        clash = self.foreign_items(frame["item_id"].tolist(), _one_source(frame))
        counts["conflicts"] = len(clash)
        if len(clash):
            if on_conflict == "error":
                raise conflict_error(clash)
            hit = frame["item_id"].isin(set(clash["item_id"]))
            if on_conflict == "skip":
                counts["skipped"] = int(hit.sum())
                frame = frame[~hit]
            elif on_conflict == "keep":
                from valueflow.vidb._frame import item_id

                frame.loc[hit, "item_id"] = [
                    item_id(v, f"{t}\x1f{s}") for v, t, s in
                    frame.loc[hit, ["value", "text", "source"]].itertuples(index=False)]
        counts["stored"] = self.add(frame, on_conflict="replace")
        return counts

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


def _empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("intensity", "uncertainty")
                                      else "object") for c in VIDB_COLUMNS})


def _one_source(frame: pd.DataFrame) -> str | None:
    sources = frame["source"].dropna().astype(str).unique()
    return str(sources[0]) if len(sources) else None


def conflict_error(clash: pd.DataFrame) -> DataError:
    """The one-line refusal of a build whose texts are stored from another source."""
    first = clash.iloc[0]
    return DataError(
        f"{len(clash)} item(s) to build are already in the VIDB from another source, e.g. "
        f"{first['value']}: {str(first['text'])[:50]!r} from {first['source']!r}; a build "
        "never replaces them unasked",
        hint="pass --on-conflict skip (keep the stored items), keep (store both) or replace "
        "(overwrite them); nothing was built or stored")


def usable_items(frame: pd.DataFrame) -> tuple[Any, dict[str, int]]:
    """Which items may serve as anchors or refit data, and why the others may not.

    Simulated items (``source_kind == "simulation"``) and items flagged
    :data:`UNRELIABLE_FLAGS` are kept apart.

    Returns:
        A boolean mask over ``frame``'s rows and ``{reason: count}`` of the rows left out.
    """
    import numpy as np

    kinds = (frame["source_kind"].astype(str) if "source_kind" in frame
             else np.full(len(frame), "", dtype=object))
    flags = (frame["flags"].fillna("").astype(str) if "flags" in frame
             else np.full(len(frame), "", dtype=object))
    keep = np.ones(len(frame), dtype=bool)
    reasons: dict[str, int] = {}
    item_flags = [set(f.split(",")) for f in flags]
    checks = [("simulated item(s)", np.asarray(kinds == "simulation", dtype=bool))]
    checks += [(_FLAG_REASONS[name], np.asarray([name in f for f in item_flags], dtype=bool))
               for name in UNRELIABLE_FLAGS]
    for reason, mask in checks:
        hit = keep & mask
        if hit.any():
            reasons[reason] = int(hit.sum())
        keep &= ~mask
    return keep, reasons


def load_vidb(
    source: str | os.PathLike[str] | pd.DataFrame = "seed",
    *,
    values: list[str] | None = None,
    intensity_column: str | None = None,
    text_column: str | None = None,
    value_column: str | None = None,
    value: str | None = None,
    workspace: Workspace | None = None,
    skip_invalid: bool = False,
) -> pd.DataFrame:
    """Load a VIDB as a DataFrame with the canonical columns.

    Args:
        source: ``"seed"`` (bundled), ``"workspace"`` (the workspace's store without
            simulated and unreliable items, see :func:`usable_items`; how many were left out
            and why is in ``result.attrs["skipped"]``), ``"workspace:all"`` (every stored
            item), a file path
            (CSV/JSONL/Parquet with ``text``, ``value``, ``intensity`` or mapped columns), a
            folder of such files (a file without a value column belongs to the value its
            name names, as in the published VIDB's ``{value}_{theory}_flag_aggregated.csv``),
            or a DataFrame.
        values: Keep only these values.
        intensity_column, text_column, value_column: Column names in a file or DataFrame.
        value: The value of every row of a single file or DataFrame that has no value
            column (a value column, when there is one, wins).
        skip_invalid: Leave out rows with an empty text, a missing intensity or a repeated
            text (counted in ``result.attrs["skipped"]``) instead of failing.
        workspace: The workspace for ``"workspace"`` (default: the default workspace).

    A file's optional ``pair`` column (minimal pairs: rows with the same id describe one
    situation with different stances) is kept, scoped by file; ``hives train`` learns stance
    from it (``FineTuneConfig.pair_weight``).
    """

    from valueflow.vidb._seed import load_seed

    if isinstance(source, str) and source == "seed":
        return load_seed(values)
    if isinstance(source, str) and source in ("workspace", WORKSPACE_ALL):
        if workspace is None:
            from valueflow.workspace import default_workspace_path, open_workspace

            if not default_workspace_path().exists():
                df = _empty_frame()
                df.attrs["skipped"] = {}
                return df
            with open_workspace(read_only=True) as ws:
                return load_vidb(source, values=values, workspace=ws)
        df = VIDBStore(workspace).to_frame(values)
        skipped: dict[str, int] = {}
        if source == "workspace":
            keep, skipped = usable_items(df)
            df = df[keep].reset_index(drop=True)
        df.attrs["skipped"] = skipped
        return df
    columns = {k: v for k, v in (("intensity", intensity_column), ("text", text_column),
                                 ("value", value_column)) if v}
    if isinstance(source, str | os.PathLike):
        tables = read_vidb_tables(source)
        if len(tables) > 1:
            value = None  # a folder: each file says its own value
    else:
        tables = [(source, "VIDB table")]
    frames = [normalize_vidb_frame(raw, source_name=name, columns=columns, source=name,
                                   value=_value_for_table(raw, name, value, columns,
                                                          override=False),
                                   skip_invalid=skip_invalid,
                                   hint="fix these rows in the VIDB file", keep=("pair",))
              for raw, name in tables]
    for f, (_, name) in zip(frames, tables, strict=True):
        if "pair" in f.columns:  # pair ids are a file's own: scope them by file
            has = f["pair"].notna() & f["pair"].astype(str).str.strip().ne("")
            f["pair"] = (name + ":" + f["pair"].astype(str)).where(has, None)
    df = _concat_tables(frames)
    if values:
        from valueflow.theories import resolve_value

        ids = {resolve_value(v).id for v in values}
        df = df[df["value"].isin(ids)].reset_index(drop=True)
    return df
