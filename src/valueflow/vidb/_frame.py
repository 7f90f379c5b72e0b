"""Validation and normalisation of VIDB tables (pure: DataFrames in, DataFrames out)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from valueflow.errors import DataError, UnknownNameError
from valueflow.tables import INTENSITY_COLUMNS, text_key
from valueflow.vidb._schema import SOURCE_KINDS, VIDB_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["INTENSITY_ALIASES", "direction_of", "item_id", "normalize_vidb_frame"]

#: Column names recognised as the intensity when no mapping is given (the published VIDB
#: uses ``final_rating``).
INTENSITY_ALIASES = INTENSITY_COLUMNS

MAX_LISTED_ROWS = 10


def item_id(value: str, text: str) -> str:
    """Stable id of a (value, text) pair: the same text under the same value is one item."""
    norm = text_key(text)
    return hashlib.sha1(f"{value}\x1f{norm}".encode()).hexdigest()[:16]


def direction_of(intensity: float, neutral_band: float = 1.0) -> str:
    """``supports`` / ``opposes`` / ``neutral`` from an intensity (|x| < band is neutral)."""
    if abs(intensity) < neutral_band:
        return "neutral"
    return "supports" if intensity > 0 else "opposes"


def _rows(idx: list[Any]) -> str:
    shown = ", ".join(str(int(i) + 1) for i in idx[:MAX_LISTED_ROWS])
    more = f" and {len(idx) - MAX_LISTED_ROWS} more" if len(idx) > MAX_LISTED_ROWS else ""
    return f"row{'s' if len(idx) > 1 else ''} {shown}{more}"


def normalize_vidb_frame(
    df: pd.DataFrame,
    *,
    source_name: str,
    value: str | None = None,
    columns: Mapping[str, str] | None = None,
    source: str | None = None,
    license: str | None = None,
    dataset: str | None = None,
    provenance: str | None = None,
    neutral_band: float = 1.0,
    skip_invalid: bool = False,
    hint: str = "fix these rows and import again; nothing was imported",
    source_kind: str = "import",
    keep: Sequence[str] = (),
) -> pd.DataFrame:
    """Validate an incoming table and return it with the canonical VIDB columns.

    Args:
        df: The table as read.
        source_name: How to name the input in error messages (a file name).
        value: A value that every row belongs to (instead of a ``value`` column).
        columns: Mapping from canonical column (``text``, ``value``, ``intensity``, ...) to the
            input's column name.
        source, license, dataset, provenance: Defaults for rows that lack these columns.
        neutral_band: |intensity| below this is ``neutral`` when no direction is given.
        skip_invalid: Leave out rows with an empty text, a missing or non-numeric intensity,
            or a text already seen for the same value, instead of failing; the counts are in
            ``result.attrs["skipped"]``. Unknown values and out-of-range intensities still
            fail: they mean a wrong mapping or scale, not a stray row.
        hint: The hint of the error that lists offending rows.
        source_kind: The ``source_kind`` of rows that do not say theirs (see
            :data:`~valueflow.vidb._schema.SOURCE_KINDS`).
        keep: Optional input columns carried through after the canonical ones, where the
            input has them (``pair``: minimal-pair ids for the fine-tuning's stance loss).

    Raises:
        DataError: listing the offending rows (1-based, header not counted) for missing
            columns, empty or duplicate texts, non-numeric or out-of-range intensities and
            unknown values.
    """
    import pandas as pd

    from valueflow.tables import require_columns
    from valueflow.theories import resolve_value

    mapping = dict(columns or {})
    if "intensity" not in mapping:
        found = next((c for c in INTENSITY_ALIASES if c in df.columns), None)
        if found is not None:
            mapping["intensity"] = found
    _check_mapping(mapping, [str(c) for c in df.columns], source_name)
    renamed = df.rename(columns={v: k for k, v in mapping.items() if v != k})
    required = ["text", "intensity"] + ([] if value else ["value"])
    require_columns(df, [mapping.get(k, k) for k in required], source=source_name)
    skipped: dict[str, int] = {}
    if skip_invalid:
        no_text = renamed["text"].isna() | renamed["text"].astype(str).str.strip().eq("")
        no_num = pd.to_numeric(renamed["intensity"], errors="coerce").isna() & ~no_text
        for reason, mask in (("empty text", no_text), ("missing intensity", no_num)):
            if mask.any():
                skipped[reason] = int(mask.sum())
        renamed = renamed[~(no_text | no_num)]
    out = pd.DataFrame(index=renamed.index)
    problems: list[str] = []

    text = renamed["text"]
    empty = text.isna() | text.astype(str).str.strip().eq("")
    if empty.any():
        problems.append(f"empty text in {_rows(list(renamed.index[empty]))}")
    out["text"] = text.astype(str).str.strip()

    inten = pd.to_numeric(renamed["intensity"], errors="coerce")
    bad_num = inten.isna()
    if bad_num.any():
        problems.append(f"intensity is missing or not a number in {_rows(list(renamed.index[bad_num]))}")
    out_of_range = ~bad_num & ~inten.between(-10, 10)
    if out_of_range.any():
        problems.append(
            f"intensity outside [-10, 10] in {_rows(list(renamed.index[out_of_range]))} "
            "(rescale your scores to [-10, 10] first)"
        )
    out["intensity"] = inten.astype(float)

    raw_values = pd.Series([value] * len(renamed), index=renamed.index) if value else renamed["value"]
    resolved: dict[str, tuple[str, str]] = {}
    unknown: dict[str, list[Any]] = {}
    for idx, name in raw_values.items():
        key = "" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name)
        if key not in resolved:
            try:
                node = resolve_value(key)
                resolved[key] = (node.id, node.theory)
            except (UnknownNameError, KeyError) as exc:
                unknown.setdefault(key, []).append(idx)
                resolved[key] = ("", str(exc))
                continue
        elif not resolved[key][0]:
            unknown.setdefault(key, []).append(idx)
    for name, idxs in unknown.items():
        problems.append(f"unknown value {name!r} in {_rows(idxs)}: {resolved[name][1]}")
    out["value"] = [resolved[_k(v)][0] for v in raw_values]
    out["theory"] = [resolved[_k(v)][1] if resolved[_k(v)][0] else "" for v in raw_values]

    if not problems:
        ids = [item_id(v, t) for v, t in zip(out["value"], out["text"], strict=True)]
        out["item_id"] = ids
        dup = out["item_id"].duplicated(keep="first")
        if dup.any() and skip_invalid:
            skipped["repeated text"] = int(dup.sum())
            out, renamed = out[~dup].copy(), renamed[~dup]
        elif dup.any():
            problems.append(
                f"duplicate text for the same value in {_rows(list(renamed.index[dup]))}"
            )
    if problems:
        raise DataError(
            f"{source_name}: " + "; ".join(problems),
            hint=hint,
        )

    out["node"] = renamed["node"].where(renamed["node"].notna(), None) if "node" in renamed else None
    if "direction" in renamed:
        out["direction"] = renamed["direction"].astype(str)
        bad_dir = ~out["direction"].isin(["supports", "opposes", "neutral"])
        if bad_dir.any():
            raise DataError(
                f"{source_name}: direction must be supports, opposes or neutral in "
                f"{_rows(list(renamed.index[bad_dir]))}"
            )
    else:
        out["direction"] = [direction_of(x, neutral_band) for x in out["intensity"]]
    defaults = {
        "uncertainty": None,
        "n_comparisons": None,
        "judges": None,
        "flags": None,
        "source": source,
        "provenance": provenance,
        "license": license,
        "dataset": dataset,
    }
    for col, default in defaults.items():
        out[col] = renamed.get(col, default)
    kinds = renamed.get("source_kind")
    if kinds is not None:
        kinds = kinds.where(kinds.notna() & kinds.astype(str).str.strip().ne(""), source_kind)
        bad_kind = ~kinds.isin(SOURCE_KINDS)
        if bad_kind.any():
            raise DataError(
                f"{source_name}: source_kind must be one of {', '.join(SOURCE_KINDS)} in "
                f"{_rows(list(renamed.index[bad_kind]))}")
        out["source_kind"] = kinds.astype(str)
    else:
        out["source_kind"] = source_kind
    extra = [c for c in keep if c in renamed.columns and c not in VIDB_COLUMNS]
    result = out[VIDB_COLUMNS].join(renamed.loc[out.index, extra]).reset_index(drop=True)
    result.attrs["skipped"] = skipped
    return result


def _check_mapping(mapping: Mapping[str, str], present: list[str], source_name: str) -> None:
    """One input column can be only one canonical column (``--intensity-column text`` would
    otherwise rename the texts away)."""
    option = {"text": "--text-column", "value": "--value-column",
              "intensity": "--intensity-column"}
    used: dict[str, str] = {}
    for canon, col in mapping.items():
        if col in used and used[col] != canon:
            raise DataError(f"{source_name}: column {col!r} cannot be both the {used[col]} and "
                            f"the {canon}", hint=f"give {option.get(canon, canon)} another column")
        used[col] = canon
    for canon, col in mapping.items():
        if col != canon and col in option and col not in mapping and col in present:
            raise DataError(
                f"{source_name}: {option.get(canon, canon)} {col!r} is the {col} column",
                hint=f"give {option.get(canon, canon)} the column that holds the {canon}")


def _k(name: Any) -> str:
    return "" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name)
