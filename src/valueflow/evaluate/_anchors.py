"""Which VIDB the evaluator uses for each value, and the anchor pool it draws windows from."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from valueflow.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from valueflow.theories import ValueNode
    from valueflow.workspace import Workspace

__all__ = ["AnchorPool", "VIDBSource", "anchor_pools", "left_out_note", "user_vidb_frame"]

VIDBSource = Any
"""``"auto"``, ``"seed"``, ``"workspace"``, ``"workspace:all"``, a file path, or a
DataFrame. ``"workspace"`` and ``"auto"`` leave out simulated and unreliable items (see
:func:`valueflow.vidb.usable_items`); ``"workspace:all"`` uses every stored item."""

_NAMED = ("auto", "seed", "workspace", "workspace:all")


def left_out_note(frame: pd.DataFrame | None) -> str | None:
    """Which workspace VIDB items were not used and why (``left out: ...``), or None."""
    skipped = (frame.attrs.get("skipped") or {}) if frame is not None else {}
    if not skipped:
        return None
    return ("left out: " + ", ".join(f"{n} {why}" for why, n in skipped.items())
            + "; --vidb workspace:all uses them")


@dataclass(frozen=True)
class AnchorPool:
    """The anchors of one value: texts of known intensity that windows are drawn from.

    Attributes:
        value: Canonical value id.
        texts: Anchor texts (distinct).
        intensities: Their intensities in [-10, 10].
        source: Which VIDB they come from (``seed``, ``workspace``, a file name).
    """

    value: str
    texts: list[str]
    intensities: NDArray[np.float64]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def index_of(self) -> dict[str, int]:
        """Anchor id of each anchor text."""
        return {t: i for i, t in enumerate(self.texts)}


def _pool(frame: pd.DataFrame, value: str, source: str) -> AnchorPool:
    rows = frame[frame["value"] == value]
    rows = rows[rows["text"].astype(str).str.strip() != ""]
    rows = rows.dropna(subset=["intensity"]).drop_duplicates(subset=["text"], keep="first")
    return AnchorPool(value, rows["text"].astype(str).tolist(),
                      rows["intensity"].to_numpy(dtype=float), source)


def _load(source: Any, values: list[ValueNode], *, intensity_column: str | None,
          text_column: str | None) -> pd.DataFrame:
    from valueflow.vidb import load_vidb

    # A file of one value's anchors needs no value column when that value is being scored.
    # Rows without an intensity, empty or repeated are left out (and counted), as anchors.
    single = values[0].id if len(values) == 1 else None
    return load_vidb(source, intensity_column=intensity_column, text_column=text_column,
                     value=single, skip_invalid=True)


def user_vidb_frame(
    source: VIDBSource,
    values: list[ValueNode],
    *,
    workspace: Workspace | None = None,
    intensity_column: str | None = None,
    text_column: str | None = None,
) -> pd.DataFrame | None:
    """The VIDB a source names other than the bundled seed, or None when it names the seed.

    ``"auto"`` is the workspace's VIDB when it has any items, else the seed (None).
    """
    from valueflow.vidb import load_vidb

    if isinstance(source, str) and source in _NAMED:
        if source == "seed" or (source == "auto" and workspace is None):
            return None
        if workspace is None:
            raise ConfigError("--vidb workspace needs a workspace",
                              hint="pass workspace=..., or use vidb='seed'")
        frame = load_vidb("workspace:all" if source == "workspace:all" else "workspace",
                          workspace=workspace)
        if frame.empty and source != "auto":
            raise DataError("the workspace VIDB is empty" if not frame.attrs.get("skipped")
                            else f"the workspace VIDB has no usable items ({left_out_note(frame)})",
                            hint="import texts with `valueflow vidb import`, or use --vidb seed")
        return None if frame.empty else frame
    return _load(source, values, intensity_column=intensity_column, text_column=text_column)


def anchor_pools(
    source: VIDBSource,
    values: list[ValueNode],
    *,
    workspace: Workspace | None = None,
    intensity_column: str | None = None,
    text_column: str | None = None,
) -> dict[str, AnchorPool]:
    """One anchor pool per value.

    Args:
        source: ``"auto"`` (the workspace's VIDB for a value it has anchors for, else the
            bundled seed), ``"seed"``, ``"workspace"``, a CSV/JSONL/Parquet file with
            ``text``, ``value`` (optional when one value is scored) and an intensity column,
            or a DataFrame.
        values: The values to score.
        workspace: The workspace for ``"auto"`` and ``"workspace"``.
        intensity_column, text_column: Column names in a file or DataFrame.

    Raises:
        DataError: a value has no anchors in the chosen VIDB (the message lists the values
            that do), or the file is unreadable or malformed.
    """
    from valueflow.vidb import load_seed, load_vidb

    ids = [v.id for v in values]
    frames: dict[str, tuple[pd.DataFrame, str]] = {}
    if isinstance(source, str) and source in _NAMED:
        if source in ("auto", "workspace", "workspace:all"):
            if source != "auto" and workspace is None:
                raise ConfigError("--vidb workspace needs a workspace",
                                  hint="pass workspace=..., or use vidb='seed'")
            if workspace is not None:
                ws_frame = load_vidb("workspace:all" if source == "workspace:all"
                                     else "workspace", values=ids, workspace=workspace)
                note = left_out_note(ws_frame)
                frames["workspace"] = (ws_frame, "workspace" + (f" ({note})" if note else ""))
        if source in ("auto", "seed"):
            frames["seed"] = (load_seed(ids), "seed")
    elif isinstance(source, str | os.PathLike):
        frame = _load(source, values, intensity_column=intensity_column,
                      text_column=text_column)
        label = os.path.basename(os.path.normpath(str(source)))
        skipped = frame.attrs.get("skipped") or {}
        if skipped:
            label += " (left out: " + ", ".join(f"{n} row(s) with {why}"
                                                 for why, n in skipped.items()) + ")"
        frames["file"] = (frame, label)
    else:
        frames["table"] = (_load(source, values, intensity_column=intensity_column,
                                 text_column=text_column), "table")

    pools: dict[str, AnchorPool] = {}
    for v in values:
        pool = None
        for frame, label in frames.values():
            pool = _pool(frame, v.id, label)
            if len(pool):
                break
        if pool is None or not len(pool):
            have: set[str] = set()
            for frame, _ in frames.values():
                have |= set(frame["value"].unique())
            where = " or ".join(label for _, label in frames.values())
            raise DataError(
                f"the VIDB ({where}) has no anchors for {v.id}",
                hint=(f"it has anchors for {', '.join(sorted(have)[:8])}"
                      f"{' ...' if len(have) > 8 else ''}; " if have else "")
                + "import anchors with `valueflow vidb import`, or use --vidb seed",
            )
        pools[v.id] = pool
    return pools
